"""The page behind ``unsubscribe_url``: one-click unsubscribe (RFC 8058) that lands in
the suppression list every send honours.

A small WSGI app (stdlib only), so it runs under ``gigo-mail unsubscribe --serve``
behind any HTTPS reverse proxy, or under any WSGI server. It serves exactly the path of
``[newsletter] unsubscribe_url`` and reads the token where the pattern puts
``{token}`` (a query parameter or a path segment).

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
from wsgiref.simple_server import WSGIRequestHandler, make_server

from .config import Config
from .errors import ConfigError, GigoError, TokenError, listen_failure
from .journal import Journal
from .unsubscribe import verify_token

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
MAX_BODY = 4096


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


def make_app(config: Config) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """The WSGI app for ``config``'s newsletter; suppressions go to its journal."""
    where = str(config.path)
    location = TokenLocation(config.newsletter.unsubscribe_url, where)
    secret = config.secret()
    name = config.newsletter.name

    def respond(start: StartResponse, status: str, title: str, body: str) -> list[bytes]:
        page = _page(title, body, name)
        start(status, [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(page))),
                       ("Cache-Control", "no-store"), ("Referrer-Policy", "no-referrer"),
                       ("X-Robots-Tag", "noindex")])
        return [page]

    def app(environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        token = location.token(environ.get("PATH_INFO", "/"), environ.get("QUERY_STRING", ""))
        if token is None:
            return respond(start, "404 Not Found", "Not found", "<p>There is nothing here.</p>")
        try:
            address = verify_token(secret, token)
        except TokenError:
            return respond(start, "400 Bad Request", "This unsubscribe link is not valid",
                           "<p>It may have been cut short when it was copied. Use the link in the newsletter "
                           "itself, or reply to the newsletter and ask to be removed.</p>")
        if method == "POST":
            try:
                length = min(int(environ.get("CONTENT_LENGTH") or 0), MAX_BODY)
            except ValueError:
                length = 0
            if length:
                environ["wsgi.input"].read(length)  # "List-Unsubscribe=One-Click" or the form's button
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


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        """No access log: it would hold subscribers' tokens."""


def serve(config: Config, host: str, port: int, on_ready: Callable[[str], None] | None = None) -> None:
    """Run the app with the stdlib server until interrupted (put HTTPS in front of it)."""
    app = make_app(config)
    try:
        server = make_server(host, port, app, handler_class=_QuietHandler)
    except OSError as exc:
        raise GigoError(listen_failure(exc, f"{host}:{port}", "is the page already running?")) from exc
    with server:
        if on_ready is not None:
            path = TokenLocation(config.newsletter.unsubscribe_url, "").path
            on_ready(f"http://{host}:{server.server_port}{path}")
        server.serve_forever()
