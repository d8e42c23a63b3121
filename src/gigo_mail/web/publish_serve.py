"""`publish --serve`: the built site on 127.0.0.1, republished and reloaded on every save.

It is the preview's machinery with a different build: the same polling Watcher
and versioned state (preview.py), the same HTTP plumbing, long-poll ``/version``
and reload script (preview_http.py, static/preview.js). The files on disk stay
exactly what a static host gets; the reload hook is added only to the HTML as
it is served.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs

from gigo_mail.compose.issue import ISSUES_DIR
from gigo_mail.compose.site_paths import PAGE_NAME
from gigo_mail.config import CONFIG_NAME, load_config
from gigo_mail.errors import PreviewError, listen_failure
from gigo_mail.web.preview import PreviewState, Watcher
from gigo_mail.web.preview_http import HOST, PreviewHandler, PreviewHTTPServer
from gigo_mail.web.publish import PublishReport, publish

_BODY = re.compile(rb"<body\b", re.IGNORECASE)
RELOAD_SCRIPT = "/static/preview.js"


class SiteBuilder:
    """Publishes the site again from disk, re-reading the config each time."""

    def __init__(self, root: Path, *, out: Path | None = None, drafts: bool = False,
                 sent_only: bool = False, first: PublishReport | None = None) -> None:
        self.root = load_config(root).root
        self.out, self.drafts, self.sent_only = out, drafts, sent_only
        self.site_dir = first.site_dir if first is not None else self.build().site_dir
        self.first = first

    def build(self) -> PublishReport:
        config = load_config(self.root)
        return publish(config, out=self.out, drafts=self.drafts, sent_only=self.sent_only)

    def watch_paths(self) -> list[Path]:
        return [self.root / ISSUES_DIR, self.root / "templates", self.root / CONFIG_NAME]


class SiteHTTPServer(PreviewHTTPServer):
    """Serves ``site_dir``; /version and the reload script come from the preview's handler."""

    def __init__(self, port: int, state: PreviewState[PublishReport], site_dir: Path) -> None:
        self.site_dir = site_dir
        super().__init__(port, state, None)
        self.RequestHandlerClass = SiteHandler


class SiteHandler(PreviewHandler):
    server: SiteHTTPServer
    server_version = "gigo-mail-site"

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        request = self._request_path()
        if request is None:
            return
        path, query = request
        if path == "/version":
            self._version(parse_qs(query))
        elif path == RELOAD_SCRIPT:
            self._static(RELOAD_SCRIPT.rsplit("/", 1)[1])
        else:
            self._site_file(path, query)

    def _site_file(self, path: str, query: str) -> None:
        base = self.server.site_dir.resolve()
        target = (base / path.lstrip("/")).resolve()
        if not target.is_relative_to(base):
            self._not_found(path)
            return
        if target.is_dir():
            if not path.endswith("/"):  # so the page's relative links resolve from its folder
                location = path + "/" + (f"?{query}" if query else "")
                self._send(HTTPStatus.MOVED_PERMANENTLY, b"", "text/plain", csp=None,
                           extra={"Location": location})
                return
            target = target / PAGE_NAME
        if not target.is_file():
            self._not_found(path)
            return
        data = target.read_bytes()
        content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if target.suffix == ".html":
            self._send(HTTPStatus.OK, self._with_reload(data), "text/html; charset=utf-8")
            return
        if target.suffix == ".json":
            content_type = "application/feed+json" if target.name == "feed.json" else "application/json"
        elif target.suffix in (".xml", ".css"):
            content_type += "; charset=utf-8"
        self._send(HTTPStatus.OK, data, content_type, csp=None)

    def _with_reload(self, page: bytes) -> bytes:
        """Tell preview.js to long-poll /version for this build, and load it."""
        version = str(self.server.state.version).encode()
        page = _BODY.sub(b'<body data-watch="build" data-version="' + version + b'"', page, count=1)
        script = f'<script src="{RELOAD_SCRIPT}"></script>'.encode()
        end = page.lower().rfind(b"</body>")
        return page[:end] + script + page[end:] if end >= 0 else page + script


@contextmanager
def serve_site(builder: SiteBuilder, port: int,
               on_change: Callable[[PublishReport | None, str], None] | None = None,
               interval: float = 0.5) -> Iterator[SiteHTTPServer]:
    """Serve the site and republish on every change under issues/, templates/ or gigo-mail.toml."""
    state: PreviewState[PublishReport] = PreviewState(builder.build, current=builder.first)
    if on_change is not None:
        state.on_change = lambda s: on_change(s.current if not s.error else None, s.error)
    try:
        server = SiteHTTPServer(port, state, builder.site_dir)
    except OSError as exc:
        raise PreviewError(listen_failure(exc, f"{HOST}:{port}", "is another site server running?")) from exc
    watcher = Watcher(state, builder.watch_paths, interval=interval)
    watcher.start()
    try:
        yield server
    finally:
        watcher.stop()
        server.stopping = True
        state.wake_all()
        server.server_close()
