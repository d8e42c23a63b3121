"""``subscribers pull``: confirmed readers from the signup page into ``[list] path``, once each.

Where the confirmations come from: the page's store in this folder (the page runs here), or,
when ``[unsubscribe] sync_url`` says the page runs elsewhere, its ``/signups`` at the same
origin, over HTTPS with the sync key (the rules of ``journal.sync``: https, or plain http on
loopback only; the CA of ``[unsubscribe] cafile``). Pulled confirmations and their consent
texts are kept in this folder's store too, so ``subscribers consent`` can print the evidence
where the list is.

Exactly once: a cursor (the last confirmation written into the list) and, against a crash
between the two, a reader whose address is in the list already is never written again. A
new row carries ``consent_at`` (ISO 8601, the confirmation) and ``source``; a list without
those columns gets them (the file is rewritten once, atomically, its mode kept).

Rejoining: a confirmation newer than an unsubscribe lifts that suppression; a hard bounce or
a complaint stays (``journal.suppressions.rejoinable``).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gigo_mail.address import AddressKey, address_key
from gigo_mail.config import Config
from gigo_mail.errors import ConfigError, SubscriberListError, SyncError
from gigo_mail.journal.deliveries import Journal
from gigo_mail.journal.fetch import Deadline
from gigo_mail.journal.signups import Confirmation, SignupStore
from gigo_mail.journal.suppressions import hashed_key, rejoinable
from gigo_mail.journal.sync import PULL_TIMEOUT, check_url, get_json, sync_key, tls_context
from gigo_mail.lists.formats import SIGNUP_COLUMNS
from gigo_mail.private import FILE_MODE

LIST_CURSOR = "list_seq"
WELCOME_LIST = "welcome.csv"
NEW_COLUMNS = SIGNUP_COLUMNS
EMAIL_HEADERS = ("email", "email address", "e-mail", "email_address")
MAX_PAGE_BYTES = 16 * 1024 * 1024
MAX_PAGES = 100_000


@dataclass(frozen=True)
class SignupPull:
    url: str  # where confirmations came from ('' = this folder's store)
    fetched: int  # new confirmations stored from the page
    added: int  # readers written into the list
    already: int  # confirmations of readers the list had
    rejoined: int  # unsubscribes lifted by a newer confirmation
    kept_suppressed: int  # in the list, but a bounce, complaint or erasure keeps them unmailed
    list_path: Path


def signups_url(config: Config) -> str:
    """The page's ``/signups`` when it runs elsewhere (beside ``sync_url``'s ``/suppressions``), else ''."""
    sync = config.unsubscribe.sync_url
    if not sync:
        return ""
    parts = urlsplit(sync)
    folder = parts.path.rsplit("/", 1)[0] if "/" in parts.path else ""
    return f"{parts.scheme}://{parts.netloc}{folder}/signups"


_FIELDS = ("key", "email", "name", "signup_at", "confirmed_at", "consent_version", "consent_hash", "page",
           "ip", "source")


def _confirmation(item: Any) -> Confirmation:
    try:
        values = {f: item.get(f, "") for f in _FIELDS}
        ok = isinstance(item["seq"], int) and "@" in values["email"] and \
            all(type(v) is str for v in values.values())
    except (AttributeError, KeyError, TypeError):
        ok = False
    if not ok:
        raise SyncError("the answer holds a malformed signup")
    values["key"] = address_key(values["email"])  # the page's key is not trusted to match the address
    return Confirmation(seq=int(item["seq"]), **values)


def _fetch(config: Config, store: SignupStore, url: str, timeout: float) -> int:
    """Store the page's confirmations after this machine's cursor; return how many were new."""
    check_url(url)
    deadline = Deadline(timeout)
    context = tls_context(config)
    key = sync_key(config.secret())
    cursor_name = f"remote_seq {url}"
    after = int(store.get_meta(cursor_name, "0") or 0)
    fetched = 0
    for _ in range(MAX_PAGES):
        data = get_json(f"{url}?after={after}", key, context, deadline, MAX_PAGE_BYTES, "signups",
                        "does the page have [signup] enabled?")
        items = [_confirmation(item) for item in data["signups"]]
        for digest, text in (data.get("consent_texts") or {}).items():
            if isinstance(text, dict) and isinstance(text.get("text"), str):
                store.remember_consent_text(str(digest), str(text.get("version", "")), text["text"])
        fetched += store.add_confirmations(items)
        if items:
            after = max(item.seq for item in items)
            store.set_meta(cursor_name, str(after))
        if not data.get("more") or not items:
            break
    return fetched


def _sniff(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in (",", ";", "\t")}
    return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","


def read_list_text(path: Path) -> tuple[str, str]:
    """A list file's text ('' when there is none yet) and its delimiter."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return "", ","
    except (OSError, UnicodeDecodeError) as exc:
        raise SubscriberListError(f"cannot read {path}: {exc}") from None
    return text, _sniff(text.split("\n", 1)[0])


