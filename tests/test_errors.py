"""errors.py: the tree drawn in its docstring is the tree in the code."""

from __future__ import annotations

import inspect
import re

import gigo_mail.errors as errors
from gigo_mail.transport.wire import WireClosed, WireTimeout


def _classes() -> dict[str, type]:
    return {name: obj for name, obj in vars(errors).items()
            if inspect.isclass(obj) and issubclass(obj, errors.GigoError)}


def _drawn() -> dict[str, str]:
    """child -> parent, read from the box drawing of the docstring."""
    doc = errors.__doc__ or ""
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = [(0, "GigoError")]
    lines = doc.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "GigoError")
    for line in lines[start + 1:]:
        if not line.strip():
            break
        match = re.match(r"^\s*[│ ]*[├└]── ([A-Z]\w+(?:, [A-Z]\w+)*)", line)
        assert match, line
        depth = len(line) - len(line.lstrip(" │├└─")) + 1
        names = match.group(1).split(", ")
        while stack and stack[-1][0] >= depth:
            stack.pop()
        for name in names:
            if stack:
                parents[name] = stack[-1][1]
        stack.append((depth, names[-1]))
    return parents


def test_every_error_is_drawn_under_its_parent() -> None:
    classes = _classes()
    drawn = _drawn()
    assert set(drawn) | {"GigoError"} == set(classes), set(classes) ^ (set(drawn) | {"GigoError"})
    for name, parent in drawn.items():
        assert classes[name].__bases__[0].__name__ == parent, (name, parent)


def test_every_error_says_one_line_and_exits_1() -> None:
    for cls in _classes().values():
        error = cls("a problem; what to do")
        assert str(error) == "a problem; what to do" and error.exit_code == 1


def test_response_errors_keep_code_and_text_like_aiosmtplib() -> None:
    error = errors.SMTPPermanentError("ann: 550", 550, "5.1.1 no such user", about_recipient=True)
    assert (error.code, error.text, error.about_recipient) == (550, "5.1.1 no such user", True)
    assert isinstance(error, errors.SMTPResponseError) and isinstance(error, errors.SMTPError)


def test_the_wire_readers_errors_are_the_standard_library_kinds() -> None:
    assert issubclass(WireClosed, ConnectionError) and issubclass(WireTimeout, TimeoutError)
    assert issubclass(WireTimeout, WireClosed)
    assert str(WireTimeout("did not answer")) == "did not answer"
