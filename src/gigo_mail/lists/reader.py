"""Subscriber lists: read a CSV as a stream of recipients and skipped rows.

Why a stream: a list may hold a million rows, and the sender only ever needs
the next recipient. Memory stays flat: duplicates are caught with keyed 8-byte
digests, a few MB of them in memory and the rest in a scratch file (see :class:`DigestSet`).

What the reader accepts, so that a list exported from a spreadsheet just works:

* UTF-8, with or without a BOM (Excel's "CSV UTF-8"); anything else is refused
  with the line where decoding failed and a hint to re-save the file as UTF-8.
* ``,`` or ``;`` (or tab) as the delimiter, sniffed from the header line.
* A platform's export as it is (Mailchimp, Substack, Buttondown, listmonk, Ghost,
  Kit, beehiiv, MailerLite, EmailOctopus, Sendy, Brevo, Mailjet, Campaign Monitor,
  AWeber, Constant Contact; see ``formats`` and ``platforms``), or a plain list with an
  address column ("email", "Email Address", "E-Mail", "Courriel", "Sähköposti"... in the
  languages of ``words``; it reaches templates as ``email``).
  Every column reaches templates as ``subscriber.<column>``, normalized
  (``First Name`` -> ``first_name``) and also by its lower-cased header; the keys of
  JSON columns are fields too; ``first_name``, ``last_name`` and ``name`` are always
  defined, from the list's name columns in any of those languages (``Vorname``,
  ``Prénom``, ``Nazwisko``...), each derived from the others when the list lacks it.
* Blank lines are skipped, and every row keeps the physical line number where it
  starts (quoted fields may span lines), so an editor's "go to line" finds it.

Rows that are not mailed come out as :class:`SkippedRow` with a kind:

* ``invalid``: email-validator (syntax only) refused the address;
* ``duplicate``: the same address (case-insensitive) appeared on an earlier row;
  the first row for an address decides, later ones are reported;
* ``unsubscribed`` / ``bounced``: the format's opt-out rules say so (a plain list's
  ``status`` column: unsubscribed, complained, bounced, cleaned, ...);
* ``unclear``: an opt-out- or consent-looking column holds a value no rule covers (or a
  consent column is empty); a send refuses to start while there are any
  (``formats.unclear_message``);
* ``not in segment``: outside the run's ``--tag`` / ``--where`` segment;
* ``suppressed``: the address is on the suppression list (the ``suppressed``
  callback, usually ``Journal.is_suppressed``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gigo_mail.address import (
    AddressKey,
    address_key,
    check_address,
    plain_form,
    validate_address,
    why_invalid,
)
from gigo_mail.config import ListSettings
from gigo_mail.errors import SubscriberListError
from gigo_mail.lists.csv_file import CsvTable, clean_text
from gigo_mail.lists.digests import MEMORY_DIGESTS, DigestSet
from gigo_mail.lists.formats import (
    BOUNCED,
    EMAIL_COLUMNS,
    MAILED,
    UNCLEAR,
    UNSUBSCRIBED,
    ListFormat,
    OptOutRule,
    json_fields,
    normalize_column,
    parse_tags,
    recognise,
)
from gigo_mail.lists.segment import Segment

__all__ = ["EMAIL_COLUMNS", "OUTSIDE_SEGMENT", "SKIP_KINDS", "DigestSet", "ListHeader", "ListReport",
           "SkippedRow", "Subscriber", "SubscriberRows", "ValidatedAddresses", "address_key", "check_address",
           "check_list", "clean_text", "describe_list", "first_sendable", "nobody_message", "note_unclear",
           "read_subscribers", "sample_subscriber"]

OUTSIDE_SEGMENT = "not in segment"
PROGRESS_EVERY = 0x1FFF  # rows between two progress calls, less one
Progress = Callable[[int], None]
SKIP_KINDS = ("invalid", "duplicate", UNSUBSCRIBED, BOUNCED, UNCLEAR, "suppressed")


@dataclass(frozen=True, slots=True)
class Subscriber:
    """One recipient, validated and normalized; ``key`` is its identity everywhere."""

    line: int
    email: str
    key: AddressKey
    smtp_address: str
    needs_smtputf8: bool
    name: str
    fields: dict[str, str]
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SkippedRow:
    """A row that will not be mailed, with the reason a person can act on."""

    line: int
    email: str
    kind: str
    reason: str
    column: str = ""  # for opt-out kinds: the column that decided, and its value
    value: str = ""


@dataclass
class ListReport:
    """What ``check_list`` found: counts per kind and the first skipped rows."""

    path: Path
    columns: list[str]
    delimiter: str
    format: str = ""
    valid: int = 0
    needs_smtputf8: int = 0
    skipped_counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SKIP_KINDS, 0))
    skipped: list[SkippedRow] = field(default_factory=list)
    unclear: dict[str, set[str]] = field(default_factory=dict)  # column -> values seen
    suppressed_reasons: Counter[str] = field(default_factory=Counter)

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped_counts.values())

    @property
    def rows(self) -> int:
        """Non-blank data rows read."""
        return self.valid + self.skipped_total


class ValidatedAddresses:
    """Addresses a pass over a list has validated, so the next pass over it (the send
    after the plan) need not run email-validator on them again.

    Only plain addresses are kept (ASCII, whose validated forms are the address with its
    domain lower-cased, and that lower-cased as the key): for those the result is known
    from the text itself. At most ``LIMIT`` of them, in memory (a few MB): past that, addresses
    are validated again, which the plain-address fast path makes about as cheap as the lookup."""

    LIMIT = MEMORY_DIGESTS // 2  # below the table's spill: a cache never goes to disk
    __slots__ = ("_digests",)

    def __init__(self) -> None:
        self._digests = DigestSet()

    def __len__(self) -> int:
        return len(self._digests)

    def validate(self, email: str) -> tuple[AddressKey, str, bool]:
        """(key, smtp_address, needs_smtputf8), as ``validate_address`` gives them; ValueError if invalid."""
        if email in self._digests:
            plain = plain_form(email)
            return AddressKey(plain.lower()), plain, False
        result = validate_address(email)
        key, smtp_address, needs_utf8 = result
        if not needs_utf8 and len(self._digests) < self.LIMIT and email.isascii() \
                and smtp_address == plain_form(email) and key == smtp_address.lower():
            self._digests.add(email, 1)
        return result


def sample_subscriber(email: str, name: str = "", *, fields: Mapping[str, str] | None = None) -> Subscriber:
    """A recipient for test sends and previews (not read from a list).

    ``fields`` adds template columns; ``email``, ``name`` and ``first_name`` are
    filled from the arguments unless given there."""
    text = email.strip()
    try:
        key, smtp_address, needs_utf8 = validate_address(text)
    except ValueError as exc:
        raise SubscriberListError(f"'{text}' is not a valid address: {why_invalid(exc)}") from None
    values = {"email": text, "name": clean_text(name)}
    values.update({k.strip().lower(): clean_text(str(v)) for k, v in (fields or {}).items()})
    values["email"] = text
    full = _derive_names(values)
    return Subscriber(line=0, email=text, key=key, smtp_address=smtp_address,
                      needs_smtputf8=needs_utf8, name=full, fields=values)


@dataclass(frozen=True)
class ListHeader:
    """What a list's header says before any row is read."""

    format: ListFormat
    columns: list[str]  # normalized
    fields: frozenset[str]  # every field a row will have (normalized and lower-cased spellings)
    open_ended: bool  # rows also carry the keys of JSON columns, unknown until read


