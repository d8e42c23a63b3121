"""Subscriber lists: read a CSV as a stream of recipients and skipped rows.

Why a stream: a list may hold a million rows, and the sender only ever needs
the next recipient. Memory stays flat: duplicates are caught with a compact
table of 8-byte blake2b digests (see :class:`DigestSet`), not a set of strings.

What the reader accepts, so that a list exported from a spreadsheet just works:

* UTF-8, with or without a BOM (Excel's "CSV UTF-8"); anything else is refused
  with the line where decoding failed and a hint to re-save the file as UTF-8.
* ``,`` or ``;`` (or tab) as the delimiter, sniffed from the header line.
* An ``email`` column (any case, surrounding spaces ignored; "Email Address"
  and "E-mail" are accepted too and also reach templates as ``email``); ``name`` or
  ``first_name``/``last_name`` are optional; every column reaches templates as
  ``subscriber.<column>`` with its header lower-cased and stripped.
* Blank lines are skipped, and every row keeps the physical line number where it
  starts (quoted fields may span lines), so an editor's "go to line" finds it.

Rows that are not mailed come out as :class:`SkippedRow` with a kind:

* ``invalid``: email-validator (syntax only) refused the address;
* ``duplicate``: the same address (case-insensitive) appeared on an earlier row;
  the first row for an address decides, later ones are reported;
* ``unsubscribed``: a ``status`` column says unsubscribed, unsubscribe, bounced,
  complained or cleaned (Mailchimp's word for hard bounces); any other status
  (or none) is mailed;
* ``suppressed``: the address is on the suppression list (the ``suppressed``
  callback, usually ``Journal.is_suppressed``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from email_validator import EmailNotValidError, validate_email

from .errors import SubscriberListError
from .subscribers_csv import EMAIL_COLUMNS, CsvTable, DigestSet, clean_text

__all__ = ["DO_NOT_MAIL_STATUSES", "EMAIL_COLUMNS", "SKIP_KINDS", "DigestSet", "ListReport", "SkippedRow",
           "Subscriber", "SubscriberRows", "address_key", "check_address", "check_list", "clean_text",
           "read_subscribers", "sample_subscriber"]

SKIP_KINDS = ("invalid", "duplicate", "unsubscribed", "suppressed")
# Values of a `status` column that mean "do not mail" (compared lower-cased, stripped).
DO_NOT_MAIL_STATUSES = frozenset({"unsubscribed", "unsubscribe", "bounced", "complained", "cleaned"})


@dataclass(frozen=True, slots=True)
class Subscriber:
    """One recipient, validated and normalized; ``key`` is its identity everywhere."""

    line: int
    email: str
    key: str
    smtp_address: str
    needs_smtputf8: bool
    name: str
    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class SkippedRow:
    """A row that will not be mailed, with the reason a person can act on."""

    line: int
    email: str
    kind: str
    reason: str


@dataclass
class ListReport:
    """What ``check_list`` found: counts per kind and the first skipped rows."""

    path: Path
    columns: list[str]
    delimiter: str
    valid: int = 0
    needs_smtputf8: int = 0
    skipped_counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SKIP_KINDS, 0))
    skipped: list[SkippedRow] = field(default_factory=list)

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped_counts.values())

    @property
    def rows(self) -> int:
        """Non-blank data rows read."""
        return self.valid + self.skipped_total


def _validate(email: str) -> tuple[str, str, bool]:
    """(key, smtp_address, needs_smtputf8) or EmailNotValidError."""
    checked = validate_email(email, check_deliverability=False, allow_smtputf8=True)
    key = checked.normalized.lower()
    if checked.ascii_email:
        return key, checked.ascii_email, False
    return key, f"{checked.local_part}@{checked.ascii_domain}", True


def _why(exc: EmailNotValidError) -> str:
    """email-validator's explanation, without its final period (it goes mid-sentence)."""
    return str(exc).rstrip(".")


def address_key(email: str) -> str:
    """The identity of an address, equal to ``Subscriber.key`` for the same address.

    Cheap for plain ASCII addresses (no validation); an address that does not
    validate falls back to its stripped, lower-cased form."""
    text = email.strip()
    if text.isascii() and "xn--" not in text.lower():
        return text.lower()
    try:
        return _validate(text)[0]
    except EmailNotValidError:
        return unicodedata.normalize("NFC", text).lower()


