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
* guard rules for columns that *look like* consent or opt-out flags in any language of
  ``words`` (``consent``, ``Einwilligung``, ``unsubscribed``, ``désinscrit``...) that nothing
  covers: any value in them is ``unclear`` until ``gigo-mail.toml`` ``[list]`` says what it
  means (or lists the column in ``not_opt_out``); a consent column must say yes, so an
  empty cell is unclear too, and a date is the date they said it.

The older platforms are written here as code, the newer ones as data (``platforms``); both
follow each platform's documentation and its own export code (see README, "Lists from other
platforms"). Columns are compared by :func:`normalize_column`, so ``First Name``,
``first name`` and ``first_name`` are one column.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Mapping, Sequence

from gigo_mail.config import ListSettings
from gigo_mail.errors import ListFormatError
from gigo_mail.lists.csv_file import clean_text
from gigo_mail.lists.platforms import platforms
from gigo_mail.lists.rules import (
    BOUNCED,
    FALSE_WORDS,
    MAILED,
    TRUE_WORDS,
    UNCLEAR,
    UNSUBSCRIBED,
    ListFormat,
    OptOutRule,
    looks_like_date,
    normalize_column,
)
from gigo_mail.lists.rules import states as _states
from gigo_mail.lists.words import CONSENT, FIELDS, STATUS, fold, words

__all__ = ["BOUNCED", "EMAIL_COLUMNS", "FALSE_WORDS", "MAILED", "SIGNUP_COLUMNS", "TRUE_WORDS", "UNCLEAR",
           "UNSUBSCRIBED", "ListFormat", "OptOutRule", "json_fields", "looks_like_date", "looks_like_opt_out",
           "normalize_column", "parse_tags", "recognise", "status_rule", "unclear_message"]


# The columns `subscribers pull` writes: when a reader confirmed (ISO 8601) and where they came
# from. A time is no opt-out flag, though "consent" is in its name.
SIGNUP_COLUMNS = ("consent_at", "source")


def looks_like_opt_out(column: str) -> bool:
    """Whether a (normalized) column name suggests it records consent, an opt-out or a status,
    in any language of ``data/lists/consent_words.toml`` (not the columns `pull` writes)."""
    if column in SIGNUP_COLUMNS:
        return False
    return bool(words().column_kind(column))


def status_rule(column: str) -> OptOutRule:
    """A plain list's status column (``status``, ``Statut``, ``Estado``, ``Stav``...): the status
    words of every language decide; a word nobody defined stops the send instead of being mailed."""
    return OptOutRule(column, words().status_values)


def guard_rule(column: str, kind: str, decided: bool = False) -> OptOutRule:
    """A column that looks like consent or an opt-out and that no rule covers: any value stops
    the send. A consent column must say yes, so an empty cell stops it too, unless another rule
    of the list (a status column) says who is subscribed; a date in it is the date they said yes
    (MailerLite's ``Subscribed``, Campaign Monitor's ``Date Subscribed``), so it is no reason to
    stop, and the refusal names the column that is."""
    if kind == CONSENT:
        return OptOutRule(column, {}, other=UNCLEAR, empty=MAILED if decided else UNCLEAR, dates=MAILED)
    return OptOutRule(column, {}, other=UNCLEAR)


def _has(columns: frozenset[str], *names: str) -> bool:
    return all(name in columns for name in names)


def _mailchimp(columns: frozenset[str]) -> ListFormat | None:
    # Exports are one zip with three files: subscribed, unsubscribed (UNSUB_TIME, UNSUB_REASON,
    # UNSUB_CAMPAIGN_*) and cleaned (CLEAN_TIME, CLEAN_CAMPAIGN_*). Merge fields are exported
    # under their labels ("First Name"), tags as TAGS: "\"tag one\",\"tag two\"". The address
    # column is labelled in the account's language ("E-Mail-Adresse"); the system columns are not.
    if not columns & {"member_rating", "optin_time", "leid", "euid"}:
        return None
    email = "email_address" if "email_address" in columns else _address_among(columns)
    if email is None:
        return None
    if "unsub_time" in columns:
        kind, label = UNSUBSCRIBED, "Mailchimp (unsubscribed export)"
        why = "the file is Mailchimp's unsubscribed export"
    elif "clean_time" in columns:
        kind, label = BOUNCED, "Mailchimp (cleaned export: hard bounces)"
        why = "the file is Mailchimp's cleaned export (the address bounced)"
    else:
        return ListFormat("mailchimp", "Mailchimp (subscribed export)", email, tags_column="tags")
    whole_file = OptOutRule(email, {}, other=kind, empty=kind, why=why)
    return ListFormat("mailchimp", label, email, (whole_file,), tags_column="tags",
                      known=frozenset(c for c in columns if looks_like_opt_out(c)))


