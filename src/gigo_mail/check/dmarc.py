"""DMARC records read as strictly as receivers read them (RFC 7489 and DMARCbis, RFC 9989).

A record a receiver would ignore is worse than none: the sender believes they have a
policy. So the tag list is parsed to the grammar (``v=DMARC1`` first and exact, tags
separated by ``;``, no tag twice, each value in its range), and every error comes with
the corrected record. The record that applies is found by the tree walk, and what it
means for the From domain (``p``, or ``sp``/``np`` from a parent) is worked out here,
for the verdict on what receivers will do with the mail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gigo_mail.check.lookup import Lookup

POLICIES = ("none", "quarantine", "reject")
KNOWN = {"v", "p", "sp", "np", "psd", "t", "adkim", "aspf", "rua", "ruf", "fo", "pct", "rf", "ri"}
REMOVED = {"pct": "use t=y for testing", "rf": "reports are always AFRF", "ri": "reports are daily"}
_TAG = re.compile(r"^[ \t]*([A-Za-z][A-Za-z0-9_]*)[ \t]*=[ \t]*(.*?)[ \t]*$", re.S)
_LOOSE = re.compile(r"([A-Za-z][A-Za-z0-9_]*)[ \t]*=[ \t]*([^;\s]*)")
_URI = re.compile(r"^mailto:[^@\s,!]+@[^@\s,!]+\.[^@\s,!]+(![0-9]+[kmgt]?)?$", re.I)
_CHECKS: dict[str, tuple[re.Pattern[str], str]] = {
    "p": (re.compile(r"^(none|quarantine|reject)$", re.I), "none, quarantine or reject"),
    "sp": (re.compile(r"^(none|quarantine|reject)$", re.I), "none, quarantine or reject"),
    "np": (re.compile(r"^(none|quarantine|reject)$", re.I), "none, quarantine or reject"),
    "adkim": (re.compile(r"^[rs]$", re.I), "r or s"),
    "aspf": (re.compile(r"^[rs]$", re.I), "r or s"),
    "t": (re.compile(r"^[yn]$", re.I), "y or n"),
    "psd": (re.compile(r"^[ynu]$", re.I), "y, n or u"),
    "fo": (re.compile(r"^[01ds](:[01ds])*$", re.I), "0, 1, d or s, joined by ':'"),
    "pct": (re.compile(r"^(100|[1-9]?[0-9])$"), "a whole number 0-100"),
    "rf": (re.compile(r"^afrf$", re.I), "afrf"),
    "ri": (re.compile(r"^[0-9]+$"), "a whole number of seconds"),
}


@dataclass
class DmarcRecord:
    """One TXT record at ``_dmarc.<name>`` that starts like a DMARC record, parsed."""

    name: str
    text: str
    tags: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # why receivers ignore it, or read it otherwise
    notes: list[str] = field(default_factory=list)  # what works but is not as meant
    fix: str = ""  # the record as it should read, when it has errors
    fatal: bool = False  # a syntax error: receivers discard the whole record
    bad: set[str] = field(default_factory=set)  # tags whose value is invalid: discarded for the default

    @property
    def policy_broken(self) -> bool:
        return "p" not in self.tags or bool({"p", "sp"} & self.bad)

    @property
    def ignored(self) -> bool:
        """Receivers discard it: a syntax error, or no valid policy and no valid rua (RFC 7489 6.6.3)."""
        return self.fatal or (self.policy_broken and not self.reads_as_none)

    @property
    def reads_as_none(self) -> bool:
        """A missing or invalid p= (or sp=) with a valid rua is read as p=none (RFC 7489 6.6.3, RFC 9989)."""
        rua = "rua" not in self.bad and any(_URI.match(u) for u in _uris(self.tags.get("rua", "")))
        return not self.fatal and self.policy_broken and rua

    def value(self, tag: str, default: str) -> str:
        """A tag as receivers read it: an invalid value is discarded for the default (RFC 7489 6.3)."""
        return default if tag in self.bad else self.tags.get(tag, default).lower()


def _uris(value: str) -> list[str]:
    return [u.strip() for u in value.split(",") if u.strip()]


def parse_dmarc(name: str, text: str) -> DmarcRecord:
    """The record's tags, its errors (with the fixed record) and notes."""
    record = DmarcRecord(name, text)
    parts = [p for p in text.split(";")]
    if parts and not parts[-1].strip():
        parts.pop()  # a trailing ';' is allowed
    for index, part in enumerate(parts):
        match = _TAG.match(part)
        if not match:
            record.errors.append(f"'{part.strip()}' is not a tag=value pair")
            record.fatal = True
            continue
        key, value = match.group(1).lower(), match.group(2)
        if index == 0 and key != "v":
            record.errors.append("v=DMARC1 must be the first tag")
            record.fatal = True
        if key in record.tags:
            record.errors.append(f"{key}= appears twice (the whole record is then invalid)")
            record.fatal = True
            continue
        record.tags[key] = value
    version = record.tags.get("v")
    if version is not None and version != "DMARC1":
        if re.search(r"\s[A-Za-z]+\s*=", version):
            record.errors.insert(0, f"the tags are not separated by ';' (v reads as '{version}')")
        else:
            record.errors.insert(0, f"v={version}: must be exactly DMARC1")
    elif version is None:
        record.errors.append("no v=DMARC1 tag")
    record.fatal = record.fatal or version != "DMARC1"
    if "v" in record.tags and record.tags["v"] == "DMARC1" or not record.errors:
        _check_values(record)
    if record.errors:
        record.fix = _fixed(text)
    return record


