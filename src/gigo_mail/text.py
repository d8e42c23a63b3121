"""One rule for text that must stay on one line: a subscriber's name, a header value.

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
