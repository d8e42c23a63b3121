"""Platform exports: recognise a subscriber list by its header row, and say who opted out.

Most lists arrive as an export from the platform a newsletter is leaving. Each platform
keeps its opt-outs in its own way (a status word, a true/false flag, a date, or a whole
separate file), and sending to any of those rows is a legal problem. A
:class:`ListFormat` holds, for one header row, everything the reader needs:

* which column holds the address, which hold tags, which hold JSON whose keys become
  fields (listmonk ``attributes``, Buttondown ``metadata``);
* :class:`OptOutRule` s: for one column, which values are mailed, which are not (and why),
  and what any other value means. A value no rule knows is ``unclear``: the send stops
  and asks instead of guessing;
* guard rules for columns that *look like* opt-out flags (``status``, ``consent``,
  ``unsubscribed``...) that nothing covers: any value in them is ``unclear`` until
  ``gigo-mail.toml`` ``[list]`` says what it means (or lists the column in ``not_opt_out``).

The formats follow each platform's documentation and its own export code (see README,
"Lists from other platforms"). Columns are compared by :func:`normalize_column`, so
``First Name``, ``first name`` and ``first_name`` are one column.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from gigo_mail.config import ListSettings
from gigo_mail.errors import ListFormatError
from gigo_mail.lists.csv_file import clean_text

# Why a row is not mailed (SkippedRow kinds).
UNSUBSCRIBED = "unsubscribed"
BOUNCED = "bounced"
UNCLEAR = "unclear"
MAILED = ""

_NOT_WORD = re.compile(r"[\W_]+")
# Words that make a column look like an opt-out flag (compared per _-separated word).
_OPT_OUT_WORDS = frozenset({
    "status", "state", "unsubscribed", "unsubscribe", "unsub", "subscribed", "disabled", "deleted",
    "blocked", "blocklisted", "blacklisted", "bounced", "bounce", "consent", "optout", "suppressed",
    "complained", "cleaned", "gdpr", "banned", "removed"})
_OPT_OUT_PHRASES = ("opt_out", "opted_out", "do_not_email", "do_not_mail", "email_opt")

TRUE_WORDS = frozenset({"true", "yes", "y", "1", "t"})
FALSE_WORDS = frozenset({"false", "no", "n", "0", "f"})


def normalize_column(header: str) -> str:
    """``"First Name"`` -> ``"first_name"``: lower case, runs of anything but letters and
    digits become one ``_``. Templates may use either spelling."""
    text = header.strip().lower()
    return _NOT_WORD.sub("_", text).strip("_") or text


def looks_like_opt_out(column: str) -> bool:
    """Whether a (normalized) column name suggests it records consent or an opt-out."""
    words = column.split("_")
    return any(word in _OPT_OUT_WORDS for word in words) or any(p in column for p in _OPT_OUT_PHRASES)


@dataclass(frozen=True)
class OptOutRule:
    """What the values of one column mean.

    ``values`` maps a value (compared case-insensitively, trimmed) to ``MAILED`` or to a
    skip kind; ``empty`` is the meaning of an empty cell and ``other`` of any value not in
    ``values``. ``why`` (optional) is said instead of "<column> is '<value>'"."""

    column: str
    values: Mapping[str, str] = field(default_factory=dict)
    other: str = UNCLEAR
    empty: str = MAILED
    why: str = ""

    def decide(self, cell: str) -> str:
        value = cell.strip().lower()
        if not value:
            return self.empty
        return self.values.get(value, self.other)


def _states(mailed: Iterable[str], **skipped: Iterable[str]) -> dict[str, str]:
    table = dict.fromkeys(mailed, MAILED)
    for kind, values in skipped.items():
        table.update(dict.fromkeys(values, kind))
    return table


# A plain list's `status` column (the behaviour before platform formats, made strict:
# a status word nobody defined stops the send instead of being mailed).
GENERIC_STATUS = _states(
    ("subscribed", "active", "confirmed", "enabled", "opted in", "opt-in", "optin"),
    unsubscribed=("unsubscribed", "unsubscribe", "complained", "blocklisted", "blocked", "disabled",
                  "opted out", "opt-out", "optout", "deleted", "inactive"),
    bounced=("bounced", "cleaned", "invalid", "undeliverable"))


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
    # opt-out-looking columns nothing covers: any value in them is unclear
    guards: tuple[str, ...] = ()

    @property
    def covered(self) -> frozenset[str]:
        return frozenset(rule.column for rule in self.rules) | self.known

    @property
    def says_who_opted_out(self) -> bool:
        """Whether the file records opt-outs (row by row, or as a whole)."""
        return bool(self.rules)

    def all_rules(self) -> tuple[OptOutRule, ...]:
        """The format's rules, then one guard rule per uncovered opt-out-looking column."""
        return self.rules + tuple(OptOutRule(c, {}, other=UNCLEAR) for c in self.guards)


