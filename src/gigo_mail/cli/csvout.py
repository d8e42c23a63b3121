"""A CSV written where the user asked: a file, or "-" for stdout (`status --failed`,
`unsubscribe --export`)."""

from __future__ import annotations

import contextlib
import csv
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gigo_mail.errors import GigoError


@contextlib.contextmanager
def csv_out(target: Path) -> Iterator[Any]:
    """A CSV writer on ``target`` ("-" is stdout, left open); a file that cannot be opened is one line."""
    if str(target) == "-":
        yield csv.writer(sys.stdout)
        return
    try:
        handle = target.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise GigoError(f"cannot write {target}: {exc.strerror}") from None
    with handle:
        yield csv.writer(handle)

