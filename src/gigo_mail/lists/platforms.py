"""Platform exports described as data (``data/lists/platforms.toml``): MailerLite, EmailOctopus,
Sendy, Brevo, Mailjet, Campaign Monitor, AWeber and Constant Contact.

Each entry says how the export is recognised by its header and what its status columns mean,
from the platform's own documentation (the ``docs`` of each entry, cited in the README). A
new platform, or a status value a platform adds, is a change to the table, not to code.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from gigo_mail.lists.rules import (
    BOUNCED,
    MAILED,
    UNCLEAR,
    UNSUBSCRIBED,
    ListFormat,
    OptOutRule,
    normalize_column,
    states,
)

KINDS = {"mailed": MAILED, "unsubscribed": UNSUBSCRIBED, "bounced": BOUNCED, "unclear": UNCLEAR}
FIELDS = ("first_name", "last_name", "name")


@dataclass(frozen=True)
class RuleSpec:
    columns: tuple[str, ...]  # the rule applies to each of these the export has
    values: Mapping[str, str]
    empty: str
    other: str


@dataclass(frozen=True)
class PlatformSpec:
    key: str
    label: str
    email: tuple[str, ...]
    requires: frozenset[str]
    any: frozenset[str]
    known: frozenset[str]
    fields: Mapping[str, str]  # first_name / last_name / name -> column
    tags: str
    docs: tuple[str, ...]
    rules: tuple[RuleSpec, ...]

    def recognise(self, columns: frozenset[str]) -> ListFormat | None:
        """The format of an export whose (normalized) header has these columns, or None."""
        email = next((c for c in self.email if c in columns), None)
        if email is None or not self.requires <= columns or (self.any and not self.any & columns):
            return None
        rules = tuple(OptOutRule(column, spec.values, other=spec.other, empty=spec.empty)
                      for spec in self.rules for column in spec.columns if column in columns)
        if not rules:
            return None
        aliases = {name: column for name, column in self.fields.items() if column in columns}
        tags = self.tags if self.tags in columns else ""
        return ListFormat(self.key, self.label, email, rules, tags_column=tags, aliases=aliases,
                          known=self.known & columns)


def _kind(value: str, where: str) -> str:
    try:
        return KINDS[value]
    except KeyError:
        raise ValueError(f"platforms.toml {where}: '{value}' is not one of {', '.join(KINDS)}") from None


def _names(values: list[str]) -> tuple[str, ...]:
    return tuple(normalize_column(v) for v in values)


def load(text: str) -> tuple[PlatformSpec, ...]:
    """The platforms of the TOML text, in its order; ValueError for an entry that makes no sense."""
    specs = []
    for entry in tomllib.loads(text)["platform"]:
        key = entry["key"]
        rules = []
        for rule in entry.get("rule", []):
            values = states(rule.get("mailed", []), unsubscribed=rule.get("unsubscribed", []),
                            bounced=rule.get("bounced", []))
            rules.append(RuleSpec(_names(rule["column"]), values, _kind(rule.get("empty", "unclear"), key),
                                  _kind(rule.get("other", "unclear"), key)))
        if not rules:
            raise ValueError(f"platforms.toml {key}: no rule says who is mailed")
        fields = {name: normalize_column(entry[name]) for name in FIELDS if entry.get(name)}
        tags = normalize_column(entry["tags"]) if entry.get("tags") else ""
        specs.append(PlatformSpec(
            key, entry["label"], _names(entry["email"]), frozenset(_names(entry["requires"])),
            frozenset(_names(entry.get("any", []))), frozenset(_names(entry.get("known", []))), fields, tags,
            tuple(entry.get("docs", ())), tuple(rules)))
    return tuple(specs)


@cache
def platforms() -> tuple[PlatformSpec, ...]:
    """The platforms shipped with the package (read once)."""
    return load(files("gigo_mail").joinpath("data/lists/platforms.toml").read_text(encoding="utf-8"))