def _read_list(path: Path) -> tuple[list[str], str, set[AddressKey], str]:
    """The header, the delimiter, the address keys in the list, and its text (to rewrite)."""
    text, delimiter = read_list_text(path)
    if not text:
        return [], ",", set(), ""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = next(reader, [])
    lowered = [h.strip().lower() for h in header]
    column = next((lowered.index(h) for h in EMAIL_HEADERS if h in lowered), None)
    if column is None:
        raise SubscriberListError(f"{path} has no email column; pull adds readers only to a list with one "
                                  "(email, name, ...)")
    keys = {address_key(row[column]) for row in reader if len(row) > column and row[column].strip()}
    return header, delimiter, keys, text


def write_atomically(path: Path, text: str) -> None:
    mode = path.stat().st_mode & 0o777 if path.exists() else FILE_MODE  # a new list holds addresses
    temp = path.with_name(f".{path.name}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    os.replace(temp, path)


def _rows(header: list[str], items: list[Confirmation]) -> Iterator[list[str]]:
    lowered = [h.strip().lower() for h in header]
    for c in items:
        values = {"consent_at": c.confirmed_at, "source": c.source or "signup page", "name": c.name}
        values.update({h: c.email for h in EMAIL_HEADERS})
        yield [values.get(h, "") for h in lowered]


def _append(path: Path, items: list[Confirmation]) -> list[Confirmation]:
    """Write the readers the list lacks; return them."""
    header, delimiter, keys, text = _read_list(path)
    fresh: list[Confirmation] = []
    for c in items:
        if c.key not in keys:
            keys.add(AddressKey(c.key))
            fresh.append(c)
    if not fresh:
        return []
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    if not header:
        header = ["email", "name", *NEW_COLUMNS]
        writer.writerow(header)
    elif any(col not in [h.strip().lower() for h in header] for col in NEW_COLUMNS):
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
        missing = [col for col in NEW_COLUMNS if col not in [h.strip().lower() for h in header]]
        header = [*header, *missing]
        writer.writerow(header)
        for row in rows[1:]:
            if row:
                writer.writerow([*row, *([""] * (len(header) - len(row)))])
    else:
        out.write(text if text.endswith("\n") or not text else text + "\n")
    writer.writerows(_rows(header, fresh))
    write_atomically(path, out.getvalue())
    return fresh


def _settle_suppressions(journal: Journal, items: list[Confirmation]) -> tuple[int, int]:
    """Lift unsubscribes older than a confirmation; count readers a bounce, complaint or erasure
    keeps out (an erasure is never lifted: its reason went with the address).
    One read of the suppression list, not one query per confirmation."""
    suppressed = {row.key: row for row in journal.suppressions()}
    rejoined = kept = 0
    for c in items:
        found = suppressed.get(c.key) or suppressed.get(hashed_key(c.key))  # an erased reader's stays
        if found is None:
            continue
        newer = datetime.fromisoformat(found.at) < datetime.fromisoformat(c.confirmed_at)
        if rejoinable(found.reason) and newer:
            rejoined += journal.unsuppress([c.key])
            del suppressed[c.key]
        else:
            kept += 1
    return rejoined, kept


def pull_signups(config: Config, journal: Journal, timeout: float = PULL_TIMEOUT) -> SignupPull:
    """Bring confirmed readers into ``[list] path``; SyncError when the page cannot be read."""
    if not config.list_settings.path:
        raise ConfigError(f"{config.path}: [list] has no 'path'; pull needs the list to add readers to")
    path = config.root / config.list_settings.path
    url = signups_url(config)
    with SignupStore.for_state(config.state_dir) as store:
        try:
            fetched = _fetch(config, store, url, timeout) if url else 0
        except SyncError as exc:
            raise SyncError(f"cannot pull signups from {url}: {exc}; fix it, or send with --offline (readers "
                            "who confirmed since the last pull would wait for the next one)") from None
        after = int(store.get_meta(LIST_CURSOR, "0") or 0)
        items = store.confirmations_after(after, 10_000_000)
        if not items:
            return SignupPull(url, fetched, 0, 0, 0, 0, path)
        rejoined, kept = _settle_suppressions(journal, items)
        fresh = _append(path, items)
        if config.signup.welcome and fresh:  # they are owed the welcome issue (the journal sends it once)
            _append(welcome_list(config), fresh)
        store.set_meta(LIST_CURSOR, str(items[-1].seq))
    return SignupPull(url, fetched, len(fresh), len(items) - len(fresh), rejoined, kept, path)


def welcome_list(config: Config) -> Path:
    """The readers owed ``[signup] welcome``: every reader a pull added since it was set (0600)."""
    return config.state_dir / WELCOME_LIST


def consent_evidence(config: Config, email: str) -> list[tuple[Confirmation, str]]:
    """Every confirmation of ``email`` kept in this folder, each with its whole consent text
    (none for a reader who did not join through the signup page, or not yet pulled)."""
    with SignupStore.for_state(config.state_dir) as store:
        records = store.evidence(address_key(email))
        found = [(r, (store.consent_text(r.consent_hash) or ("", "(the text was not kept)"))[1])
                 for r in records]
    return found
