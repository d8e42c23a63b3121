"""text: no control character survives into a header or a list value; a count and a rate are
written one way in every command."""

from __future__ import annotations

import pytest

from gigo_mail.text import msg_rate, number, one_line


@pytest.mark.parametrize("raw", ["Ada\r\nBcc: x@evil.example", "Ada\tBcc: x@evil.example",
                                 "Ada\x85Bcc: x@evil.example", "Ada\u2028Bcc: x@evil.example",
                                 "Ada \r\n  Bcc: x@evil.example\x00"])
def test_control_characters_become_one_space(raw: str) -> None:
    assert one_line(raw) == "Ada Bcc: x@evil.example"


def test_clean_text_is_left_as_it_is() -> None:
    assert one_line("  Ada  Lovelace ") == "  Ada  Lovelace "


@pytest.mark.parametrize(("n", "shown"), [(0, "0"), (999, "999"), (5000, "5,000"), (1234567, "1,234,567")])
def test_a_count_is_written_one_way(n: int, shown: str) -> None:
    assert number(n) == shown


@pytest.mark.parametrize(("per_second", "shown"), [(0, "0 msg/s"), (4.54, "4.5 msg/s"), (9.96, "10 msg/s"),
                                                   (36.4, "36 msg/s"), (43.5, "44 msg/s"),
                                                   (1130.2, "1,130 msg/s")])
def test_a_rate_is_written_one_way(per_second: float, shown: str) -> None:
    assert msg_rate(per_second) == shown