def _open(path: Path, settings: ListSettings | None) -> tuple[CsvTable, list[str], ListFormat]:
    table = CsvTable(path)
    try:
        columns = [normalize_column(c) if c else "" for c in table.columns]
        fmt = recognise(columns, settings, where=f"{path.name}:{table.header_line}")
    except BaseException:
        table.close()
        raise
    return table, columns, fmt


def describe_list(path: Path, settings: ListSettings | None = None) -> ListHeader:
    """The recognised format and the fields rows will have, from the header row alone."""
    table, columns, fmt = _open(path, settings)
    table.close()
    return _list_header(table, columns, fmt)


def _list_header(table: CsvTable, columns: list[str], fmt: ListFormat) -> ListHeader:
    fields = {*columns, *table.columns, *fmt.aliases, "email", "name", "first_name", "last_name"}
    if fmt.tags_column:
        fields.add("tags")
    fields.discard("")
    return ListHeader(fmt, columns, frozenset(fields), bool(fmt.json_columns))


class SubscriberRows(Iterator[Subscriber | SkippedRow]):
    """The stream ``read_subscribers`` returns; its ``header`` (format, columns, the fields every
    row has) is known before any row is read."""

    def __init__(self, table: CsvTable, columns: list[str], fmt: ListFormat,
                 suppressed: Callable[[str], bool] | None, segment: Segment | None,
                 validated: ValidatedAddresses | None = None, progress: Progress | None = None,
                 fields: bool = True) -> None:
        self.header = _list_header(table, columns, fmt)
        self.columns: list[str] = self.header.columns
        self.size = table.size
        self._rows = _stream(table, columns, fmt, suppressed, segment, validated, progress, fields)

    def __next__(self) -> Subscriber | SkippedRow:
        return next(self._rows)

    def close(self) -> None:
        self._rows.close()  # type: ignore[attr-defined]


