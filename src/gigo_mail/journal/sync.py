"""Suppression sync: the one-click page runs on a server, ``send`` runs on a laptop.

The page keeps its own suppression list (the journal in its own ``.gigo/``) and serves
it at ``/suppressions`` to whoever proves they hold the newsletter's secret: the
request carries ``Authorization: Bearer <key>``, where the key is an HMAC of a fixed
context under the unsubscribe secret. Both sides already hold that secret (the page
needs it to verify tokens), the secret itself never crosses the wire, and a leaked
sync key cannot sign unsubscribe tokens. Without the key the list is a 401, never a
public list of addresses.

``send`` pulls every suppression newer than the last one it saw (pages in
``(at, key)`` order, cursor in ``.gigo/sync.json``) before it starts. The next pull
starts a few minutes before that cursor, so a suppression committed a moment later
with an earlier timestamp is not skipped; adding an address twice changes nothing.
The key goes to the origin of ``sync_url`` only (redirects elsewhere are refused), and one
time limit covers the whole pull (``fetch``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from gigo_mail.address import address_key
from gigo_mail.config import Config
from gigo_mail.errors import SyncError
from gigo_mail.journal import fetch
from gigo_mail.journal.deliveries import Journal
from gigo_mail.journal.fetch import Deadline
from gigo_mail.net import is_loopback
from gigo_mail.private import write_private

SYNC_PATH = "/suppressions"
PAGE_SIZE = 1000
OVERLAP = timedelta(minutes=5)
MAX_PAGE_BYTES = 8 * 1024 * 1024
MAX_PAGES = 100_000
PULL_TIMEOUT = 60.0  # seconds for a whole pull, every page and redirect of it
STATE_NAME = "sync.json"
_CONTEXT = b"gigo-mail suppression sync v1\x00"


def sync_key(secret: bytes) -> str:
    """The bearer key both sides derive from the unsubscribe secret."""
    return hmac.new(secret, _CONTEXT, hashlib.sha256).hexdigest()


def authorized(secret: bytes, header: str) -> bool:
    """Whether an Authorization header carries this newsletter's sync key (constant time)."""
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(value.strip().encode("ascii", "replace"), sync_key(secret).encode())


def page(journal: Journal, after_at: str, after_key: str) -> bytes:
    """One page of the suppression list after the cursor, as the endpoint sends it."""
    rows = journal.suppressions_since(after_at, after_key, PAGE_SIZE + 1)
    items = [{"email": row.email, "key": row.key, "reason": row.reason, "at": row.at}
             for row in rows[:PAGE_SIZE]]
    return json.dumps({"suppressions": items, "more": len(rows) > PAGE_SIZE}).encode()


# --- the client side: `send` pulls ----------------------------------------------------------------


@dataclass(frozen=True)
class PullResult:
    url: str
    received: int  # suppressions the endpoint sent (some may be known already)
    added: int  # new on this machine's list


def check_url(url: str) -> None:
    """SyncError unless ``url`` (``sync_url``, or the page's ``/signups`` beside it) is https, or
    plain http on loopback: the sync key never crosses a network in the clear."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and is_loopback(parts.hostname):
        return
    raise SyncError(f"'{url}' must be https:// (plain http only on loopback); fix [unsubscribe] sync_url")


def tls_context(config: Config) -> ssl.SSLContext:
    """The certificate check for the page: the system's CAs, or ``[unsubscribe] cafile``."""
    context = ssl.create_default_context()
    cafile = config.sync_cafile
    if cafile:
        try:
            context.load_verify_locations(cafile)
        except (OSError, ssl.SSLError) as exc:
            raise SyncError(f"cannot load the CA file {cafile} for sync_url: {exc}") from None
    return context


def get_json(url: str, key: str, context: ssl.SSLContext, deadline: Deadline, max_bytes: int, listed: str,
             what: str) -> dict[str, Any]:
    """One page of the page's JSON (``fetch``: redirects within its origin only, one deadline for
    the whole pull, a cap on the size), which must hold a list under ``listed``; ``what`` says
    what the answer should have been when it is not JSON."""
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
    try:
        body = fetch.get(url, headers, context, deadline, max_bytes)
    except fetch.HttpStatus as exc:
        hint = (": the page and this machine do not share the same unsubscribe secret"
                if exc.status == 401 else "")
        raise SyncError(f"{exc}{hint}") from None
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # nested a few thousand deep, json gives up with the latter
        raise SyncError(f"the answer is not JSON the page writes ({what})") from None
    if not isinstance(data, dict) or not isinstance(data.get(listed), list):
        raise SyncError(f"the answer has no list of {listed}")
    return data


