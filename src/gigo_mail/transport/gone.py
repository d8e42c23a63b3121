"""Which refusals say the mailbox is gone (suppress for good), which are temporary (a soft
bounce) and which are neither: the one rule for a reply at RCPT (the send path) and for a failure
a bounce reports later (the answers), so that both suppress the same readers.

The words and codes are data shipped with the package (``data/bounces/wordings.toml``: the
codes, the general words, and a table of real provider wordings with where each was seen); the
order they are applied in lives here (:func:`verdict`), and is documented at the top of the table.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

__all__ = ["GONE", "REFUSED", "TEMPORARY", "enhanced_code", "hard_bounce_reason", "mailbox_gone",
           "says_gone", "specific_code", "verdict"]

GONE = "gone"  # the mailbox does not exist or is disabled: suppress the address for good
TEMPORARY = "temporary"  # it may pass: a soft bounce, counted across issues
REFUSED = "refused"  # a permanent refusal that says nothing about the mailbox: recorded only
VERDICTS = (GONE, TEMPORARY, REFUSED)

_ENHANCED = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_REPLY_4XX = re.compile(r"\s*(?:smtp;\s*)?4\d\d\b", re.IGNORECASE)  # a transient reply with no enhanced code


@dataclass(frozen=True)
class Wording:
    """One provider's wording from the table: what it matches and what it means."""

    provider: str
    verdict: str
    example: str
    status: str
    source: str
    words: re.Pattern[str] | None  # None: an example the general rule must decide by itself


@dataclass(frozen=True)
class Rules:
    gone_codes: frozenset[str]
    temporary_codes: frozenset[str]
    generic: frozenset[str]  # "subject.detail" of the "other or undefined" statuses
    gone_words: re.Pattern[str]
    temporary_words: re.Pattern[str]
    wordings: tuple[Wording, ...]


def _any(patterns: list[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


@cache
def rules() -> Rules:
    """The table, read once from the package's data."""
    text = resources.files("gigo_mail").joinpath("data/bounces/wordings.toml").read_text("utf-8")
    data = tomllib.loads(text)
    wordings = []
    for entry in data.get("wording", []):
        if entry["verdict"] not in VERDICTS:
            raise ValueError(f"wordings.toml: {entry['provider']}: unknown verdict {entry['verdict']!r}")
        words = entry.get("words")
        wordings.append(Wording(entry["provider"], entry["verdict"], entry["example"], entry["status"],
                                entry["source"], re.compile(words, re.IGNORECASE) if words else None))
    return Rules(frozenset(data["codes"]["gone"]), frozenset(data["codes"]["temporary"]),
                 frozenset(data["codes"]["generic"]), _any(data["words"]["gone"]),
                 _any(data["words"]["temporary"]), tuple(wordings))


def enhanced_codes(text: str) -> list[str]:
    """Every enhanced status code (``5.1.1``) in a failure's text, in order."""
    return [".".join(m.groups()) for m in _ENHANCED.finditer(text)]


def enhanced_code(text: str) -> str | None:
    """The first enhanced status code in a reply's text, if any."""
    codes = enhanced_codes(text)
    return codes[0] if codes else None


def specific_code(text: str) -> str | None:
    """The first enhanced code in the text that is not a generic "other or undefined" one."""
    generic = rules().generic
    return next((c for c in enhanced_codes(text) if c.partition(".")[2] not in generic), None)


def provider_wording(text: str) -> Wording | None:
    """The first table entry whose words match (with whitespace folded)."""
    folded = " ".join(text.split())
    return next((w for w in rules().wordings if w.words is not None and w.words.search(folded)), None)


def verdict(text: str) -> str:
    """GONE, TEMPORARY or REFUSED for a failure's text (its status code and diagnostic, or an
    SMTP reply), by the order documented at the top of ``wordings.toml``."""
    table = rules()
    folded = " ".join(text.split())
    codes = enhanced_codes(folded)
    transient = codes[0].startswith("4") if codes else _REPLY_4XX.match(folded) is not None
    if transient:
        return TEMPORARY
    wording = provider_wording(folded)
    if wording is not None:
        return wording.verdict
    specific = specific_code(folded)
    if specific is not None:
        if specific.startswith("4"):
            return TEMPORARY
        if specific in table.gone_codes:
            return GONE
        if specific in table.temporary_codes or table.temporary_words.search(folded):
            return TEMPORARY
        return REFUSED
    if table.gone_words.search(folded):
        return GONE
    return TEMPORARY if table.temporary_words.search(folded) else REFUSED


def says_gone(text: str) -> bool:
    """Whether a failure's words say the mailbox does not exist (or is disabled)."""
    return verdict(text) == GONE


def mailbox_gone(code: int | None, text: str) -> bool:
    """Whether an SMTP refusal says the mailbox is gone: a 5xx that :func:`says_gone`."""
    if code is None or not 500 <= code <= 599:
        return False
    return says_gone(text)


def hard_bounce_reason(code: int | None, text: str) -> str | None:
    """The suppression reason for a refusal that means the mailbox is gone, else None:
    ``bounced: 550 5.1.1 <ann@example.org>: Recipient address rejected: User unknown``."""
    if not mailbox_gone(code, text):
        return None
    return f"bounced: {code} {' '.join(text.split())}"
