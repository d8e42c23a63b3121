"""HTTP for the live preview: stdlib ThreadingHTTPServer, bound to 127.0.0.1 only.

Routes
    /                      the issue: desktop and mobile widths, dark, text, source, report
    /email.html            the compiled email (filled with sample values), for the iframes;
                           ?scheme=dark applies its prefers-color-scheme: dark styles
    /email.txt             its plain-text part
    /version               {"version", "inbox"}; with ?after=N (and/or ?inbox=M) it waits
                           up to 25 s for a change: the pages' live reload
    /inbox                 messages captured by the built-in inbox, newest first
    /inbox/<id>            one message: widths, text, headers, raw source
    /inbox/<id>/body.html  its HTML part, served for a sandboxed iframe (?scheme=dark too)
    /inbox/<id>/cid/<cid>  an embedded (cid:) image of that message
    /static/<file>         the pages' CSS and JS
    anything else          a file from the issue's folder (relative images), if there is one
"""

from __future__ import annotations

import contextlib
import json
import mimetypes
import re
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from gigo_mail.errors import InboxUnavailable, PreviewError, listen_failure
from gigo_mail.web import preview_pages as pages
from gigo_mail.web.preview import PreviewState

HOST = "127.0.0.1"
LONG_POLL_SECONDS = 25.0
# Served email HTML must never run script, even if a message carries some.
EMAIL_CSP = ("default-src 'none'; img-src * data:; style-src 'unsafe-inline' *; font-src * data:; "
             "sandbox allow-popups allow-popups-to-escape-sandbox")
PAGE_CSP = ("default-src 'self'; img-src * data:; style-src 'self' 'unsafe-inline'; "
            "frame-src 'self'; script-src 'self'")
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".svg": "image/svg+xml"}