def _address_among(columns: frozenset[str]) -> str | None:
    """The column of ``columns`` named as an address column in any language, or None."""
    folded = {fold(c): c for c in sorted(columns)}
    return next((folded[c] for c in email_columns() if c in folded), None)


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


def _data_platform(index: int) -> Callable[[frozenset[str]], ListFormat | None]:
    return lambda columns: platforms()[index].recognise(columns)


def _platform_order() -> tuple[Callable[[frozenset[str]], ListFormat | None], ...]:
    """The code platforms, then the platforms of ``platforms.toml`` (before Kit, whose
    ``email_address`` and ``state`` a Campaign Monitor export also has), then Kit."""
    table = tuple(_data_platform(i) for i in range(len(platforms())))
    return (_mailchimp, _listmonk, _ghost, _substack, _buttondown, _beehiiv, *table, _kit)


def email_columns() -> tuple[str, ...]:
    """The address column of a plain list: ``email``, or a spelling from any language's table."""
    return words().email_columns


EMAIL_COLUMNS = ("email", "email_address", "e_mail", "e_mail_address")


def _email_column(header: Sequence[str], where: str) -> str:
    """The address column: ``email`` or its spelling in any language (``E-Mail``, ``Courriel``)."""
    folded = {fold(c): c for c in reversed(header) if c}
    email = next((folded[c] for c in email_columns() if c in folded), None)
    if email is None:
        shown = ", ".join(repr(c) for c in header if c) or "none"
        raise ListFormatError(f"{where}: no 'email' column (columns: {shown}); "
                              "add a header row naming the address column 'email'")
    return email


def _plain(columns: frozenset[str], header: Sequence[str], where: str) -> ListFormat:
    email = _email_column(header, where)
    table = words()
    rules = tuple(status_rule(c) for c in dict.fromkeys(header)
                  if c and c != email and table.column_kind(c) == STATUS)
    tags = next((c for c in ("tags", "labels") if c in columns), "")
    return ListFormat("plain", "plain CSV (an email column)", email, rules, tags_column=tags)


def _custom(settings: ListSettings, header: Sequence[str], where: str) -> ListFormat:
    columns = frozenset(c for c in header if c)

    def column(key: str, value: str) -> str:
        name = normalize_column(value)
        if name not in columns:
            raise ListFormatError(f"{where}: gigo-mail.toml [list] {key} = '{value}' is not a column of "
                                  f"this list (columns: {', '.join(sorted(columns))})")
        return name

    email = column("email", settings.email) if settings.email else _email_column(header, where)
    rules: list[OptOutRule] = []
    if settings.opt_out_column:
        out = column("opt_out_column", settings.opt_out_column)
        opt_in = [v.strip().lower() for v in settings.opt_in_values]
        opt_out = [v.strip().lower() for v in settings.opt_out_values]
        values = _states((v for v in opt_in if v), unsubscribed=(v for v in opt_out if v))
        # Only opt-out values named: anything else is mailed. Opt-in values named too: anything
        # else stops the send, an empty cell included, unless "" is one of the values named.
        other = UNCLEAR if opt_in else MAILED
        empty = MAILED if "" in opt_in else UNSUBSCRIBED if "" in opt_out else other
        rules.append(OptOutRule(out, values, other=other, empty=empty))
    aliases = {name: column(name, getattr(settings, name))
               for name in ("name", "first_name", "last_name") if getattr(settings, name)}
    tags = column("tags", settings.tags) if settings.tags else ""
    return ListFormat("custom", "custom (gigo-mail.toml [list])", email, tuple(rules), tags_column=tags,
                      aliases=aliases)


