"""text.one_line: no control character survives into a header or a list value."""

from __future__ import annotations

import pytest

from gigo_mail.text import one_line


@pytest.mark.parametrize("raw", ["Ada\r\nBcc: x@evil.example", "Ada\tBcc: x@evil.example",
                                 "Ada\x85Bcc: x@evil.example", "Ada\u2028Bcc: x@evil.example",
                                 "Ada \r\n  Bcc: x@evil.example\x00"])
def test_control_characters_become_one_space(raw: str) -> None:
    assert one_line(raw) == "Ada Bcc: x@evil.example"


def test_clean_text_is_left_as_it_is() -> None:
    assert one_line("  Ada  Lovelace ") == "  Ada  Lovelace "
