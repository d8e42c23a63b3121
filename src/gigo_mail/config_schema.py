"""The one schema of gigo-mail.toml: every key's type and range, checked whole when the file is read.

``config.load_config`` checks the parsed file against it before any dataclass is made, so ``build``
and ``send`` accept and refuse the same files, and a wrong value is found before a command runs
rather than as a traceback halfway through a send. Every problem comes back at once, one line each,
as ``gigo-mail.toml:LINE:COL: <what> — <fix>``. tomllib gives no positions, so a key is found again
in the file's text (``locate``). An issue's front matter may override ``[newsletter]`` keys; it is
checked with the same rules (``check_value``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gigo_mail.signup_config import url_origin

LANG_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")  # BCP 47, loosely: en, pt-BR, zh-Hant
LANG_HINT = "write one like 'en', 'de' or 'pt-BR'"

Check = Callable[[Any], str]  # "" when the value is fine, else what is wrong with it


@dataclass(frozen=True)
class Rule:
    """One key: its kind ('text', 'whole', 'number', 'flag', 'texts', 'table'), its range and the fix."""

    kind: str
    low: float | None = None  # the smallest value allowed
    high: float | None = None
    above: float | None = None  # a value must be greater than this
    choices: tuple[str, ...] = ()
    check: Check | None = None
    example: str = ""  # how a right value looks, for the fix


def _url(schemes: tuple[str, ...]) -> Check:
    def check(value: str) -> str:
        if value and not value.lower().startswith(tuple(f"{s}://" for s in schemes)):
            return f"'{value}' is not an {' or '.join(schemes)} URL"
        return ""
    return check


def _address(value: str) -> str:
    if value and "@" not in value:
        return f"'{value}' is not an email address"
    return ""


def _lang(value: str) -> str:
    return "" if LANG_TAG.match(value) else f"'{value}' is not a language tag ({LANG_HINT})"


def _unsubscribe_url(value: str) -> str:
    if problem := _url(("https", "http"))(value):
        return problem
    if "{email}" in value and value.lower().startswith(("http:", "https:")):
        return ("puts {email} in a web address, where every proxy and access log keeps it; "
                "use {token} (it holds the address sealed)")
    return ""


def _date(value: Any) -> str:
    import datetime as dt

    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return ""
    try:
        dt.date.fromisoformat(str(value))
    except ValueError:
        return f"'{value}' is not a date"
    return ""


MAIL_SOURCE_FORMS = "imaps://user@host/FOLDER, maildir:PATH, mbox:PATH or json:PATH"
MAIL_SOURCE_KINDS = ("maildir", "mbox", "json")  # the PATH forms (answers.source opens each)


def mail_source_problem(spec: str) -> str:
    """What is wrong with a mail source's name ('' when it has one of MAIL_SOURCE_FORMS' shapes)."""
    kind, colon, path = spec.partition(":")
    if not spec or spec.startswith(("imaps://", "imap://")) or (colon and path and kind in MAIL_SOURCE_KINDS):
        return ""
    return f"'{spec}' is not {MAIL_SOURCE_FORMS}"


def _not_blank(value: str) -> str:
    return "" if value.strip() else "is empty"


TEXT = Rule("text")
ADDRESS = Rule("text", check=_address, example='"news@example.org"')
HTTP_URL = Rule("text", check=_url(("https", "http")), example='"https://example.org"')

SCHEMA: dict[str, dict[str, Rule]] = {
    "": {"unsubscribe_secret": TEXT},
    "newsletter": {
        "name": TEXT, "from": Rule("text", check=_address, example='"Name <news@example.org>"'),
        "reply_to": ADDRESS, "postal_address": TEXT, "site_url": HTTP_URL,
        "unsubscribe_url": Rule("text", check=_unsubscribe_url,
                                example='"https://example.org/unsubscribe?token={token}"'),
        "unsubscribe_mailto": ADDRESS, "list_id": TEXT, "contact": ADDRESS,
        "template": Rule("text", check=_not_blank, example='"default"'),
        "lang": Rule("text", check=_lang, example='"en"'),
        "images": Rule("text", choices=("embed", "link")),
        "social": Rule("table", example='{ Website = "https://example.org" }'),
    },
    "smtp": {
        "url": Rule("text", check=_url(("smtp", "smtps")),
                    example='"smtp://127.0.0.1:1025"'),
        "concurrency": Rule("whole", low=1, high=100, example="8"),
        "rate": Rule("number", low=0, example="14"),
        "max_per_connection": Rule("whole", low=1, example="1000"),
        "attempts": Rule("whole", low=1, high=100, example="5"),
        "max_errors": Rule("whole", low=1, example="1000"),
        "timeout": Rule("number", above=0, example="30"),
        "data_timeout": Rule("number", above=0, example="600"),
        "refusal_breaker": Rule("whole", low=0, example="5"),
        "cafile": TEXT, "in_flight": Rule("whole", low=1, high=100, example="4"),
    },
    "site": {"dir": Rule("text", check=_not_blank, example='"site"'),
             "per_page": Rule("whole", low=1, example="20"), "description": TEXT,
             "subscribe_url": HTTP_URL, "subscribe_mailto": ADDRESS, "copy_remote_images": Rule("flag")},
    "dkim": {"selector": TEXT, "key_file": TEXT, "domain": TEXT, "ed25519_selector": TEXT,
             "ed25519_key_file": TEXT},
    "unsubscribe": {"sync_url": HTTP_URL, "cafile": TEXT,
                    "old_tokens_until": Rule("date", check=_date, example='"2027-06-05"'),
                    "mailto_token": Rule("flag")},
    "bounces": {"source": Rule("text", check=mail_source_problem, example='"maildir:~/Maildir/.Bounces"'),
                "move_to": TEXT, "return_path": ADDRESS, "verp": Rule("flag"),
                "cafile": TEXT},
    "list": {"path": TEXT, "email": TEXT, "name": TEXT, "first_name": TEXT, "last_name": TEXT, "tags": TEXT,
             "opt_out_column": TEXT, "opt_out_values": Rule("texts", example='["no"]'),
             "opt_in_values": Rule("texts", example='["yes"]'),
             "not_opt_out": Rule("texts", example='["state"]')},
    "suppression": {"soft_bounces": Rule("whole", low=1, example="3")},
    "signup": {
        "enabled": Rule("flag"),
        "consent_text": TEXT, "consent_version": TEXT, "redirect_url": HTTP_URL,
        "confirm_delay": Rule("whole", low=0, example="300"), "get_confirms": Rule("flag"),
        "confirm_hours": Rule("whole", low=1, example="72"), "welcome": TEXT,
        "per_ip_per_hour": Rule("whole", low=1, example="10"),
        "per_network_per_hour": Rule("whole", low=1, example="30"),
        "per_hour": Rule("whole", low=1, example="500"), "store_ip": Rule("flag"),
        "pow_cost": Rule("whole", low=1, example="5000"),
        "pow_max_counter": Rule("whole", low=1, example="1000"),
        "trusted_proxy": TEXT,
    },
}
REQUIRED_TABLES = ("newsletter",)
_KIND_NAMES = {"text": "a string in quotes", "date": 'a date like "2027-06-05"', "whole": "a whole number",
               "number": "a number", "flag": "true or false", "texts": "a list of strings",
               "table": "a table"}


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return "a date" if hasattr(value, "isoformat") else type(value).__name__


def check_value(rule: Rule, key: str, value: Any) -> tuple[str, str]:
    """(what is wrong, how to fix it) for one value of ``key``; ("", "") when it is right."""
    example = f", e.g. {key} = {rule.example}" if rule.example else ""
    want = _KIND_NAMES[rule.kind]
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    right_kind = {"text": isinstance(value, str), "whole": is_number and isinstance(value, int),
                  "date": isinstance(value, str) or hasattr(value, "isoformat"),
                  "number": is_number, "flag": isinstance(value, bool),
                  "texts": isinstance(value, list) and all(isinstance(v, str) for v in value),
                  "table": isinstance(value, dict)}[rule.kind]
    if not right_kind:
        shown = f"'{value}'" if isinstance(value, str) else _type_name(value)
        return f"{key} is {shown}, not {want}", f"write {want}{example}"
    if is_number:
        if rule.low is not None and value < rule.low:
            return f"{key} is {value}, below {rule.low:g}", f"use {rule.low:g} or more{example}"
        if rule.high is not None and value > rule.high:
            return f"{key} is {value}, above {rule.high:g}", f"use {rule.high:g} or less{example}"
        if rule.above is not None and value <= rule.above:
            return f"{key} is {value}", f"use a number above {rule.above:g}{example}"
    if rule.choices and value not in rule.choices:
        return f"{key} is '{value}'", "use " + " or ".join(f"{key} = \"{c}\"" for c in rule.choices)
    if rule.check is not None and (problem := rule.check(value)):
        return f"{key} {problem}", f"write it like {key} = {rule.example}" if rule.example else "correct it"
    return "", ""


@dataclass(frozen=True)
class Problem:
    """One wrong value, where it is in the file, and what to do."""

    section: str
    key: str
    what: str
    fix: str

    @property
    def name(self) -> str:
        where = f"[{self.section}] " if self.section else ""
        return f"{where}{self.key}" if self.key else f"[{self.section}]"


def _nearest(word: str, known: list[str]) -> str:
    close = difflib.get_close_matches(word, known, n=1)
    return f"did you mean '{close[0]}'?" if close else f"known: {', '.join(known)}"


def validate(data: dict[str, Any]) -> list[Problem]:
    """Every problem of a parsed gigo-mail.toml, in the order of the schema."""
    problems: list[Problem] = []
    sections = [name for name in SCHEMA if name]
    for key, value in data.items():
        if key in SCHEMA[""]:
            what, fix = check_value(SCHEMA[""][key], key, value)
            if what:
                problems.append(Problem("", key, what, fix))
        elif key not in SCHEMA:
            problems.append(Problem("", key, f"unknown section '{key}'", _nearest(key, sections)
                                    + " (or remove it)"))
    for section in sections:
        if section not in data:
            if section in REQUIRED_TABLES:
                problems.append(Problem(section, "", f"no [{section}] table",
                                        f"add [{section}] with name = \"...\" and from = \"...\""))
            continue
        table = data[section]
        if not isinstance(table, dict):
            problems.append(Problem("", section, f"{section} is {_type_name(table)}, not a table",
                                    f"write it as a [{section}] section with its keys below"))
            continue
        rules = SCHEMA[section]
        for key, value in table.items():
            if key not in rules:
                problems.append(Problem(section, key, f"unknown setting '{key}' in [{section}]",
                                        _nearest(key, list(rules)) + " (or remove it)"))
                continue
            what, fix = check_value(rules[key], key, value)
            if what:
                problems.append(Problem(section, key, f"[{section}] {what}", fix))
            elif rules[key].kind == "table":
                problems += [Problem(f"{section}.{key}", name, f"[{section}.{key}] {name} is "
                                     f"{_type_name(entry)}, not a string", f'write {name} = "..."')
                             for name, entry in value.items() if not isinstance(entry, str)]
    problems += _together(data)
    return problems


def _together(data: dict[str, Any]) -> list[Problem]:
    """Rules about two keys at once (each only when both values have the right type)."""
    problems = []
    dkim, bounces, newsletter = (data.get(name) for name in ("dkim", "bounces", "newsletter"))
    newsletter = newsletter if isinstance(newsletter, dict) else {}
    if isinstance(dkim, dict) and not dkim.get("selector"):
        for key in ("key_file", "domain"):
            if dkim.get(key):
                problems.append(Problem("dkim", key, f"[dkim] {key} is set but selector is not",
                                        "add selector = \"...\" (the name in selector._domainkey.domain)"))
    if isinstance(bounces, dict) and bounces.get("verp") is True:
        sender = bounces.get("return_path") or newsletter.get("from")
        if not isinstance(sender, str) or "@" not in sender:
            problems.append(Problem("bounces", "verp", "[bounces] verp = true needs an address",
                                    "set return_path (or [newsletter] from) to an address"))
    return problems + _signup_together(data.get("signup"), newsletter)


def _signup_together(signup: Any, newsletter: dict[str, Any]) -> list[Problem]:
    """[signup] on needs the public page's address; its redirect goes to the newsletter's own origins
    only (an open redirect would lend the page's name to phishers)."""
    if not isinstance(signup, dict) or signup.get("enabled") is not True:
        return []
    page = newsletter.get("unsubscribe_url")
    if not isinstance(page, str) or not url_origin(page):
        return [Problem("signup", "enabled", "[signup] enabled = true needs [newsletter] unsubscribe_url",
                        "set unsubscribe_url to the public page's address (/subscribe and /confirm sit "
                        "beside it)")]
    for key in ("consent_text", "consent_version"):  # the evidence names both: neither may be blank
        value = signup.get(key)
        if isinstance(value, str) and not value.strip():
            return [Problem("signup", key, f"[signup] {key} is empty",
                            f"write the {'wording readers agree to' if key == 'consent_text' else 'version'}"
                            " (or leave the key out for the default)")]
    redirect, site = signup.get("redirect_url"), newsletter.get("site_url")
    own = {url_origin(page), url_origin(site) if isinstance(site, str) else ""} - {""}
    # a redirect that is no URL at all has been told of already
    if isinstance(redirect, str) and url_origin(redirect) and url_origin(redirect) not in own:
        return [Problem("signup", "redirect_url", "[signup] redirect_url is not on the newsletter's own site",
                        f"use an address under {' or '.join(sorted(own))}")]
    return []


def toml_fix(message: str) -> str:
    """What to do about a TOML syntax error, from tomllib's message."""
    if message.startswith("Cannot declare"):
        return "that section appears twice; merge the two into one"
    if message.startswith("Cannot overwrite"):
        return "that key is set twice (or is also a section); keep one"
    return 'fix the syntax there: text goes in "quotes", a section is [name], a key is name = value'


# --- where a key is in the text ------------------------------------------------------------------

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*(?P<key>[A-Za-z0-9_.\-\"' ]+?)\s*=\s*(?P<value>.*)$")


def _unquote(name: str) -> str:
    return ".".join(part.strip().strip("\"'") for part in name.split("."))


def locate(text: str, section: str, key: str) -> tuple[int, int] | None:
    """(line, column), 1-based, of ``key``'s value in ``[section]`` (of the section's header when the
    key is empty); None when it cannot be found (an inline table, a key written oddly)."""
    current = ""
    wanted = key
    target = f"{section}.{wanted}" if section and wanted else section or wanted
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            current = _unquote(header.group(1))
            if current == target:
                return number, line.index("[") + 1
            continue
        match = _KEY.match(line)
        if not match:
            continue
        name = _unquote(match.group("key"))
        full = f"{current}.{name}" if current else name
        if full == target or full.startswith(f"{target}."):
            return number, match.start("value") + 1
    return None


def position_of(text: str, problem: Problem) -> tuple[int, int]:
    """Where ``problem`` is: its key, else its section's header (an unknown section's own), else 1:1."""
    fallback = (problem.section, "") if problem.section else (problem.key, "")
    for section, key in ((problem.section, problem.key), fallback):
        found = locate(text, section, key)
        if found is not None:
            return found
    return 1, 1