def _has(columns: frozenset[str], *names: str) -> bool:
    return all(name in columns for name in names)


def _mailchimp(columns: frozenset[str]) -> ListFormat | None:
    # Exports are one zip with three files: subscribed, unsubscribed (UNSUB_TIME, UNSUB_REASON,
    # UNSUB_CAMPAIGN_*) and cleaned (CLEAN_TIME, CLEAN_CAMPAIGN_*). Merge fields are exported
    # under their labels ("First Name"), tags as TAGS: "\"tag one\",\"tag two\"".
    if "email_address" not in columns or not columns & {"member_rating", "optin_time", "leid", "euid"}:
        return None
    if "unsub_time" in columns:
        kind, label = UNSUBSCRIBED, "Mailchimp (unsubscribed export)"
        why = "the file is Mailchimp's unsubscribed export"
    elif "clean_time" in columns:
        kind, label = BOUNCED, "Mailchimp (cleaned export: hard bounces)"
        why = "the file is Mailchimp's cleaned export (the address bounced)"
    else:
        return ListFormat("mailchimp", "Mailchimp (subscribed export)", "email_address", tags_column="tags")
    whole_file = OptOutRule("email_address", {}, other=kind, empty=kind, why=why)
    return ListFormat("mailchimp", label, "email_address", (whole_file,), tags_column="tags",
                      known=frozenset(c for c in columns if looks_like_opt_out(c)))


def _substack(columns: frozenset[str]) -> ListFormat | None:
    # email_list.<publication>.csv: email, active_subscription, expiry, (plan,) email_disabled,
    # (prefer_digests,) created_at(, first_payment_at, name). email_disabled is true/false.
    if not _has(columns, "email", "active_subscription", "email_disabled"):
        return None
    rule = OptOutRule("email_disabled", _states(FALSE_WORDS, unsubscribed=TRUE_WORDS), empty=UNCLEAR)
    return ListFormat("substack", "Substack", "email", (rule,))


# Buttondown subscriber types (its API's SubscriberType enum): these still receive mail...
BUTTONDOWN_MAILED = ("regular", "premium", "trialed", "gifted", "unpaid", "churning", "paused", "past_due")
# ...these do not.
BUTTONDOWN_OUT = ("unsubscribed", "unactivated", "removed", "spammy", "complained", "blocked")


def _buttondown(columns: frozenset[str]) -> ListFormat | None:
    email = "email" if "email" in columns else "email_address"
    if email not in columns or "type" not in columns or not columns & {"secondary_id", "referrer_url",
                                                                     "metadata", "upgrade_date"}:
        return None
    types = _states(BUTTONDOWN_MAILED, unsubscribed=BUTTONDOWN_OUT, bounced=("undeliverable", "bounced"))
    return ListFormat("buttondown", "Buttondown", email, (OptOutRule("type", types, empty=UNCLEAR),),
                      tags_column="tags" if "tags" in columns else "",
                      json_columns=("metadata",) if "metadata" in columns else ())


def _listmonk(columns: frozenset[str]) -> ListFormat | None:
    # The export writes exactly: uuid, email, name, attributes, status, created_at, updated_at.
    # Subscriber status is enabled, disabled or blocklisted (per-list "unsubscribed" is a
    # subscription status, not in this file).
    if not _has(columns, "uuid", "email", "attributes", "status"):
        return None
    states = _states(("enabled",), unsubscribed=("blocklisted", "disabled", "unsubscribed"))
    return ListFormat("listmonk", "listmonk", "email", (OptOutRule("status", states, empty=UNCLEAR),),
                      json_columns=("attributes",))


