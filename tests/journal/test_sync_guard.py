"""The sync client against hostile pages (real HTTP servers on 127.0.0.1): a redirect to another
origin gets no key, a slow or endless page stops within the pull's one time limit, and a page
that is not JSON (or nests it thousands deep) is one line."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import TlsFiles
from gigo_mail.config import load_config
from gigo_mail.errors import SyncError
from gigo_mail.journal.deliveries import Journal
from gigo_mail.journal.fetch import origin
from gigo_mail.journal.sync import pull_suppressions
from servers import tls_front
from support import make_newsletter

SECRET = "guard-secret"
GOOD_PAGE = {"suppressions": [{"email": "ana@example.org", "key": "ana@example.org",
                               "reason": "one-click unsubscribe", "at": "2026-12-07T10:00:00.000"}],
             "more": False}


class Recorder:
    """What one server saw: each request's path and Authorization header."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []
        self.stop = threading.Event()


Responder = Callable[[BaseHTTPRequestHandler, Recorder], None]


@contextmanager
def http_server(respond: Callable[[BaseHTTPRequestHandler, Recorder], None],
                host: str = "127.0.0.1") -> Iterator[tuple[int, Recorder]]:
    recorder = Recorder()

    class One(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            recorder.seen.append((self.path, self.headers.get("Authorization")))
            respond(self, recorder)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), One)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], recorder
    finally:
        recorder.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def redirect_to(location: str) -> Callable[[BaseHTTPRequestHandler, Recorder], None]:
    def respond(handler: BaseHTTPRequestHandler, _: Recorder) -> None:
        handler.send_response(302)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()
    return respond


def serve_json(handler: BaseHTTPRequestHandler, _: Recorder) -> None:
    body = json.dumps(GOOD_PAGE).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def laptop(tmp_path: Path, sync_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GIGO_UNSUBSCRIBE_SECRET", SECRET)
    root = make_newsletter(tmp_path / "laptop")
    with (root / "gigo-mail.toml").open("a") as handle:
        handle.write(f'\n[unsubscribe]\nsync_url = "{sync_url}"\n')
    return root


def pull(root: Path, timeout: float = 10.0) -> int:
    config = load_config(root)
    with Journal.for_root(root) as journal:
        return pull_suppressions(config, journal, timeout=timeout).added


def test_origin_is_scheme_host_and_port() -> None:
    assert origin("https://Sync.Example.org/suppressions") == ("https", "sync.example.org", 443)
    assert origin("https://sync.example.org:443/x") == origin("https://sync.example.org/y?z=1")
    assert origin("http://sync.example.org:443/x") != origin("https://sync.example.org/x")
    assert origin("https://sync.example.org.evil.test/x") != origin("https://sync.example.org/x")
    assert origin("https://sync.example.org:8443/x") != origin("https://sync.example.org/x")


@pytest.mark.slow
@pytest.mark.parametrize("elsewhere", ["http://127.0.0.1:{port}/suppressions",
                                       "http://localhost:{port}/suppressions",
                                       "//127.0.0.1:{port}/suppressions"])
def test_a_redirect_to_another_origin_gets_no_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  elsewhere: str) -> None:
    """The page redirects to another port (or host name): the pull stops with one line naming
    the other origin, and the server there never sees the Authorization header (it never sees a
    request at all); nothing is added."""
    with http_server(serve_json) as (thief_port, thief), \
            http_server(redirect_to(elsewhere.format(port=thief_port))) as (port, page):
        root = laptop(tmp_path, f"http://127.0.0.1:{port}/suppressions", monkeypatch)
        refused = r"redirects to http://.*another origin.*not sent there"
        with pytest.raises(SyncError, match=refused) as caught:
            pull(root)
        assert "\n" not in str(caught.value)
        assert page.seen and page.seen[0][1] is not None  # the page itself got the key
        assert thief.seen == []
    with Journal.for_root(root) as journal:
        assert journal.suppressed_keys() == set()


