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

import codecs
import csv
import hashlib
import re
import unicodedata
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from email_validator import EmailNotValidError, validate_email

from .errors import SubscriberListError

SKIP_KINDS = ("invalid", "duplicate", "unsubscribed", "suppressed")
# Values of a `status` column that mean "do not mail" (compared lower-cased, stripped).
DO_NOT_MAIL_STATUSES = frozenset({"unsubscribed", "unsubscribe", "bounced", "complained", "cleaned"})
# The address column: `email`, or failing that a common export spelling (Mailchimp: "Email Address").
EMAIL_COLUMNS = ("email", "email address", "e-mail", "e-mail address")
_DELIMITERS = (",", ";", "\t")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SPACES = re.compile(r"\s{2,}")
_BARE_CR = re.compile(r"(?<=\r)(?!\n)(?=.)", re.DOTALL)
_LOOKS_LIKE_ADDRESS = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+")


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


class DigestSet:
    """A set of 64-bit digests in one flat array (open addressing, linear probing).

    About 16-32 bytes per entry, against ~100 for a Python set of bytes; for each
    digest it also remembers the line where it was first seen, to tell the user
    which row a duplicate repeats.
    """

    __slots__ = ("_slots", "_lines", "_mask", "_count")

    def __init__(self, capacity: int = 1 << 12) -> None:
        size = 1 << max(4, (capacity - 1).bit_length())
        self._slots = array("Q", [0]) * size
        self._lines = array("I", [0]) * size
        self._mask = size - 1
        self._count = 0

    def __len__(self) -> int:
        return self._count

    @staticmethod
    def digest(key: str) -> int:
        value = int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "little")
        return value or 1  # 0 marks an empty slot

    def add(self, key: str, line: int) -> int:
        """Add ``key``; return 0 if it is new, else the line where it was first added."""
        value = self.digest(key)
        slots, mask = self._slots, self._mask
        index = value & mask
        while True:
            found = slots[index]
            if found == 0:
                break
            if found == value:
                return self._lines[index] or 1
            index = (index + 1) & mask
        slots[index] = value
        self._lines[index] = line
        self._count += 1
        if self._count * 2 > mask:
            self._grow()
        return 0

    def _grow(self) -> None:
        old_slots, old_lines = self._slots, self._lines
        size = (self._mask + 1) * 2
        self._slots = slots = array("Q", [0]) * size
        self._lines = lines = array("I", [0]) * size
        self._mask = mask = size - 1
        for value, line in zip(old_slots, old_lines, strict=True):
            if value:
                index = value & mask
                while slots[index]:
                    index = (index + 1) & mask
                slots[index] = value
                lines[index] = line


def clean_text(value: str) -> str:
    """Replace control characters (CR, LF, tab, NUL, ...) with a space, so that a
    value can never break out of a mail header; collapse the runs this leaves."""
    if _CONTROL.search(value):
        value = _SPACES.sub(" ", _CONTROL.sub(" ", value))
    return value.strip()


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


# --- reading the file ------------------------------------------------------------------------------


def _decoded_lines(raw: IO[bytes], path: Path) -> Iterator[str]:
    """Lines of a UTF-8 file (BOM dropped), decoded one by one so that an error
    names the physical line where the file stops being UTF-8."""
    for number, chunk in enumerate(raw, start=1):
        if number == 1:
            if chunk.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                raise SubscriberListError(
                    f"{path.name} is UTF-16 (Excel's 'Unicode Text'); re-save it as 'CSV UTF-8'")
            if chunk.startswith(codecs.BOM_UTF8):
                chunk = chunk[len(codecs.BOM_UTF8):]
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError:
            raise SubscriberListError(
                f"{path.name}:{number}: the file is not UTF-8; re-save it as UTF-8 "
                "(in Excel: 'CSV UTF-8 (comma delimited)')") from None
        if "\r" in text[:-2]:  # bare CR line endings (old Mac): one line per CR, as an editor shows it
            yield from _BARE_CR.split(text)
        else:
            yield text