def _state_path(config: Config) -> Path:
    return config.state_dir / STATE_NAME


def _load_cursor(config: Config, url: str) -> tuple[str, str]:
    try:
        state = json.loads(_state_path(config).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "", ""
    if not isinstance(state, dict) or state.get("url") != url:
        return "", ""  # another endpoint: start from the beginning
    at = str(state.get("at", ""))
    try:
        start = datetime.fromisoformat(at) - OVERLAP
    except ValueError:
        return "", ""
    return start.isoformat(timespec="milliseconds"), ""


def _save_cursor(config: Config, url: str, at: str, key: str) -> None:
    write_private(_state_path(config), json.dumps({"url": url, "at": at, "key": key}).encode())


def _pages(config: Config, timeout: float) -> Iterator[tuple[dict[str, list[str]], str, str]]:
    """Each page of the endpoint's suppressions after this machine's cursor: its addresses by
    reason, and the cursor after it. Reads nothing but the cursor file here. ``timeout`` is
    the whole pull's, every page included."""
    url = config.unsubscribe.sync_url
    check_url(url)
    deadline = Deadline(timeout)
    context = tls_context(config)
    key = sync_key(config.secret())
    after_at, after_key = _load_cursor(config, url)
    for _ in range(MAX_PAGES):
        data = get_json(f"{url}?{urlencode({'after_at': after_at, 'after_key': after_key})}", key,
                        context, deadline, MAX_PAGE_BYTES, "suppressions",
                        "is sync_url the /suppressions path of the page?")
        by_reason: dict[str, list[str]] = {}
        for item in data["suppressions"]:
            if not (isinstance(item, dict) and isinstance(item.get("email"), str)
                    and isinstance(item.get("at"), str) and isinstance(item.get("key"), str)):
                raise SyncError("the answer holds a malformed entry")
            by_reason.setdefault(str(item.get("reason", "")) or "unsubscribe", []).append(item["email"])
            after_at, after_key = item["at"], item["key"]
        yield by_reason, after_at, after_key
        if not data.get("more") or not data["suppressions"]:
            return


def _cannot_pull(url: str, exc: SyncError) -> SyncError:
    return SyncError(f"cannot pull unsubscribes from {url}: {exc}; fix it, or send with --offline "
                     "(unsubscribes made on the page since the last pull would not be honoured)")


def pull_suppressions(config: Config, journal: Journal, timeout: float = PULL_TIMEOUT) -> PullResult:
    """Add every suppression the endpoint has and this machine lacks; SyncError if it cannot."""
    url = config.unsubscribe.sync_url
    received = added = 0
    cursor = ("", "")
    try:
        for by_reason, at, key in _pages(config, timeout):
            for reason, emails in by_reason.items():
                added += journal.suppress(emails, reason)
                received += len(emails)
            cursor = (at, key)  # saved once every page before it is in the journal
        if cursor[0]:
            _save_cursor(config, url, *cursor)
    except SyncError as exc:
        raise _cannot_pull(url, exc) from None
    return PullResult(url, received, added)


def peek_suppressions(config: Config, journal: Journal | None,
                      timeout: float = PULL_TIMEOUT) -> tuple[PullResult, frozenset[str]]:
    """What a pull would add, writing nothing (a dry run's plan must match the send's): the
    result, and the address keys the endpoint suppresses that ``journal`` does not yet."""
    url = config.unsubscribe.sync_url
    received = 0
    keys: set[str] = set()
    try:
        for by_reason, _, _ in _pages(config, timeout):
            for emails in by_reason.values():
                received += len(emails)
                keys.update(key for key in map(address_key, (e.strip() for e in emails))
                            if journal is None or not journal.is_suppressed(key))
    except SyncError as exc:
        raise _cannot_pull(url, exc) from None
    return PullResult(url, received, len(keys)), frozenset(keys)