def _ghost(columns: frozenset[str]) -> ListFormat | None:
    # Members export: id, email, name, note, subscribed_to_emails, complimentary_plan,
    # stripe_customer_id, created_at, deleted_at, labels, tiers (older: products; newer: gift_id).
    if not _has(columns, "email", "subscribed_to_emails") or not columns & {"complimentary_plan",
                                                                           "stripe_customer_id"}:
        return None
    subscribed = OptOutRule("subscribed_to_emails", _states(TRUE_WORDS, unsubscribed=FALSE_WORDS),
                            empty=UNCLEAR)
    rules = [subscribed]
    if "deleted_at" in columns:
        rules.append(OptOutRule("deleted_at", {}, other=UNSUBSCRIBED, why="the member was deleted"))
    return ListFormat("ghost", "Ghost (members export)", "email", tuple(rules),
                      tags_column="labels" if "labels" in columns else "")


def _kit(columns: frozenset[str]) -> ListFormat | None:
    # Kit (ConvertKit): first_name, email_address, state, created_at, custom fields...
    # state is active, inactive (unconfirmed), cancelled, bounced or complained; only active is mailed.
    if not _has(columns, "email_address", "state") or "member_rating" in columns:
        return None
    # Kit's states, and only those: a state column of anything else (a US state?) stops and asks.
    states = _states(("active",), unsubscribed=("inactive", "cancelled", "complained"), bounced=("bounced",))
    return ListFormat("kit", "Kit (ConvertKit)", "email_address",
                      (OptOutRule("state", states, empty=UNCLEAR),),
                      tags_column="tags" if "tags" in columns else "")


def _beehiiv(columns: frozenset[str]) -> ListFormat | None:
    # beehiiv: email, status, created_at, subscription_tier, utm_* ..., referral_code.
    # status is active, inactive, validating, invalid or pending; only active is mailed.
    if not _has(columns, "email", "status") or not columns & {"utm_source", "utm_channel", "referral_code",
                                                               "subscription_tier", "referring_site"}:
        return None
    states = _states(("active",), unsubscribed=("inactive", "validating", "pending", "needs_attention"),
                     bounced=("invalid",))
    return ListFormat("beehiiv", "beehiiv", "email",
                      (OptOutRule("status", states, empty=UNCLEAR),),
                      tags_column="tags" if "tags" in columns else "")


PLATFORMS: tuple[Callable[[frozenset[str]], ListFormat | None], ...] = (
    _mailchimp, _listmonk, _ghost, _substack, _buttondown, _kit, _beehiiv)

# The address column of a plain list: `email`, or a common export spelling.
EMAIL_COLUMNS = ("email", "email_address", "e_mail", "e_mail_address")


def _plain(columns: frozenset[str], header: Sequence[str], where: str) -> ListFormat:
    email = next((c for c in EMAIL_COLUMNS if c in columns), None)
    if email is None:
        shown = ", ".join(repr(c) for c in header if c) or "none"
        raise ListFormatError(f"{where}: no 'email' column (columns: {shown}); "
                              "add a header row naming the address column 'email'")
    rules = (OptOutRule("status", GENERIC_STATUS),) if "status" in columns else ()
    tags = next((c for c in ("tags", "labels") if c in columns), "")
    return ListFormat("plain", "plain CSV (an email column)", email, rules, tags_column=tags)


def _custom(settings: ListSettings, columns: frozenset[str], where: str) -> ListFormat:
    def column(key: str, value: str) -> str:
        name = normalize_column(value)
        if name not in columns:
            raise ListFormatError(f"{where}: gigo-mail.toml [list] {key} = '{value}' is not a column of "
                                  f"this list (columns: {', '.join(sorted(columns))})")
        return name

    email = column("email", settings.email or "email")
    rules: list[OptOutRule] = []
    if settings.opt_out_column:
        out = column("opt_out_column", settings.opt_out_column)
        values = _states((v.strip().lower() for v in settings.opt_in_values),
                         unsubscribed=(v.strip().lower() for v in settings.opt_out_values))
        # Only the opt-out values named: everything else is mailed. Opt-in values named too:
        # anything else is unclear.
        rules.append(OptOutRule(out, values, other=UNCLEAR if settings.opt_in_values else MAILED))
    aliases = {name: column(name, getattr(settings, name))
               for name in ("name", "first_name", "last_name") if getattr(settings, name)}
    tags = column("tags", settings.tags) if settings.tags else ""
    return ListFormat("custom", "custom (gigo-mail.toml [list])", email, tuple(rules), tags_column=tags,
                      aliases=aliases)