def _sniff_delimiter(header_line: str) -> str:
    """The delimiter used most in the header line (outside quotes); ',' on a tie."""
    outside = re.sub(r'"[^"]*"', "", header_line)
    counts = {d: outside.count(d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


class _Table:
    """An open CSV file positioned after its header row."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._raw = path.open("rb")
        except FileNotFoundError:
            raise SubscriberListError(
                f"{path}: no such file; check the path of the subscriber list") from None
        except IsADirectoryError:
            raise SubscriberListError(f"{path} is a folder; give the path of a CSV file") from None
        except OSError as exc:
            raise SubscriberListError(f"{path}: cannot read the subscriber list: {exc.strerror}") from None
        try:
            self._open()
        except BaseException:
            self._raw.close()
            raise

    def _open(self) -> None:
        lines = _decoded_lines(self._raw, self.path)
        self.header_line = 0
        first = ""
        for first in lines:
            self.header_line += 1
            if first.strip():
                break
        else:
            raise SubscriberListError(
                f"{self.path.name} is empty; it needs a header row with an 'email' column")
        self.delimiter = _sniff_delimiter(first)
        self._lines = lines
        self.reader = csv.reader(_prepend(first, lines), delimiter=self.delimiter)
        try:
            header = next(self.reader)
        except csv.Error as exc:
            raise SubscriberListError(
                f"{self.path.name}:{self.header_line}: unreadable header row: {exc}") from None
        self.columns = [clean_text(name).lower() for name in header]
        email_column = next((c for c in EMAIL_COLUMNS if c in self.columns), None)
        if email_column is None:
            shown = ", ".join(repr(c) for c in self.columns if c) or "none"
            raise SubscriberListError(
                f"{self.path.name}:{self.header_line}: no 'email' column (columns: {shown}); "
                "add a header row naming the address column 'email'")
        self.email_index = self.columns.index(email_column)
        self.lines_before = self.header_line - 1 + self.reader.line_num  # physical lines consumed

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """(first physical line, cells) for every non-blank row."""
        reader, offset = self.reader, self.header_line - 1
        consumed = self.lines_before
        try:
            while True:
                try:
                    cells = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    hint = ("the file has bare CR line endings (old Mac format); re-save it with "
                            "Windows or Unix line endings") if "new-line" in str(exc) else (
                            "check for an unbalanced quote")
                    raise SubscriberListError(
                        f"{self.path.name}:{consumed + 1}: cannot parse this row: {exc}; {hint}") from None
                line = consumed + 1
                consumed = offset + reader.line_num
                if consumed > line:
                    self._check_spanning_row(line, consumed, cells)
                if cells and any(cell.strip() for cell in cells):
                    yield line, cells
        finally:
            self.close()

    def _check_spanning_row(self, first: int, last: int, cells: list[str]) -> None:
        """A row over several lines is fine (a quoted address block), unless an unbalanced
        quote has swallowed the rows below it: refuse rather than silently drop recipients."""
        for cell in cells:
            if "\n" not in cell and "\r" not in cell:
                continue
            inner = cell.splitlines()[1:]
            if cell.endswith(("\n", "\r")) or any(
                    self.delimiter in part and _LOOKS_LIKE_ADDRESS.search(part) for part in inner):
                raise SubscriberListError(
                    f"{self.path.name}:{first}: a quoted field runs on to line {last} and swallows the "
                    "rows in between; check this row for an unbalanced '\"'")

    def close(self) -> None:
        self._raw.close()


def _prepend(first: str, rest: Iterable[str]) -> Iterator[str]:
    yield first
    yield from rest


def read_header(path: Path) -> list[str]:
    """The normalized column names of a list (to check a template's columns up front)."""
    table = _Table(path)
    table.close()
    return table.columns


def read_subscribers(path: Path, suppressed: Callable[[str], bool] | None = None
                     ) -> Iterator[Subscriber | SkippedRow]:
    """Stream the list: a Subscriber for each row to mail, a SkippedRow for the others.

    The file is opened and its header checked now (SubscriberListError at once);
    rows are read as the iterator is consumed. ``suppressed(key)`` says whether an
    address is on the suppression list."""
    table = _Table(path)
    return _stream(table, suppressed)


def _stream(table: _Table, suppressed: Callable[[str], bool] | None) -> Iterator[Subscriber | SkippedRow]:
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
    table = _Table(path)
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