def read_subscribers(path: Path, suppressed: Callable[[str], bool] | None = None, *,
                     settings: ListSettings | None = None, segment: Segment | None = None,
                     validated: ValidatedAddresses | None = None, progress: Progress | None = None,
                     fields: bool = True) -> SubscriberRows:
    """Stream the list: a Subscriber for each row to mail, a SkippedRow for the others.

    The file is opened, its header checked and its format recognised now
    (SubscriberListError at once); rows are read as the iterator is consumed.
    ``suppressed(key)`` says whether an address is on the suppression list; rows outside
    ``segment`` come out as SkippedRow kind ``not in segment``. Passes that share
    ``validated`` validate each plain address once. ``progress(bytes_read)`` is called every few
    thousand rows (``SubscriberRows.size`` is the file's size), for a progress bar. With
    ``fields=False`` a Subscriber carries its address alone (an import needs nothing else)."""
    table, columns, fmt = _open(path, settings)
    return SubscriberRows(table, columns, fmt, suppressed, segment, validated, progress, fields)


def _derive_names(values: dict[str, str]) -> str:
    """first_name, last_name and name always defined, each derived from the others when
    the list lacks it ("Ada Lovelace" gives first_name "Ada"); returns name."""
    first, last, full = values.get("first_name", ""), values.get("last_name", ""), values.get("name", "")
    if not full or (full == first and last):  # MailerLite's "Name" is the first name
        full = " ".join(part for part in (first, last) if part)
    elif not first and not last:
        first, _, last = full.partition(" ")
        last = last.strip()
    values["first_name"], values["last_name"], values["name"] = first, last, full
    return full


def _decide(rules: list[tuple[int, OptOutRule]], cells: list[str]) -> tuple[str, OptOutRule | None, str]:
    """(kind, rule, cell) of the first rule that says not to mail; a definite opt-out wins
    over an unclear value; ("", None, "") to mail."""
    unclear: tuple[str, OptOutRule | None, str] = (MAILED, None, "")
    for index, rule in rules:
        kind = rule.decide(cells[index])
        if kind == UNCLEAR:
            if unclear[1] is None:
                unclear = (UNCLEAR, rule, cells[index])
        elif kind:
            return kind, rule, cells[index]
    return unclear


def _stream(table: CsvTable, columns: list[str], fmt: ListFormat,
            suppressed: Callable[[str], bool] | None, segment: Segment | None,
            validated: ValidatedAddresses | None = None, progress: Progress | None = None,
            fields: bool = True) -> Iterator[Subscriber | SkippedRow]:
    validate = validated.validate if validated is not None else validate_address
    seen = DigestSet()
    try:
        yield from _rows(table, columns, fmt, suppressed, segment, validate, progress, fields, seen)
    finally:
        seen.close()  # the scratch file goes with the pass, however it ends