def recognise(header: Sequence[str], settings: ListSettings | None = None, where: str = "list"
              ) -> ListFormat:
    """The format of a list from its (normalized) header row, with guards for every
    opt-out-looking column nothing covers. ``where`` prefixes errors (``list.csv:1``)."""
    columns = frozenset(c for c in header if c)
    fmt: ListFormat | None = None
    if settings is not None and settings.describes_format:
        fmt = _custom(settings, columns, where)
    else:
        for platform in PLATFORMS:
            fmt = platform(columns)
            if fmt is not None:
                break
        if fmt is None:
            fmt = _plain(columns, header, where)
    ignored = {normalize_column(c) for c in (settings.not_opt_out if settings else ())}
    covered = fmt.covered | ignored | {fmt.email_column}
    guards = tuple(dict.fromkeys(c for c in header if c and c not in covered and looks_like_opt_out(c)))
    rules = tuple(r for r in fmt.rules if r.column not in ignored)
    return ListFormat(fmt.key, fmt.label, fmt.email_column, rules, fmt.tags_column, fmt.json_columns,
                      fmt.aliases, fmt.known, guards)


def unclear_message(where: str, unclear: Mapping[str, Iterable[str]]) -> str:
    """One line: which columns hold values no rule covers, the values seen, and the fix."""
    parts = []
    for column, values in unclear.items():
        shown = ", ".join(repr(v) for v in sorted(values)[:8])
        parts.append(f"'{column}' ({shown})")
    return (f"{where}: cannot tell who opted out: no rule says what these values mean: "
            f"{'; '.join(parts)}; nothing was sent. Say it in gigo-mail.toml [list] "
            "(opt_out_column, opt_out_values, opt_in_values), or add the column to not_opt_out "
            "if it is no opt-out flag")


def parse_tags(cell: str) -> tuple[str, ...]:
    """Tags as platforms write them: ``a, b`` or ``a; b`` (Ghost labels, Kit), ``"a","b"``
    (Mailchimp TAGS) or a JSON list (``["a", "b"]``). Order kept, duplicates dropped."""
    text = cell.strip()
    if not text:
        return ()
    parts: Iterable[str]
    if text.startswith("["):
        try:
            loaded = json.loads(text)
        except ValueError:
            loaded = None
        parts = [str(p) for p in loaded] if isinstance(loaded, list) else text.strip("[]").split(",")
    elif text.startswith('"'):
        parts = next(csv.reader([text], skipinitialspace=True), [])
    else:
        parts = text.split(";" if ";" in text and "," not in text else ",")
    cleaned = (clean_text(part).strip('"').strip() for part in parts)
    return tuple(dict.fromkeys(tag for tag in cleaned if tag))


def json_fields(cell: str) -> dict[str, str]:
    """The keys of a JSON object column (listmonk attributes, Buttondown metadata) as fields:
    names normalized, nested objects flattened with ``_``, lists joined with ``, ``.
    Anything that is not a JSON object gives no fields (the column keeps its text)."""
    text = cell.strip()
    if not text.startswith("{"):
        return {}
    try:
        loaded = json.loads(text)
    except ValueError:
        return {}
    out: dict[str, str] = {}

    def add(prefix: str, value: object) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                add(f"{prefix}_{key}" if prefix else str(key), inner)
            return
        if isinstance(value, list):
            text_value = ", ".join(str(v) for v in value)
        elif isinstance(value, bool):
            text_value = "true" if value else "false"
        else:
            text_value = "" if value is None else str(value)
        out.setdefault(normalize_column(prefix), clean_text(text_value))

    if isinstance(loaded, dict):
        add("", loaded)
    return out
