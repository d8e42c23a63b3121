"""Per-recipient filling of a compiled issue: string formatting, nothing more.

A compiled text is split once at its slot tokens into a ``str.format`` pattern;
filling it for a subscriber is one C-level ``format`` call. No MJML, no premailer
and no parsing happen per recipient.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from urllib.parse import quote

from .render import SLOT_RE, Slot

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


class SlotTemplate:
    """A text with slots, ready to be filled many times."""

    __slots__ = ("pattern", "slots_used", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        pieces: list[str] = []
        used: set[int] = set()
        position = 0
        for match in SLOT_RE.finditer(source):
            literal = source[position:match.start()]
            pieces.append(literal.replace("{", "{{").replace("}", "}}"))
            index = int(match.group(1))
            used.add(index)
            pieces.append(f"{{{index}}}")
            position = match.end()
        pieces.append(source[position:].replace("{", "{{").replace("}", "}}"))
        self.pattern = "".join(pieces)
        self.slots_used = frozenset(used)

    def fill(self, values: Sequence[str]) -> str:
        """``values[i]`` replaces slot i; they must already be escaped for this text."""
        return self.pattern.format(*values)


def shape(slot: Slot, raw: str) -> str:
    """Apply a slot's default and transforms to a subscriber's raw value."""
    value = raw if raw else (slot.default or "")
    for name in slot.transforms:
        if name == "upper":
            value = value.upper()
        elif name == "lower":
            value = value.lower()
        elif name == "title":
            value = value.title()
        elif name == "capitalize":
            value = value.capitalize()
        elif name == "trim":
            value = value.strip()
        elif name == "urlencode":
            value = quote(value, safe="")
    return value


def lookup(slot: Slot, fields: Mapping[str, str], name: str, email: str, unsubscribe_url: str) -> str:
    """The raw value a slot names for one subscriber ('' when the CSV has no such column)."""
    path = slot.path
    if path[0] == "unsubscribe_url":
        return unsubscribe_url
    if len(path) == 1:  # {{ subscriber }} on its own
        return name or email
    column = path[1]
    if column == "email":
        return email
    if column == "name":
        return name
    return fields.get(column, "")


def one_line(value: str) -> str:
    """No CR, LF or other control character may survive into a header or a line."""
    return _CONTROL.sub(" ", value).strip() if _CONTROL.search(value) else value


def escape_html(values: Sequence[str]) -> list[str]:
    return [html.escape(v, quote=True) for v in values]