def _rows(table: CsvTable, columns: list[str], fmt: ListFormat, suppressed: Callable[[str], bool] | None,
          segment: Segment | None, validate: Callable[[str], tuple[AddressKey, str, bool]],
          progress: Progress | None, fields: bool, seen: DigestSet) -> Iterator[Subscriber | SkippedRow]:
    width = len(columns)
    email_index = columns.index(fmt.email_column)
    # (index, normalized name, lower-cased header if it differs): the first column of a name wins
    named = [(i, c, legacy if legacy != c else "") for i, (c, legacy) in enumerate(zip(columns, table.columns,
                                                                                      strict=True)) if c]
    rules = [(columns.index(rule.column), rule) for rule in fmt.all_rules()]
    json_indexes = [columns.index(c) for c in fmt.json_columns]
    tags_index = columns.index(fmt.tags_column) if fmt.tags_column else -1
    aliases = list(fmt.aliases.items())
    count = 0
    for line, cells in table.rows():
        count += 1
        if progress is not None and not count & PROGRESS_EVERY:
            progress(table.position())
        if len(cells) < width:
            cells += [""] * (width - len(cells))
        email = cells[email_index].strip()
        if not email:
            yield SkippedRow(line, "", "invalid", "no address in the email column")
            continue
        try:
            key, smtp_address, needs_utf8 = validate(email)
        except ValueError as exc:
            yield SkippedRow(line, email, "invalid", f"'{email}' is not a valid address: {why_invalid(exc)}")
            continue
        first_line = seen.add(key, line) if fields else 0  # an import needs no dedupe: the journal does it
        if first_line:
            yield SkippedRow(line, email, "duplicate", f"'{email}' is a duplicate of line {first_line}")
            continue
        if rules:
            kind, rule, cell = _decide(rules, cells)
            if rule is not None:
                value = clean_text(cell)
                if kind == UNCLEAR:
                    reason = f"{rule.column} is '{value}': no rule says whether that means opted out"
                else:
                    reason = rule.why or f"{rule.column} is '{value}'"
                yield SkippedRow(line, email, kind, reason, rule.column, value)
                continue
        if not fields:  # only the address is wanted (an import): no segment, no suppression list
            yield Subscriber(line, email, key, smtp_address, needs_utf8, "", {})
            continue
        values: dict[str, str] = {}
        for index, column, legacy in named:
            if column not in values:
                value = values[column] = clean_text(cells[index])
                if legacy:
                    values.setdefault(legacy, value)
        values["email"] = email
        for index in json_indexes:
            for name, value in json_fields(cells[index]).items():
                values.setdefault(name, value)
        for name, column in aliases:
            values[name] = values.get(column, "")
        tags: tuple[str, ...] = ()
        if tags_index >= 0:
            tags = parse_tags(cells[tags_index])
            values["tags"] = ", ".join(tags)
        name = _derive_names(values)
        if segment is not None and not segment.matches(values, tags):
            yield SkippedRow(line, email, OUTSIDE_SEGMENT, f"not in the segment ({segment.describe()})")
            continue
        if suppressed is not None and suppressed(key):
            yield SkippedRow(line, email, "suppressed", f"'{email}' is on the suppression list")
            continue
        yield Subscriber(line=line, email=email, key=key, smtp_address=smtp_address,
                         needs_smtputf8=needs_utf8, name=name, fields=values, tags=tags)


def first_sendable(path: Path, suppressed: Callable[[str], bool] | None = None,
                   settings: ListSettings | None = None) -> Subscriber | None:
    """The first row a send would mail (for previews and test sends), or None."""
    rows = read_subscribers(path, suppressed, settings=settings)
    try:
        return next((row for row in rows if isinstance(row, Subscriber)), None)
    finally:
        rows.close()


def check_list(path: Path, suppressed: Callable[[str], bool] | None = None, *, keep: int = 50,
               settings: ListSettings | None = None, suppression_reason: Callable[[str], str] | None = None,
               segment: Segment | None = None) -> ListReport:
    """Read the whole list without sending: counts per kind, the first ``keep`` skipped rows,
    the values of unclear opt-out columns, and (with ``suppression_reason(key)``) why the
    suppressed rows are suppressed."""
    table, columns, fmt = _open(path, settings)
    report = ListReport(path=path, columns=[c for c in columns if c], delimiter=table.delimiter,
                        format=fmt.label)
    for item in _stream(table, columns, fmt, suppressed, segment):
        if isinstance(item, Subscriber):
            report.valid += 1
            report.needs_smtputf8 += item.needs_smtputf8
            continue
        report.skipped_counts[item.kind] = report.skipped_counts.get(item.kind, 0) + 1
        if item.kind == UNCLEAR:
            note_unclear(report.unclear, item)
        elif item.kind == "suppressed" and suppression_reason is not None:
            why = suppression_reason(address_key(item.email)).partition(":")[0].strip() or "no reason given"
            report.suppressed_reasons[why] += 1
        if len(report.skipped) < keep and item.kind != OUTSIDE_SEGMENT:
            report.skipped.append(item)
    return report


def note_unclear(unclear: dict[str, set[str]], row: SkippedRow, most: int = 20) -> None:
    """Remember an unclear row's column and value (a few distinct values per column)."""
    values = unclear.setdefault(row.column, set())
    if len(values) < most:
        values.add(row.value)



def nobody_message(where: str, rows: int, counts: Mapping[str, int], done: str = "nothing was sent") -> str:
    """The one line for a list (or segment) that leaves nobody to mail, and why: how many rows
    were read and how many went to each reason, the most first."""
    if not rows:
        return f"nobody to send to: {where} has no rows under its header; {done}"
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    reasons = ", ".join(f"{n:,} {kind}" for kind, n in ranked if n)
    return f"nobody to send to: of the {rows:,} rows of {where}, {reasons}; {done}"