def _name_aliases(fmt: ListFormat, header: Sequence[str]) -> dict[str, str]:
    """The format's name fields, and for any it lacks a column named so in one of the table's
    languages (``Vorname``, ``Prénom``, ``Nachname``, ``Nom``, ``Nazwisko``, ``Příjmení``...)."""
    aliases = {name: column for name, column in fmt.aliases.items() if column in header}
    by_fold = {fold(c): c for c in reversed(header) if c and c != fmt.email_column}
    names = words().name_columns
    for field in FIELDS:
        if field in aliases or field in header:
            continue
        column = next((by_fold[c] for c in names[field] if c in by_fold), None)
        if column is not None and column not in aliases.values():
            aliases[field] = column
    return aliases


def recognise(header: Sequence[str], settings: ListSettings | None = None, where: str = "list"
              ) -> ListFormat:
    """The format of a list from its (normalized) header row, with guards for every
    opt-out- or consent-looking column nothing covers. ``where`` prefixes errors (``list.csv:1``).
    Columns a format names but the file lacks (Mailchimp's ``TAGS`` in an audience without
    tags) are dropped, so an optional column never breaks the reader."""
    columns = frozenset(c for c in header if c)
    fmt: ListFormat | None = None
    if settings is not None and settings.describes_format:
        fmt = _custom(settings, header, where)
    else:
        for platform in _platform_order():
            fmt = platform(columns)
            if fmt is not None:
                break
        if fmt is None:
            fmt = _plain(columns, header, where)
    ignored = {normalize_column(c) for c in (settings.not_opt_out if settings else ())}
    covered = fmt.covered | ignored | {fmt.email_column} | set(SIGNUP_COLUMNS)  # pull's own: no flags
    table = words()
    rules = tuple(r for r in fmt.rules if r.column not in ignored and r.column in columns)
    guards = tuple(guard_rule(c, kind, bool(rules)) for c in dict.fromkeys(header)
                   if c and c not in covered and (kind := table.column_kind(c)))
    return ListFormat(fmt.key, fmt.label, fmt.email_column, rules,
                      fmt.tags_column if fmt.tags_column in columns else "",
                      tuple(c for c in fmt.json_columns if c in columns), _name_aliases(fmt, header),
                      fmt.known, guards)


def unclear_message(where: str, unclear: Mapping[str, Iterable[str]]) -> str:
    """One line: which columns hold values no rule covers, the values seen, and the fix (with the
    values the word table knows as yes and no, as a starting point the user must confirm)."""
    parts = []
    for column, values in unclear.items():
        shown = ", ".join(repr(v) for v in sorted(values)[:8])
        parts.append(f"'{column}' ({shown})")
    return (f"{where}: cannot tell who opted out: no rule says what these values mean: "
            f"{'; '.join(parts)}; nothing was sent. Say it in gigo-mail.toml [list] "
            f"({_suggestion(unclear) or 'opt_out_column, opt_out_values, opt_in_values'}), or add the "
            "column to not_opt_out if it is no opt-out flag")


def _suggestion(unclear: Mapping[str, Iterable[str]]) -> str:
    """``opt_out_column = "einwilligung", opt_in_values = ["ja"], opt_out_values = ["nein"]`` for the
    first unclear column whose every value is a yes, a no or empty; "" if there is none."""
    table = words()
    for column, values in unclear.items():
        kinds = {v: table.status_of(v) if v else UNSUBSCRIBED for v in sorted(values)}
        if not kinds or None in kinds.values() or MAILED not in kinds.values():
            continue
        yes = [v for v, kind in kinds.items() if kind == MAILED]
        no = [v for v, kind in kinds.items() if kind != MAILED]
        yes_listed, no_listed = (", ".join(f'"{v}"' for v in group) for group in (yes, no))
        return (f'e.g. opt_out_column = "{column}", opt_in_values = [{yes_listed}], '
                f"opt_out_values = [{no_listed}]")
    return ""


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
