"""Signup on the newsletter's own site: the form, the proof of work, the double opt-in.

Mounted into the public page (``web.public.make_app``) when ``[signup] enabled``:

* ``GET /subscribe``: the form; ``GET /subscribe/challenge``: an ALTCHA challenge;
  ``GET /subscribe/altcha.js``: the vendored widget.
* ``POST /subscribe`` (a form, or JSON from the site's own ``fetch``, CORS for the site's
  origin only): the honeypot must be empty and the proof of work valid, unspent and
  unexpired; then per-IP, per-network and overall hourly limits; then the address. The
  answer is the same whether the address is new, pending or already a reader (no membership
  oracle: a reader gets a new confirmation mail like anyone, which also lets someone who
  unsubscribed come back), and the mail is queued, never sent while the request waits. An address gets at
  most two confirmation mails an hour, so nobody can mail-bomb a stranger through the form.
* ``/confirm?token=...``: a GET (or HEAD) never confirms, it shows one button; the button's
  POST confirms. (``[signup] get_confirms = true`` lets a GET confirm once ``confirm_delay``
  has passed since the mail: scanners fetch within seconds, people later. Off by default.)
* ``GET /signups?after=N``: confirmations with their evidence for ``subscribers pull`` on
  another machine, behind the same sync key as ``/suppressions``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from gigo_mail.address import check_address
from gigo_mail.config import Config
from gigo_mail.errors import SubscriberListError, TokenError
from gigo_mail.journal.deliveries import Journal
from gigo_mail.journal.signups import Pending, SignupStore
from gigo_mail.journal.suppressions import rejoinable
from gigo_mail.journal.sync import authorized
from gigo_mail.send.confirmation import (
    ConfirmationMailer,
    make_confirm_token,
    new_pending_id,
    verify_confirm_token,
)
from gigo_mail.signup_config import page_prefix
from gigo_mail.signup_config import url_origin as origin
from gigo_mail.web import signup_pages as pages
from gigo_mail.web.proof import ProofOfWork

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
MAX_BODY = 4096
SIGNUPS_PATH = "/signups"
PULL_PAGE = 5000  # confirmations per answer of /signups (about 2 MB)
CHALLENGES_PER_SIGNUP = 5  # reloads and abandoned forms
MAILS_PER_HOUR = 2  # the first confirmation mail, and at most one more within the hour
_CSP = ("default-src 'none'; script-src 'self'; worker-src 'self' blob: data:; connect-src 'self'; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'")
_HEADERS = [("Cache-Control", "no-store"), ("Referrer-Policy", "no-referrer"), ("X-Robots-Tag", "noindex"),
            ("X-Content-Type-Options", "nosniff"), ("Content-Security-Policy", _CSP)]


def network_of(ip: str) -> str:
    """The /24 (IPv4) or /48 (IPv6) an address belongs to: one flood source, one evidence value."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return "unknown"
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


class _Window:
    """Hourly counters per key (in memory: a restart forgets them, the per-address limit is stored)."""

    def __init__(self) -> None:
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, limit: int, now: float) -> bool:
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - 3600:
                hits.popleft()
            if len(hits) >= limit:
                return False
            hits.append(now)
            if len(self._hits) > 100_000:  # forget quiet keys rather than grow without end
                for stale in [k for k, v in self._hits.items() if not v or v[-1] <= now - 3600]:
                    del self._hits[stale]
            return True