@pytest.mark.slow
def test_a_redirect_within_the_origin_is_followed_with_the_key(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def respond(handler: BaseHTTPRequestHandler, recorder: Recorder) -> None:
        if handler.path.startswith("/v2/"):
            serve_json(handler, recorder)
        else:
            redirect_to("/v2" + handler.path)(handler, recorder)

    with http_server(respond) as (port, page):
        root = laptop(tmp_path, f"http://127.0.0.1:{port}/suppressions", monkeypatch)
        assert pull(root) == 1
        assert [path.split("?")[0] for path, _ in page.seen] == ["/suppressions", "/v2/suppressions"]
        assert page.seen[1][1] == page.seen[0][1] and str(page.seen[1][1]).startswith("Bearer ")


@pytest.mark.slow
def test_a_redirect_loop_ends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with http_server(redirect_to("/suppressions")) as (port, page):
        root = laptop(tmp_path, f"http://127.0.0.1:{port}/suppressions", monkeypatch)
        with pytest.raises(SyncError, match="more than 5 redirects"):
            pull(root)
        assert len(page.seen) == 6


def trickle_body(handler: BaseHTTPRequestHandler, recorder: Recorder) -> None:
    """200, then one byte of JSON every 50 ms, for ever."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.end_headers()
    handler.wfile.write(b'{"suppressions": [')
    while not recorder.stop.wait(0.05):
        handler.wfile.write(b" ")
        handler.wfile.flush()


def trickle_headers(handler: BaseHTTPRequestHandler, recorder: Recorder) -> None:
    """A header line every 50 ms, never the blank line that ends them."""
    handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
    count = 0
    while not recorder.stop.wait(0.05):
        count += 1
        handler.wfile.write(b"X-%d: y\r\n" % (count % 90))
        handler.wfile.flush()


def endless_body(handler: BaseHTTPRequestHandler, recorder: Recorder) -> None:
    """As fast as it can, for ever (until the client goes)."""
    handler.send_response(200)
    handler.end_headers()
    chunk = b" " * 65536
    try:
        while not recorder.stop.is_set():
            handler.wfile.write(chunk)
    except OSError:
        pass


@pytest.mark.slow
@pytest.mark.parametrize("respond", [trickle_body, trickle_headers])
def test_a_slow_page_stops_within_the_time_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 respond: Responder) -> None:
    """Each byte comes long before any socket timeout, so only one limit for the whole pull
    stops it: within 2 s (and a little), with one line."""
    with http_server(respond) as (port, _):
        root = laptop(tmp_path, f"http://127.0.0.1:{port}/suppressions", monkeypatch)
        outcome: list[BaseException | int] = []

        def run() -> None:
            try:
                outcome.append(pull(root, timeout=2.0))
            except BaseException as exc:  # noqa: BLE001 (handed to the test's thread)
                outcome.append(exc)

        started = time.monotonic()
        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        worker.join(8)
        took = time.monotonic() - started
        assert not worker.is_alive(), "the pull was still running after 8 s"
    assert took < 3.5
    assert isinstance(outcome[0], SyncError) and "within 2 s" in str(outcome[0])


@pytest.mark.slow
def test_an_endless_page_stops_at_the_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with http_server(endless_body) as (port, _):
        root = laptop(tmp_path, f"http://127.0.0.1:{port}/suppressions", monkeypatch)
        with pytest.raises(SyncError, match="larger than any page"):
            pull(root, timeout=20)


@pytest.mark.slow
@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000, b'{"suppressions": ' + b"{\"a\":" * 50_000,
                                  b"<html>proxy error</html>", b"\xff\xfe"])
def test_bad_or_deeply_nested_json_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              body: bytes) -> None:
    def respond(handler: BaseHTTPRequestHandler, _: Recorder) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    with http_server(respond) as (port, _):
        root = laptop(tmp_path, f"http://127.0.0.1:{port}/suppressions", monkeypatch)
        with pytest.raises(SyncError, match="not JSON") as caught:
            pull(root)
    assert "\n" not in str(caught.value) and "Traceback" not in str(caught.value)


@pytest.mark.slow
def test_https_never_downgrades_to_http(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        tls_files: TlsFiles) -> None:
    """The page behind TLS redirects to plain http on the same host and port: another origin (the
    scheme differs), refused before the key could cross the wire unencrypted."""
    with http_server(serve_json) as (thief_port, thief):
        with http_server(redirect_to(f"http://127.0.0.1:{thief_port}/suppressions")) as (port, page), \
                tls_front(tls_files.server_context, port) as front:
            root = laptop(tmp_path, f"https://127.0.0.1:{front}/suppressions", monkeypatch)
            with (root / "gigo-mail.toml").open("a") as handle:
                handle.write(f'cafile = "{tls_files.ca_file}"\n')
            with pytest.raises(SyncError, match=r"redirects to http://127\.0\.0\.1:\d+, another origin than "
                                                r"https://127\.0\.0\.1"):
                pull(root)
            assert len(page.seen) == 1  # it came over TLS
        assert thief.seen == []
