"""The building blocks of list formats: what one column's values mean, and what a format is.

Kept apart from ``formats`` (which recognises platforms) so that formats written as data
(``platforms``) and formats written as code share one definition of a rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from gigo_mail.lists.words import BOUNCED, MAILED, UNSUBSCRIBED, fold

__all__ = ["BOUNCED", "FALSE_WORDS", "MAILED", "TRUE_WORDS", "UNCLEAR", "UNSUBSCRIBED", "ListFormat",
           "OptOutRule", "looks_like_date", "normalize_column", "states"]

# Why a row is not mailed (SkippedRow kinds; MAILED is "" for a row that is mailed).
UNCLEAR = "unclear"

TRUE_WORDS = frozenset({"true", "yes", "y", "1", "t"})
FALSE_WORDS = frozenset({"false", "no", "n", "0", "f"})

_NOT_WORD = re.compile(r"[\W_]+")
_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_TIME = (r"(?:[ t,]+\d{1,2}[:.]\d{2}(?:[:.]\d{2}(?:\.\d+)?)?\s*(?:[ap]\.?m\.?)?"
         r"\s*(?:z|utc|gmt|[+-]\d{2}:?\d{2})?)?")
_DATE = re.compile(
    rf"(?:\d{{4}}-\d{{1,2}}-\d{{1,2}}|\d{{1,2}}[./-]\d{{1,2}}[./-]\d{{2,4}}|\d{{4}}/\d{{1,2}}/\d{{1,2}}"
    rf"|{_MONTH} \d{{1,2}},? \d{{4}}|\d{{1,2}}\.? {_MONTH},? \d{{4}}){_TIME}", re.IGNORECASE)


def normalize_column(header: str) -> str:
    """``"First Name"`` -> ``"first_name"``: lower case, runs of anything but letters and
    digits become one ``_``. Templates may use either spelling."""
    text = header.strip().lower()
    return _NOT_WORD.sub("_", text).strip("_") or text


def looks_like_date(value: str) -> bool:
    """Whether a cell holds a date or a timestamp (ISO 8601, 05.02.2024, 2/5/24, Mar 3, 2024 10:12am)."""
    return _DATE.fullmatch(value.strip()) is not None


@dataclass(frozen=True)
class OptOutRule:
    """What the values of one column mean.

    ``values`` maps a value (compared case-insensitively and without accents, trimmed) to
    ``MAILED`` or to a skip kind; ``empty`` is the meaning of an empty cell, ``dates`` (if
    set) of a cell holding a date, and ``other`` of any value not in ``values``. ``why``
    (optional) is said instead of "<column> is '<value>'"."""

    column: str
    values: Mapping[str, str] = field(default_factory=dict)
    other: str = UNCLEAR
    empty: str = MAILED
    why: str = ""
    dates: str | None = None

    def decide(self, cell: str) -> str:
        value = cell.strip().lower()
        if not value:
            return self.empty
        kind = self.values.get(value)
        if kind is None and not value.isascii():
            kind = self.values.get(fold(value))
        if kind is not None:
            return kind
        if self.dates is not None and looks_like_date(value):
            return self.dates
        return self.other


def states(mailed: Iterable[str], **skipped: Iterable[str]) -> dict[str, str]:
    """A value table: these values are mailed, those are skipped as the keyword's kind."""
    table = dict.fromkeys((fold(v) for v in mailed), MAILED)
    for kind, values in skipped.items():
        table.update(dict.fromkeys((fold(v) for v in values), kind))
    return table


@dataclass(frozen=True)
class ListFormat:
    """How to read one list: where the address is, what each opt-out column means."""

    key: str  # "mailchimp", "substack", ..., "plain", "custom"
    label: str  # shown to the user: "Mailchimp (unsubscribed export)"
    email_column: str
    rules: tuple[OptOutRule, ...] = ()
    tags_column: str = ""
    json_columns: tuple[str, ...] = ()
    # field name -> column holding it (custom formats: first_name = "Vorname")
    aliases: Mapping[str, str] = field(default_factory=dict)
    # opt-out-looking columns that are known not to be flags (or are covered by a file-wide rule)
    known: frozenset[str] = frozenset()
    # rules for the opt-out- or consent-looking columns nothing else covers: they stop the send
    guards: tuple[OptOutRule, ...] = ()

    @property
    def covered(self) -> frozenset[str]:
        return frozenset(rule.column for rule in self.rules) | self.known

    @property
    def says_who_opted_out(self) -> bool:
        """Whether the file records opt-outs (row by row, or as a whole)."""
        return bool(self.rules)

    def all_rules(self) -> tuple[OptOutRule, ...]:
        """The format's rules, then the guards: a refusal names a status column before a guard."""
        return self.rules + self.guards