class PreviewHTTPServer(ThreadingHTTPServer):
    """Holds what the handlers read: the build state and the inbox folder."""

    daemon_threads = True  # a long-poll in flight must not keep the process alive

    def __init__(self, port: int, state: PreviewState, maildir: Path | None) -> None:
        self.state = state
        self.maildir = maildir
        self.stopping = False
        super().__init__((HOST, port), PreviewHandler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"


def start_server(state: PreviewState, port: int, maildir: Path | None = None) -> PreviewHTTPServer:
    """Bind 127.0.0.1:port (0 = any free port). A taken port is a one-line PreviewError."""
    try:
        return PreviewHTTPServer(port, state, maildir)
    except OSError as exc:
        raise PreviewError(listen_failure(exc, f"{HOST}:{port}", "is another preview running?")) from exc


_MESSAGE_ROUTE = re.compile(r"^/inbox/([^/]+)(?:/(body\.html|cid/(.+)))?/?$")


class PreviewHandler(BaseHTTPRequestHandler):
    server: PreviewHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "gigo-mail-preview"

    # -- plumbing -------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Quiet: the terminal belongs to the preview's own messages."""

    def _send(self, status: int, body: bytes, content_type: str, *,
              csp: str | None = PAGE_CSP, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        if csp:
            self.send_header("Content-Security-Policy", csp)
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)

    def _html(self, page: str, status: int = HTTPStatus.OK) -> None:
        self._send(status, page.encode("utf-8"), "text/html; charset=utf-8")

    def _not_found(self, what: str) -> None:
        self._html(pages.error_page(HTTPStatus.NOT_FOUND, what), HTTPStatus.NOT_FOUND)

    def _host_ok(self) -> bool:
        """Refuse other Host names, so a web page elsewhere cannot read the preview (DNS rebinding)."""
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]").lower()
        return host in ("", "127.0.0.1", "localhost")

    def _request_path(self) -> tuple[str, str] | None:
        """The request's decoded path and its query, or None once the request has been refused:
        another Host name, or a NUL in the path (no file name holds one; the OS would raise)."""
        if not self._host_ok():
            self._send(HTTPStatus.FORBIDDEN, b"forbidden host\n", "text/plain; charset=utf-8")
            return None
        url = urlsplit(self.path)
        path = unquote(url.path)
        if "\x00" in path:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")
            return None
        return path, url.query

    # -- routing --------------------------------------------------------------------
    def do_HEAD(self) -> None:  # noqa: N802 - stdlib naming
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        request = self._request_path()
        if request is None:
            return
        path, query = request[0], parse_qs(request[1])
        state = self.server.state
        if path in ("/", "/index.html"):
            self._html(pages.preview_page(state, inbox_enabled=self.server.maildir is not None))
        elif path == "/email.html":
            current = state.current
            self._email(current.html if current else pages.placeholder_email(state.error), query)
        elif path == "/email.txt":
            text = state.current.text if state.current else state.error
            self._send(HTTPStatus.OK, text.encode("utf-8"), "text/plain; charset=utf-8")
        elif path == "/version":
            self._version(query)
        elif path.startswith("/static/"):
            self._static(path.removeprefix("/static/"))
        elif path in ("/inbox", "/inbox/"):
            self._html(pages.inbox_page(state, self.server.maildir))
        elif match := _MESSAGE_ROUTE.match(path):
            self._message(match.group(1), match.group(2), match.group(3), query)
        else:
            self._issue_file(path)

    def _version(self, query: dict[str, list[str]]) -> None:
        def number(name: str) -> int | None:
            values = query.get(name)
            try:
                return int(values[0]) if values else None
            except ValueError:
                return None

        after, inbox_after = number("after"), number("inbox")
        if self.server.stopping:
            after = inbox_after = None
        version, inbox = self.server.state.wait(after, inbox_after, LONG_POLL_SECONDS)
        body = json.dumps({"version": version, "inbox": inbox, "error": self.server.state.error})
        self._send(HTTPStatus.OK, body.encode(), "application/json", csp=None)

    def _static(self, name: str) -> None:
        suffix = Path(name).suffix
        if "/" in name or name.startswith(".") or suffix not in STATIC_TYPES:
            self._not_found(f"/static/{name}")
            return
        resource = resources.files("gigo_mail").joinpath("static", name)
        if not resource.is_file():
            self._not_found(f"/static/{name}")
            return
        self._send(HTTPStatus.OK, resource.read_bytes(), STATIC_TYPES[suffix], csp=None)

    def _email(self, body: str, query: dict[str, list[str]]) -> None:
        """Email HTML for a sandboxed iframe; ``?scheme=dark`` as a dark-mode client shows it."""
        if query.get("scheme") == ["dark"]:
            body = pages.as_in_dark_mode(body)
        self._send(HTTPStatus.OK, body.encode("utf-8"), "text/html; charset=utf-8", csp=EMAIL_CSP)

    def _message(self, msg_id: str, sub: str | None, cid: str | None,
                 query: dict[str, list[str]]) -> None:
        maildir = self.server.maildir
        try:
            if maildir is None:
                raise InboxUnavailable("no inbox folder is configured")
            if sub is None:
                self._html(pages.message_page(self.server.state, maildir, msg_id))
            elif sub == "body.html":
                self._email(pages.message_html(maildir, msg_id), query)
            else:
                content_type, data = pages.message_part(maildir, msg_id, cid or "")
                self._send(HTTPStatus.OK, data, content_type, csp=EMAIL_CSP)
        except InboxUnavailable as exc:
            self._not_found(str(exc))

    def _issue_file(self, path: str) -> None:
        """Relative images in the email resolve against the page URL; serve them from the issue folder."""
        current = self.server.state.current
        folder = current.folder if current else None
        if folder is None or not path.startswith("/"):
            self._not_found(path)
            return
        base = folder.resolve()
        target = (base / path.lstrip("/")).resolve()
        if not target.is_relative_to(base) or not target.is_file() or target.suffix == ".md":
            self._not_found(path)
            return
        content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        self._send(HTTPStatus.OK, target.read_bytes(), content_type, csp=EMAIL_CSP)