def check_address(email: str) -> str:
    """The key of a valid address; SubscriberListError saying why it is not valid."""
    text = email.strip()
    try:
        return _validate(text)[0]
    except EmailNotValidError as exc:
        raise SubscriberListError(f"'{text}' is not a valid address: {_why(exc)}") from None


def _person_name(fields: Mapping[str, str]) -> str:
    if fields.get("name"):
        return fields["name"]
    return " ".join(part for part in (fields.get("first_name", ""), fields.get("last_name", "")) if part)


def sample_subscriber(email: str, name: str = "", *, fields: Mapping[str, str] | None = None) -> Subscriber:
    """A recipient for test sends and previews (not read from a list).

    ``fields`` adds template columns; ``email``, ``name`` and ``first_name`` are
    filled from the arguments unless given there."""
    text = email.strip()
    try:
        key, smtp_address, needs_utf8 = _validate(text)
    except EmailNotValidError as exc:
        raise SubscriberListError(f"'{text}' is not a valid address: {_why(exc)}") from None
    name = clean_text(name)
    values = {"email": text, "name": name, "first_name": name.split(" ")[0] if name else ""}
    values.update({k.strip().lower(): clean_text(str(v)) for k, v in (fields or {}).items()})
    return Subscriber(line=0, email=text, key=key, smtp_address=smtp_address,
                      needs_smtputf8=needs_utf8, name=_person_name(values) or name, fields=values)


class SubscriberRows(Iterator[Subscriber | SkippedRow]):
    """The stream ``read_subscribers`` returns; its ``columns`` are known before any row."""

    def __init__(self, table: CsvTable, suppressed: Callable[[str], bool] | None) -> None:
        self.columns: list[str] = table.columns
        self._rows = _stream(table, suppressed)

    def __next__(self) -> Subscriber | SkippedRow:
        return next(self._rows)


def read_subscribers(path: Path, suppressed: Callable[[str], bool] | None = None) -> SubscriberRows:
    """Stream the list: a Subscriber for each row to mail, a SkippedRow for the others.

    The file is opened and its header checked now (SubscriberListError at once);
    rows are read as the iterator is consumed. ``suppressed(key)`` says whether an
    address is on the suppression list."""
    return SubscriberRows(CsvTable(path), suppressed)


def _stream(table: CsvTable, suppressed: Callable[[str], bool] | None) -> Iterator[Subscriber | SkippedRow]:
    columns, email_index = table.columns, table.email_index
    width = len(columns)
    named = [(i, c) for i, c in enumerate(columns) if c]
    has_status = "status" in columns
    seen = DigestSet()
    for line, cells in table.rows():
        if len(cells) < width:
            cells += [""] * (width - len(cells))
        email = cells[email_index].strip()
        if not email:
            yield SkippedRow(line, "", "invalid", "no address in the email column")
            continue
        try:
            key, smtp_address, needs_utf8 = _validate(email)
        except EmailNotValidError as exc:
            yield SkippedRow(line, email, "invalid", f"'{email}' is not a valid address: {_why(exc)}")
            continue
        first_line = seen.add(key, line)
        if first_line:
            yield SkippedRow(line, email, "duplicate", f"'{email}' is a duplicate of line {first_line}")
            continue
        values: dict[str, str] = {}
        for index, column in named:
            if column not in values:
                values[column] = clean_text(cells[index])
        values["email"] = email
        if has_status and values["status"].lower() in DO_NOT_MAIL_STATUSES:
            yield SkippedRow(line, email, "unsubscribed", f"status is '{values['status']}'")
            continue
        if suppressed is not None and suppressed(key):
            yield SkippedRow(line, email, "suppressed", f"'{email}' is on the suppression list")
            continue
        yield Subscriber(line=line, email=email, key=key, smtp_address=smtp_address,
                         needs_smtputf8=needs_utf8, name=_person_name(values), fields=values)


def check_list(path: Path, suppressed: Callable[[str], bool] | None = None, *, keep: int = 50) -> ListReport:
    """Read the whole list without sending: counts per kind and the first ``keep`` skipped rows."""
    table = CsvTable(path)
    report = ListReport(path=path, columns=[c for c in table.columns if c], delimiter=table.delimiter)
    for item in _stream(table, suppressed):
        if isinstance(item, Subscriber):
            report.valid += 1
            report.needs_smtputf8 += item.needs_smtputf8
        else:
            report.skipped_counts[item.kind] += 1
            if len(report.skipped) < keep:
                report.skipped.append(item)
    return report
