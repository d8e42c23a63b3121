"""Addresses for the suppression list from a file (``gigo-mail unsubscribe --from FILE``).

Kept apart from ``subscribers`` (which reads lists to send to): here the opted-out rows are
the point, and the file may also be a bare list of addresses.
"""

from __future__ import annotations

from pathlib import Path

from gigo_mail.address import check_address
from gigo_mail.config import ListSettings
from gigo_mail.errors import SubscriberListError
from gigo_mail.lists.formats import BOUNCED, UNCLEAR, UNSUBSCRIBED, unclear_message
from gigo_mail.lists.reader import Subscriber, describe_list, note_unclear, read_subscribers


def suppressions_from_file(path: Path, settings: ListSettings | None = None) -> dict[str, list[str]]:
    """Addresses to suppress from a file, grouped by why: one address per line ("unsubscribed"),
    a CSV with an email column (every row), or an export that records opt-outs (only its
    opted-out rows, as "unsubscribed" or "bounced"). An invalid address, or an opt-out value no
    rule explains, is a SubscriberListError naming the line: nothing is imported then."""
    if _one_address_per_line(path):
        addresses = []
        with path.open(encoding="utf-8-sig") as handle:
            for number, text in enumerate(handle, start=1):
                text = text.strip()
                if text and not text.startswith("#"):
                    try:
                        check_address(text)
                    except SubscriberListError as exc:
                        raise SubscriberListError(
                            f"{path.name}:{number}: {exc}; nothing was imported") from None
                    addresses.append(text)
        return {UNSUBSCRIBED: addresses}
    header = describe_list(path, settings)
    groups: dict[str, list[str]] = {}
    unclear: dict[str, set[str]] = {}
    for row in read_subscribers(path, settings=settings):
        if isinstance(row, Subscriber):
            if not header.format.says_who_opted_out:
                groups.setdefault(UNSUBSCRIBED, []).append(row.email)
        elif row.kind in (UNSUBSCRIBED, BOUNCED):
            groups.setdefault(row.kind, []).append(row.email)
        elif row.kind == UNCLEAR:
            note_unclear(unclear, row)
        elif row.kind == "invalid" and row.email:
            raise SubscriberListError(f"{path.name}:{row.line}: {row.reason}; nothing was imported")
    if unclear:
        raise SubscriberListError(unclear_message(str(path), unclear).replace("nothing was sent",
                                                                              "nothing was imported"))
    return groups


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
