"""One rule for text that must stay on one line (a subscriber's name, a header value), and one way
to write a count and a rate in every command.

A control character (CR, LF, tab, NUL, C1 controls, Unicode line separators) in a
value could break out of a mail header or a CSV line, so each run of them becomes
one space; the list reader and the message builder both use this one set.
"""

from __future__ import annotations

import re

CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SPACES = re.compile(r"\s{2,}")


def one_line(value: str) -> str:
    """``value`` with control characters replaced by a space and the runs this leaves collapsed."""
    if CONTROL_CHARS.search(value):
        return _SPACES.sub(" ", CONTROL_CHARS.sub(" ", value)).strip()
    return value


def number(n: int) -> str:
    """A whole number as every command writes it: 5,000 (never 5000)."""
    return f"{n:,}"


def msg_rate(per_second: float) -> str:
    """Messages per second as every command writes it: '1,130 msg/s', '36 msg/s', '4.5 msg/s'
    (a decimal only below 10, where it matters)."""
    return f"{per_second:.1f} msg/s" if 0 < round(per_second, 1) < 10 else f"{per_second:,.0f} msg/s"
