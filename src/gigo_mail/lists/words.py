"""The words of consent, opt-outs and names in the languages lists are kept in, as data.

Lists come from everywhere: a German shop exports ``E-Mail;Vorname;Nachname;Einwilligung``,
a French one ``Adresse e-mail;Prénom;Nom;Désinscrit``. Which header marks a consent column,
which status values mean "do not mail" and which columns hold names is a table per language
(``data/lists/consent_words.toml``), not code: adding a language or a word touches no logic.
Every comparison is made on folded text (lower case, accents dropped: ``Désinscrit`` and
``desinscrit`` are one word), so a list typed without accents is read the same.
"""

from __future__ import annotations

import tomllib
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

# What a column is, for the reader: a status column (its words decide), a consent column
# (must say yes: any value stops the send, an empty cell too) or an opt-out column (says no:
# any value stops the send).
STATUS = "status"
CONSENT = "consent"
OPT_OUT = "opt_out"

# Kinds of status value (the skip kinds of the reader; "" is mailed).
MAILED, UNSUBSCRIBED, BOUNCED = "", "unsubscribed", "bounced"

FIELDS = ("first_name", "last_name", "name")


def fold(text: str) -> str:
    """Lower case without accents: ``Désinscrit`` -> ``desinscrit``, ``Förnamn`` -> ``fornamn``."""
    decomposed = unicodedata.normalize("NFKD", text.strip().lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@dataclass(frozen=True)
class _Matcher:
    """Header words of one kind: whole words, phrases (``a_b``) and stems (``stem*``)."""

    words: frozenset[str]
    phrases: tuple[str, ...]
    stems: tuple[str, ...]

    @classmethod
    def build(cls, entries: Iterable[str]) -> _Matcher:
        words, phrases, stems = set(), [], []
        for entry in (fold(e) for e in entries):
            if entry.endswith("*"):
                stems.append(entry[:-1])
            elif "_" in entry:
                phrases.append(f"_{entry}_")
            else:
                words.add(entry)
        return cls(frozenset(words), tuple(phrases), tuple(stems))

    def matches(self, folded: str) -> bool:
        if any(word in self.words for word in folded.split("_")):
            return True
        padded = f"_{folded}_"
        return any(p in padded for p in self.phrases) or any(s in folded for s in self.stems)


@dataclass(frozen=True)
class Words:
    """The table of every language, merged: what the reader asks of it."""

    languages: tuple[str, ...]
    status_columns: frozenset[str]
    consent: _Matcher
    opt_out: _Matcher
    status_values: Mapping[str, str]  # folded value -> MAILED / UNSUBSCRIBED / BOUNCED
    email_columns: tuple[str, ...]  # folded, in the table's order
    name_columns: Mapping[str, tuple[str, ...]]  # field -> folded column names

    def column_kind(self, column: str) -> str:
        """STATUS, OPT_OUT, CONSENT or "" for a (normalized) column name. A column that says no
        wins over one that says yes (``email_opt_out`` is an opt-out, not an opt-in)."""
        folded = fold(column)
        if folded in self.status_columns:
            return STATUS
        if self.opt_out.matches(folded):
            return OPT_OUT
        if self.consent.matches(folded):
            return CONSENT
        return ""

    def status_of(self, value: str) -> str | None:
        """MAILED, UNSUBSCRIBED or BOUNCED for a status value in any language; None if unknown."""
        return self.status_values.get(fold(value))


def load(text: str) -> Words:
    """The merged table from the TOML text; ValueError if a value means two things."""
    table = tomllib.loads(text)
    values: dict[str, str] = {}
    consent, opt_out, status, email = [], [], [], []
    names: dict[str, list[str]] = {field: [] for field in FIELDS}
    for language, entry in table.items():
        consent += entry.get("consent", [])
        opt_out += entry.get("opt_out", [])
        status += [fold(c) for c in entry.get("status", [])]
        email += [fold(c) for c in entry.get("email", [])]
        for field in FIELDS:
            names[field] += [fold(c) for c in entry.get(field, [])]
        for kind, key in ((MAILED, "mailed"), (UNSUBSCRIBED, "unsubscribed"), (BOUNCED, "bounced")):
            for value in (fold(v) for v in entry.get(key, [])):
                if values.setdefault(value, kind) != kind:
                    raise ValueError(f"consent_words.toml [{language}]: '{value}' is both "
                                     f"{values[value] or 'mailed'} and {kind or 'mailed'}")
    return Words(tuple(table), frozenset(status), _Matcher.build(consent), _Matcher.build(opt_out), values,
                 tuple(dict.fromkeys(email)), {f: tuple(dict.fromkeys(c)) for f, c in names.items()})


@cache
def words() -> Words:
    """The table shipped with the package (read once)."""
    return load(files("gigo_mail").joinpath("data/lists/consent_words.toml").read_text(encoding="utf-8"))


@cache
def table() -> dict[str, dict[str, list[str]]]:
    """The raw table per language, for tests and documentation."""
    text = files("gigo_mail").joinpath("data/lists/consent_words.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)
