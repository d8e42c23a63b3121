"""Addresses for the suppression list from a file (``gigo-mail unsubscribe --from FILE``).

Kept apart from ``reader`` (which reads lists to send to): here the opted-out rows are
the point, and the file may also be a bare list of addresses.

An import may hold a million addresses, so it streams: :func:`iter_suppressions` checks each
row as it is read and yields it, and the journal writes them in one transaction
(``Journal.suppress_each``). A bad row raises mid-stream and the transaction keeps nothing:
all or nothing, with memory flat and a progress bar fed with the bytes read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from gigo_mail.address import validate_address, why_invalid
from gigo_mail.config import ListSettings
from gigo_mail.errors import SubscriberListError
from gigo_mail.lists.formats import BOUNCED, UNCLEAR, UNSUBSCRIBED, unclear_message
from gigo_mail.lists.reader import PROGRESS_EVERY, Subscriber, SubscriberRows, note_unclear, read_subscribers

Progress = Callable[[int], None]


def iter_suppressions(path: Path, settings: ListSettings | None = None, progress: Progress | None = None
                      ) -> Iterator[tuple[str, str]]:
    """(address, why) for every address to suppress, ``why`` being "unsubscribed" or "bounced":
    one address per line (each one), a CSV with an email column (every row), or an export that
    records opt-outs (only its opted-out rows). The file is opened and its header read now
    (SubscriberListError at once); rows are checked as they stream, and an invalid address, or
    (after the last row) an opt-out value no rule explains, is a SubscriberListError naming it.
    ``progress(bytes_read)`` is called every few thousand rows."""
    if _one_address_per_line(path):
        handle = path.open("rb")
        return _bare_addresses(handle, path, progress)
    return _opted_out_rows(read_subscribers(path, settings=settings, progress=progress, fields=False), path)


def suppressions_from_file(path: Path, settings: ListSettings | None = None) -> dict[str, list[str]]:
    """The addresses of :func:`iter_suppressions`, grouped by why (for a small file or a test)."""
    groups: dict[str, list[str]] = {}
    for email, why in iter_suppressions(path, settings):
        groups.setdefault(why, []).append(email)
    return groups


def _failed(path: Path, line: int, why: str) -> SubscriberListError:
    return SubscriberListError(f"{path.name}:{line}: {why}; nothing was imported")


def _bare_addresses(handle: IO[bytes], path: Path, progress: Progress | None) -> Iterator[tuple[str, str]]:
    with handle:
        for number, raw in enumerate(handle, start=1):
            if progress is not None and not number & PROGRESS_EVERY:
                progress(handle.tell())
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8").strip()
            except UnicodeDecodeError:
                raise _failed(path, number, "the file is not UTF-8; re-save it as UTF-8") from None
            if not text or text.startswith("#"):
                continue
            try:
                validate_address(text)
            except ValueError as exc:
                raise _failed(path, number, f"'{text}' is not a valid address: {why_invalid(exc)}") from None
            yield text, UNSUBSCRIBED


def _opted_out_rows(rows: SubscriberRows, path: Path) -> Iterator[tuple[str, str]]:
    every_row = not rows.header.format.says_who_opted_out  # a plain list of addresses to suppress
    unclear: dict[str, set[str]] = {}
    try:
        for row in rows:
            if isinstance(row, Subscriber):
                if every_row:
                    yield row.email, UNSUBSCRIBED
            elif row.kind in (UNSUBSCRIBED, BOUNCED):
                yield row.email, row.kind
            elif row.kind == UNCLEAR:
                note_unclear(unclear, row)
            elif row.kind == "invalid" and row.email:
                raise _failed(path, row.line, row.reason)
    finally:
        rows.close()
    if unclear:
        raise SubscriberListError(unclear_message(str(path), unclear).replace("nothing was sent",
                                                                              "nothing was imported"))


def _one_address_per_line(path: Path) -> bool:
    """A file whose first non-blank line is a bare address (no delimiter): one address per line."""
    try:
        with path.open(encoding="utf-8-sig", errors="replace") as handle:
            for text in handle:
                text = text.strip()
                if text and not text.startswith("#"):
                    return "@" in text and not any(d in text for d in (",", ";", "\t"))
    except OSError:
        return False  # CsvTable says what is wrong with the path
    return False