class _Refused(Exception):
    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class SignupPage:
    """The signup routes of one newsletter; ``handle`` answers a request or returns None."""

    def __init__(self, config: Config, mailer: ConfirmationMailer | None = None) -> None:
        self.config = config
        self.settings = config.signup
        self._secret = config.secret()
        self.store = SignupStore.for_state(config.state_dir)
        self.mailer = mailer if mailer is not None else ConfirmationMailer(config)
        self.proof = ProofOfWork(self._secret, self.settings.pow_cost, self.settings.pow_max_counter)
        self.page_origin = origin(config.newsletter.unsubscribe_url)
        self.prefix = page_prefix(config.newsletter.unsubscribe_url)  # the folder the page is under
        self.site_origin = origin(config.newsletter.site_url)
        self._windows = _Window()
        self._opt_in = threading.Lock()  # two signups of one address at once must not both mail
        self._consent = pages.consent_text(config)
        self._consent_hash = hashlib.sha256(self._consent.encode("utf-8")).hexdigest()
        self.store.remember_consent_text(self._consent_hash, self.settings.consent_version, self._consent)

    # --- plumbing ---------------------------------------------------------------------------------

    def _respond(self, start: StartResponse, status: str, body: bytes, content_type: str = "text/html; "
                 "charset=utf-8", extra: Iterable[tuple[str, str]] = (), head: bool = False) -> list[bytes]:
        start(status, [("Content-Type", content_type), ("Content-Length", str(len(body))), *_HEADERS,
                       *extra])
        return [b""] if head else [body]

    def _cors(self, environ: dict[str, Any]) -> list[tuple[str, str]]:
        asked = str(environ.get("HTTP_ORIGIN", "")).lower()
        if self.site_origin and asked == self.site_origin:
            return [("Access-Control-Allow-Origin", self.site_origin), ("Vary", "Origin")]
        return [("Vary", "Origin")]

    def _client_ip(self, environ: dict[str, Any]) -> str:
        peer = str(environ.get("REMOTE_ADDR", ""))
        return peer or "unknown"

    @staticmethod
    def _body(environ: dict[str, Any]) -> bytes:
        raw = str(environ.get("CONTENT_LENGTH") or "0").strip()
        if not raw.isdigit() or not raw.isascii():
            raise _Refused("400 Bad Request", "The request was malformed.")
        if int(raw) > MAX_BODY:
            raise _Refused("413 Content Too Large", "The request was too large.")
        return environ["wsgi.input"].read(int(raw)) if int(raw) else b""

    @staticmethod
    def _fields(environ: dict[str, Any], body: bytes) -> tuple[dict[str, str], bool]:
        """The posted fields (form or JSON) and whether the client wants JSON back."""
        kind = str(environ.get("CONTENT_TYPE", "")).split(";")[0].strip().lower()
        if kind == "application/json":
            try:
                data = json.loads(body or b"{}")
            except ValueError:
                raise _Refused("400 Bad Request", "The request was not JSON.") from None
            if not isinstance(data, dict):
                raise _Refused("400 Bad Request", "The request was not a JSON object.")
            return {str(k): str(v) for k, v in data.items() if isinstance(v, (str, int))}, True
        try:
            parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
        except (UnicodeDecodeError, ValueError):
            raise _Refused("400 Bad Request", "The request was malformed.") from None
        wants_json = "application/json" in str(environ.get("HTTP_ACCEPT", ""))
        return {k: v[0] for k, v in parsed.items()}, wants_json

    # --- routes -----------------------------------------------------------------------------------

    def handle(self, environ: dict[str, Any], start: StartResponse) -> list[bytes] | None:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        full = str(environ.get("PATH_INFO", "/"))
        if not full.startswith(self.prefix + "/"):
            return None
        path = full[len(self.prefix):].rstrip("/") or "/"
        head = method == "HEAD"
        if path == "/subscribe":
            if method in ("GET", "HEAD"):
                return self._respond(start, "200 OK", pages.form_page(self.config), head=head)
            if method == "OPTIONS":
                extra = [*self._cors(environ), ("Access-Control-Allow-Methods", "POST"),
                         ("Access-Control-Allow-Headers", "Content-Type"), ("Access-Control-Max-Age", "600")]
                return self._respond(start, "204 No Content", b"", "text/plain", extra)
            if method == "POST":
                return self._subscribe(environ, start)
            return self._respond(start, "405 Method Not Allowed", b"", "text/plain", [("Allow", "GET, POST")])
        if path == pages.CHALLENGE_PATH and method in ("GET", "HEAD"):
            # making a challenge costs the page one KDF run: a client gets a few per signup it may make
            limit = self.settings.per_ip_per_hour * CHALLENGES_PER_SIGNUP
            if not self._windows.allow(f"challenge:{self._client_ip(environ)}", limit, time.time()):
                return self._respond(start, "429 Too Many Requests", b"{}", "application/json",
                                     self._cors(environ), head)
            body = json.dumps(self.proof.challenge()).encode()
            return self._respond(start, "200 OK", body, "application/json", self._cors(environ), head)
        if path == pages.WIDGET_PATH and method in ("GET", "HEAD"):
            return self._respond(start, "200 OK", pages.WIDGET_FILE.read_bytes(),
                                 "text/javascript; charset=utf-8", head=head)
        if path == "/confirm":
            return self._confirm(environ, start, method)
        if path == SIGNUPS_PATH and method in ("GET", "HEAD"):
            return self._signups(environ, start)
        return None

    def _subscribe(self, environ: dict[str, Any], start: StartResponse) -> list[bytes]:
        wants_json = "application/json" in str(environ.get("CONTENT_TYPE", ""))
        cors = self._cors(environ)
        try:
            fields, wants_json = self._fields(environ, self._body(environ))
            self._accept(fields, environ)
        except _Refused as refused:
            if wants_json:
                body = json.dumps({"ok": False, "message": refused.message}).encode()
                return self._respond(start, refused.status, body, "application/json", cors)
            return self._respond(start, refused.status, pages.refused_page(self.config, refused.message),
                                 extra=cors)
        if wants_json:
            body = json.dumps({"ok": True, "message": pages.CHECK_INBOX}).encode()
            return self._respond(start, "200 OK", body, "application/json", cors)
        if self.settings.redirect_url:
            return self._respond(start, "303 See Other", b"", "text/plain",
                                 [*cors, ("Location", self.settings.redirect_url)])
        return self._respond(start, "200 OK", pages.accepted_page(self.config), extra=cors)

    def _accept(self, fields: dict[str, str], environ: dict[str, Any]) -> None:
        """Check one signup and queue its mail; _Refused says why not. A filled honeypot gets
        the same answer as a real signup (the bot learns nothing) and no mail."""
        now = time.time()
        ip = self._client_ip(environ)
        if not self._windows.allow(f"ip:{ip}", self.settings.per_ip_per_hour, now) \
                or not self._windows.allow(f"net:{network_of(ip)}", self.settings.per_network_per_hour, now) \
                or not self._windows.allow("all", self.settings.per_hour, now):
            raise _Refused("429 Too Many Requests", "Too many signups from here: try again in an hour.")
        if fields.get(pages.HONEYPOT, ""):
            return
        verdict = self.proof.check(fields.get("altcha", ""))
        if not verdict.ok:
            raise _Refused("400 Bad Request", "The spam check did not pass: let it finish, then send again.")
        if not self.store.spend_proof(verdict.proof_id, verdict.expires):
            raise _Refused("400 Bad Request", "The spam check did not pass: let it finish, then send again.")
        email = fields.get("email", "").strip()[:254]
        try:
            key = check_address(email)
        except SubscriberListError:
            raise _Refused("400 Bad Request",
                           "That is not an email address: check it and send again.") from None
        name = " ".join(fields.get("name", "").split())[:100]
        self._start_opt_in(key, email, name, self._page_of(fields, environ), ip, now)

    def _page_of(self, fields: dict[str, str], environ: dict[str, Any]) -> str:
        page = fields.get("page", "") or str(environ.get("HTTP_REFERER", ""))
        return page[:300] if origin(page) in (self.site_origin, self.page_origin) else ""

    def _start_opt_in(self, key: str, email: str, name: str, page: str, ip: str, now: float) -> None:
        """Every address is treated alike, a reader's too (they may have unsubscribed on the sending
        machine, which this page cannot know, and want back in): the same work, the same answer."""
        with self._opt_in:
            if self.store.mails_since(key, now - 3600) >= MAILS_PER_HOUR:
                return
            self._mail_link(key, email, name, page, ip, now)

    def _mail_link(self, key: str, email: str, name: str, page: str, ip: str, now: float) -> None:
        pending_id = new_pending_id()
        stamp = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
        kept_ip = network_of(ip) if self.settings.store_ip else ""
        lifetime = self.settings.confirm_hours * 3600
        self.store.add_pending(Pending(pending_id, key, email, name, stamp, self.settings.consent_version,
                                       self._consent_hash, page, kept_ip, now), forget_before=now - lifetime)
        expires = int(now) + lifetime
        token = make_confirm_token(self._secret, pending_id, expires)
        link = f"{self.page_origin}{self.prefix}/confirm?token={token}"
        if self.mailer.submit(email, link, expires):
            self.store.record_mail(key, now)

    def _confirm(self, environ: dict[str, Any], start: StartResponse, method: str) -> list[bytes]:
        head = method == "HEAD"
        token = parse_qs(str(environ.get("QUERY_STRING", ""))).get("token", [""])[0]
        if method == "POST":
            try:
                fields, _ = self._fields(environ, self._body(environ))
            except _Refused as refused:
                return self._respond(start, refused.status,
                                     pages.link_problem_page(self.config, refused.message))
            token = fields.get("token", token)
        elif method not in ("GET", "HEAD"):
            return self._respond(start, "405 Method Not Allowed", b"", "text/plain", [("Allow", "GET, POST")])
        try:
            pending_id = verify_confirm_token(self._secret, token)
        except TokenError as exc:
            return self._respond(start, "400 Bad Request", pages.link_problem_page(self.config, str(exc)),
                                 head=head)
        pending = self.store.pending(pending_id)
        if pending is None:
            return self._respond(start, "200 OK", pages.link_problem_page(
                self.config, "This link was used already, or the signup was withdrawn. If you are not "
                             "getting the newsletter, sign up again."), head=head)
        late_get = (method == "GET" and self.settings.get_confirms
                    and time.time() - pending.mailed_at >= self.settings.confirm_delay)
        if method != "POST" and not late_get:
            return self._respond(start, "200 OK", pages.confirm_button_page(self.config, token), head=head)
        confirmed_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        if self.store.confirm(pending_id, confirmed_at) is not None:
            self._lift_unsubscribe(pending.key)
        if self.settings.redirect_url:
            return self._respond(start, "303 See Other", b"", "text/plain",
                                 [("Location", self.settings.redirect_url)])
        return self._respond(start, "200 OK", pages.confirmed_page(self.config))

    def _lift_unsubscribe(self, key: str) -> None:
        """A new double opt-in undoes an unsubscribe on the page; bounces and complaints stay."""
        with Journal.for_root(self.config.root) as journal:
            found = journal.suppression(key)
            if found is not None and rejoinable(found.reason):
                journal.unsuppress([key])

    def _signups(self, environ: dict[str, Any], start: StartResponse) -> list[bytes]:
        if not authorized(self._secret, str(environ.get("HTTP_AUTHORIZATION", ""))):
            return self._respond(start, "401 Unauthorized", b"a sync key is required\n", "text/plain",
                                 [("WWW-Authenticate", 'Bearer realm="gigo-mail"')])
        raw = parse_qs(str(environ.get("QUERY_STRING", ""))).get("after", ["0"])[0][:20]
        after = int(raw) if raw.isdigit() else 0
        rows = self.store.confirmations_after(after, PULL_PAGE + 1)
        texts: dict[str, dict[str, str]] = {}
        for row in rows[:PULL_PAGE]:
            if row.consent_hash not in texts:
                found = self.store.consent_text(row.consent_hash)
                if found is not None:
                    texts[row.consent_hash] = {"version": found[0], "text": found[1]}
        body = json.dumps({"signups": [r.as_dict() for r in rows[:PULL_PAGE]], "consent_texts": texts,
                           "more": len(rows) > PULL_PAGE}).encode()
        return self._respond(start, "200 OK", body, "application/json")