def _check_values(record: DmarcRecord) -> None:
    tags = record.tags
    if "p" not in tags:
        record.errors.append("no p= tag (RFC 7489 6.3 requires it): add p=none to monitor, or p=quarantine")
    for key, value in tags.items():
        if key in _CHECKS and not _CHECKS[key][0].match(value):
            record.errors.append(f"{key}={value} (must be {_CHECKS[key][1]})")
            record.bad.add(key)
        elif key in ("rua", "ruf"):
            bad = [u for u in _uris(value) if not _URI.match(u)]
            if bad or not _uris(value):
                record.bad.add(key)
                record.errors.append(f"{key}={value}: report addresses are mailto:name@domain, "
                                     "comma-separated")
        elif key not in KNOWN:
            record.notes.append(f"unknown tag {key}= (receivers ignore it)")
    record.notes += [f"{t}= is not in RFC 9989 ({why})" for t, why in REMOVED.items() if t in tags]


def _fixed(text: str) -> str:
    """The record rewritten to the grammar: v=DMARC1 first, '; ' between tags, values checked kept."""
    pairs: dict[str, str] = {}
    for key, value in _LOOSE.findall(text):
        key = key.lower()
        if key == "v" or key in pairs:
            continue
        if key in _CHECKS and not _CHECKS[key][0].match(value):
            value = "none" if key == "p" else ""
        elif key in ("rua", "ruf"):
            value = ",".join(u for u in _uris(value) if _URI.match(u))
        if value:
            pairs[key] = value.lower() if key in _CHECKS else value
    pairs.setdefault("p", "none")
    ordered = {"p": pairs.pop("p"), **pairs}
    return "v=DMARC1; " + "; ".join(f"{k}={v}" for k, v in ordered.items())


@dataclass(frozen=True)
class Policy:
    """What applies to mail From a domain: the record found, and the policy for that domain."""

    record: DmarcRecord | None  # the first DMARC record on the walk (valid or not): the one to fix
    applied: DmarcRecord | None  # the record receivers use (None: no DMARC for this domain)
    policy: str  # none, quarantine, reject; "" without DMARC
    adkim: str = "r"
    aspf: str = "r"
    tag: str = "p"  # which tag gave it: p, or a parent's sp (subdomains) or np (names that do not exist)


def _candidates(lookup: Lookup, name: str) -> list[str]:
    """TXT records that start like a DMARC record (others at _dmarc are not DMARC's, RFC 7489 6.6.3)."""
    return [r for r in lookup.txt(name) if re.match(r"^\s*v\s*=\s*DMARC1", r, re.I)]


def find_policy(domain: str, lookup: Lookup) -> tuple[Policy, list[str]]:
    """The DMARC that applies to ``domain`` by the tree walk, and problems of the names walked
    (several records at one name: all are ignored)."""
    labels = domain.lower().rstrip(".").split(".")
    first: DmarcRecord | None = None
    problems: list[str] = []
    for start in range(0, max(len(labels) - 1, 1)):
        name = "_dmarc." + ".".join(labels[start:])
        found = _candidates(lookup, name)
        misplaced = [r for r in lookup.txt(name)
                     if "v=dmarc1" in r.lower().replace(" ", "") and r not in found]
        if not found and misplaced and first is None:  # discarded by receivers, but meant as DMARC
            first = parse_dmarc(name, misplaced[0])
        if len(found) > 1:
            problems.append(f"{name} has {len(found)} DMARC records; receivers ignore them all: keep one")
            continue
        if not found:
            continue
        record = parse_dmarc(name, found[0])
        first = first or record
        if record.ignored:
            continue
        policy, tag = ("none" if record.reads_as_none else record.value("p", "none")), "p"
        if start > 0:  # a parent's record: sp for subdomains, np for names that do not exist
            if "sp" in record.tags and "sp" not in record.bad:
                policy, tag = record.value("sp", policy), "sp"
            if "np" in record.tags and "np" not in record.bad and not lookup.exists(domain):
                policy, tag = record.value("np", policy), "np"
        return Policy(first, record, policy, record.value("adkim", "r"), record.value("aspf", "r"),
                      tag), problems
    return Policy(first, None, ""), problems
