"""The page behind ``unsubscribe_url``: one-click unsubscribe (RFC 8058) that lands in
the suppression list every send honours.

A small WSGI app, run by ``gigo-mail unsubscribe --serve`` under waitress (threads,
timeouts for slow and idle clients, header and body limits) behind any HTTPS reverse
proxy, or mounted in any WSGI server. It serves the path of ``[newsletter]
unsubscribe_url`` and reads the token where the pattern puts ``{token}`` (a query
parameter or a path segment), plus ``/healthz`` (200 "ok" once the journal opens) and
``/suppressions`` (the suppression list for ``send`` on another machine, behind the
sync key; see ``sync``). Every request is treated as hostile: bodies are capped before
they are read, a bad Content-Length is a 400, nothing the client sends is echoed
unescaped, and there is no access log (it would hold subscribers' tokens).

* ``POST`` (what Gmail and Yahoo send for one-click, body ``List-Unsubscribe=One-Click``,
  and what the confirmation button sends): verify the token, suppress the address, 200.
* ``GET`` (a person clicking the footer link): a page with one button that POSTs. A GET
  never unsubscribes by itself, because mail scanners fetch every link they see.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from gigo_mail.config import Config
from gigo_mail.errors import ConfigError, GigoError, TokenError, listen_failure
from gigo_mail.journal.deliveries import Journal
from gigo_mail.journal.sync import SYNC_PATH, authorized
from gigo_mail.journal.sync import page as sync_page
from gigo_mail.send.tokens import verifier
from gigo_mail.web import guard
from gigo_mail.web.guard import DEFAULT_LIMITS, MAX_BODY, ServeLimits

__all__ = ["DEFAULT_LIMITS", "MAX_BODY", "ServeLimits", "TokenLocation", "make_app", "make_server", "serve"]

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
HEALTH_PATH = "/healthz"
_SECURITY_HEADERS = [("Cache-Control", "no-store"), ("Referrer-Policy", "no-referrer"),
                     ("X-Robots-Tag", "noindex"), ("X-Content-Type-Options", "nosniff"),
                     ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; "
                                                 "form-action 'self'; frame-ancestors 'none'")]


class _BadBody(Exception):
    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


def _read_body(environ: dict[str, Any]) -> bytes:
    """The request body, at most MAX_BODY bytes; a bad or too large Content-Length is refused
    before anything is read (a negative one must not mean "read everything")."""
    raw = str(environ.get("CONTENT_LENGTH") or "0").strip()
    if not raw.isdigit() or not raw.isascii():
        raise _BadBody("400 Bad Request")
    length = int(raw)
    if length > MAX_BODY:
        raise _BadBody("413 Content Too Large")
    return environ["wsgi.input"].read(length) if length else b""


class TokenLocation:
    """Where ``{token}`` sits in the unsubscribe URL pattern."""

    def __init__(self, pattern: str, where: str) -> None:
        parts = urlsplit(pattern)
        self.path = parts.path or "/"
        self.query_name: str | None = None
        self.path_re: re.Pattern[str] | None = None
        for name, values in parse_qs(parts.query).items():
            if "{token}" in values:
                self.query_name = name
        if self.query_name is None:
            if "{token}" not in parts.path:
                raise ConfigError(f"{where}: unsubscribe_url '{pattern}' has no {{token}}; the page "
                                  "cannot tell who wants to leave")
            head, _, tail = parts.path.partition("{token}")
            self.path_re = re.compile(f"^{re.escape(head)}(?P<token>[^/]+){re.escape(tail)}$")

    def token(self, path: str, query: str) -> str | None:
        """The token of a request, or None when the request is not for this page."""
        if self.path_re is not None:
            match = self.path_re.match(path)
            return match.group("token") if match else None
        if path.rstrip("/") != self.path.rstrip("/"):
            return None
        values = parse_qs(query).get(self.query_name or "", [])
        return values[0] if values else ""


def _page(title: str, body: str, newsletter: str) -> bytes:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title></head>"
            f'<body style="font-family:sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;'
            f'line-height:1.5"><h1 style="font-size:1.4rem">{html.escape(title)}</h1>{body}'
            f'<p style="color:#6b7280;font-size:.9rem">{html.escape(newsletter)}</p></body></html>'
            ).encode()


def _plain(start: StartResponse, status: str, body: bytes, content_type: str = "text/plain; charset=utf-8",
           extra: Iterable[tuple[str, str]] = ()) -> list[bytes]:
    start(status, [("Content-Type", content_type), ("Content-Length", str(len(body))), *_SECURITY_HEADERS,
                   *extra])
    return [body]


def make_app(config: Config, signup: Any = None) -> WsgiApp:
    """The WSGI app for ``config``'s newsletter; suppressions go to its journal. With ``[signup]
    enabled`` it serves the signup routes too (``signup``: a ready ``web.signup.SignupPage``)."""
    if signup is None and config.signup.enabled:
        from gigo_mail.web.signup import SignupPage

        signup = SignupPage(config)
    where = str(config.path)
    location = TokenLocation(config.newsletter.unsubscribe_url, where)
    secret = config.secret()
    verify = verifier(config)
    name = config.newsletter.name

    def respond(start: StartResponse, status: str, title: str, body: str) -> list[bytes]:
        page = _page(title, body, name)
        return _plain(start, status, page, "text/html; charset=utf-8")

    def health(start: StartResponse) -> list[bytes]:
        try:
            with Journal.for_root(config.root) as journal:
                journal.is_suppressed("")
        except GigoError:
            return _plain(start, "503 Service Unavailable", b"journal unavailable\n")
        return _plain(start, "200 OK", b"ok\n")

    def suppressions(environ: dict[str, Any], start: StartResponse) -> list[bytes]:
        if not authorized(secret, str(environ.get("HTTP_AUTHORIZATION", ""))):
            return _plain(start, "401 Unauthorized", b"a sync key is required\n",
                          extra=[("WWW-Authenticate", 'Bearer realm="gigo-mail"')])
        query = parse_qs(environ.get("QUERY_STRING", ""))
        after_at = query.get("after_at", [""])[0][:64]
        after_key = query.get("after_key", [""])[0][:400]
        with Journal.for_root(config.root) as journal:
            body = sync_page(journal, after_at, after_key)
        return _plain(start, "200 OK", body, "application/json")

    def app(environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        path = environ.get("PATH_INFO", "/")
        if signup is not None and (answered := signup.handle(environ, start)) is not None:
            return answered
        if path == HEALTH_PATH and method in ("GET", "HEAD"):
            return health(start)
        if path == SYNC_PATH and method in ("GET", "HEAD"):
            return suppressions(environ, start)
        token = location.token(path, environ.get("QUERY_STRING", ""))
        if token is None:
            return respond(start, "404 Not Found", "Not found", "<p>There is nothing here.</p>")
        try:
            address = verify(token)
        except TokenError:
            return respond(start, "400 Bad Request", "This unsubscribe link is not valid",
                           "<p>It may have been cut short when it was copied. Use the link in the newsletter "
                           "itself, or reply to the newsletter and ask to be removed.</p>")
        if method == "POST":
            try:
                _read_body(environ)  # "List-Unsubscribe=One-Click" or the form's button
            except _BadBody as exc:
                return respond(start, exc.status, "Not accepted", "<p>Use the link in the email.</p>")
            with Journal.for_root(config.root) as journal:
                journal.suppress([address], "one-click unsubscribe")
            return respond(start, "200 OK", "You are unsubscribed",
                           f"<p><strong>{html.escape(address)}</strong> will get no more email from "
                           f"{html.escape(name)}.</p>")
        if method not in ("GET", "HEAD"):
            return respond(start, "405 Method Not Allowed", "Not allowed",
                           "<p>Use the link in the email.</p>")
        button = ('<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
                  '<button type="submit" style="font-size:1rem;padding:.6rem 1.2rem">Unsubscribe</button>'
                  "</form>")
        return respond(start, "200 OK", f"Unsubscribe from {name}?",
                       f"<p>Stop sending {html.escape(name)} to <strong>{html.escape(address)}</strong>?</p>"
                       + button)

    return app


def make_server(config: Config, host: str, port: int, limits: ServeLimits = DEFAULT_LIMITS,
                app: WsgiApp | None = None) -> Any:
    """The page under guarded waitress (see ``guard``), bound and ready (``.effective_port``,
    ``.run()``, ``.close()``). X-Forwarded-For is believed from ``[signup] trusted_proxy`` only."""
    app = app or make_app(config)
    try:
        return guard.create(app, host, port, limits, trusted_proxy=config.signup.trusted_proxy)
    except OSError as exc:
        raise GigoError(listen_failure(exc, f"{host}:{port}", "is the page already running?")) from exc


def serve(config: Config, host: str, port: int, on_ready: Callable[[str], None] | None = None,
          limits: ServeLimits = DEFAULT_LIMITS) -> None:
    """Run the page until interrupted (put HTTPS in front of it)."""
    server = make_server(config, host, port, limits)
    try:
        if on_ready is not None:
            path = TokenLocation(config.newsletter.unsubscribe_url, "").path
            on_ready(f"http://{host}:{server.effective_port}{path}")
        server.run()
    finally:
        server.close()
