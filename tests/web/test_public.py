"""The one-click unsubscribe page, over real HTTP on 127.0.0.1 (waitress, as `--serve` runs it)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from gigo_mail.config import load_config
from gigo_mail.errors import ConfigError
from gigo_mail.journal.deliveries import Journal
from gigo_mail.journal.sync import sync_key
from gigo_mail.send.tokens import make_token
from gigo_mail.web.public import ServeLimits, TokenLocation, make_app
from servers import running_page
from support import make_newsletter

SECRET = "web-secret"
FAST = ServeLimits(channel_timeout=1.0, cleanup_interval=0.5, loop_timeout=0.05)


@pytest.fixture()
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    root = make_newsletter(tmp_path)
    monkeypatch.setenv("GIGO_UNSUBSCRIBE_SECRET", SECRET)
    with running_page(load_config(root), FAST) as base:
        yield root, base


def request(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers or {}),
                                    timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def raw(base: str, payload: bytes, timeout: float = 5) -> bytes:
    """Send raw bytes to the server and read until it closes (or answers one response)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(payload)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks):
                break
        return b"".join(chunks)


def suppressed(root: Path, email: str) -> bool:
    with Journal.for_root(root) as journal:
        return journal.is_suppressed(email)


def token_url(base: str, email: str) -> str:
    return f"{base}/unsubscribe?token={make_token(SECRET.encode(), email)}"


def test_get_asks_and_post_unsubscribes(site: tuple[Path, str]) -> None:
    root, base = site
    url = token_url(base, "Ann@Example.org")
    status, page = request(url)
    assert status == 200 and "Unsubscribe from GIGO Tech Trends?" in page
    assert 'method="post"' in page and "ann@example.org" in page
    assert not suppressed(root, "ann@example.org")  # a GET (a link scanner) changes nothing
    status, page = request(url, b"List-Unsubscribe=One-Click")  # what Gmail sends (RFC 8058)
    assert status == 200 and "You are unsubscribed" in page
    assert suppressed(root, "ann@example.org")
    status, _ = request(url, b"List-Unsubscribe=One-Click")  # twice is fine
    assert status == 200


def test_forged_or_foreign_tokens_change_nothing(site: tuple[Path, str]) -> None:
    root, base = site
    good = make_token(SECRET.encode(), "bob@example.org")
    forged = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    other_secret = make_token(b"another secret", "bob@example.org")
    for token in (forged, other_secret, "garbage", ""):
        status, page = request(f"{base}/unsubscribe?token={token}", b"List-Unsubscribe=One-Click")
        assert status == 400 and "not valid" in page
    assert not suppressed(root, "bob@example.org")
    assert request(f"{base}/elsewhere?token={good}")[0] == 404


def test_escapes_what_it_shows(site: tuple[Path, str]) -> None:
    _, base = site
    token = make_token(SECRET.encode(), '"<b>x</b>"@example.org')
    status, page = request(f"{base}/unsubscribe?token={token}")
    assert status == 200 and "<b>x</b>" not in page and "&lt;b&gt;" in page


def test_token_in_a_path_segment() -> None:
    location = TokenLocation("https://x.example/u/{token}/bye", "cfg")
    assert location.token("/u/abc.def/bye", "") == "abc.def"
    assert location.token("/u/abc/other", "") is None
    with pytest.raises(ConfigError, match="has no {token}"):
        TokenLocation("https://x.example/unsubscribe", "cfg")


@pytest.mark.slow
def test_an_idle_connection_blocks_nobody_and_is_closed(site: tuple[Path, str]) -> None:
    _, base = site
    host, port = base.removeprefix("http://").split(":")
    idle = [socket.create_connection((host, int(port)), timeout=10) for _ in range(3)]
    half = socket.create_connection((host, int(port)), timeout=10)
    half.sendall(b"POST /unsubscribe?token=x HTTP/1.1\r\nHost: x\r\n")  # headers never finished
    try:
        started = time.monotonic()
        assert request(token_url(base, "dee@example.org"))[0] == 200
        assert time.monotonic() - started < 1.0
        for sock in [*idle, half]:  # the server hangs up on clients that make no progress
            assert sock.recv(1024) == b""
        assert time.monotonic() - started < 6
    finally:
        for sock in [*idle, half]:
            sock.close()


def test_concurrent_requests(site: tuple[Path, str]) -> None:
    root, base = site
    emails = [f"reader{i}@example.org" for i in range(24)]
    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(lambda e: request(token_url(base, e), b"List-Unsubscribe=One-Click")[0],
                                emails))
    assert results == [200] * len(emails)
    assert all(suppressed(root, email) for email in emails)


@pytest.mark.parametrize("length", ["-1", "abc", "1e3", " -5"])
def test_a_bad_content_length_is_refused(site: tuple[Path, str], length: str) -> None:
    root, base = site
    token = make_token(SECRET.encode(), "eve@example.org")
    answer = raw(base, (f"POST /unsubscribe?token={token} HTTP/1.1\r\nHost: x\r\n"
                        f"Content-Length: {length}\r\n\r\nList-Unsubscribe=One-Click").encode())
    assert answer.startswith(b"HTTP/1.1 400")
    assert not suppressed(root, "eve@example.org")
    assert request(f"{base}/healthz")[0] == 200  # and it still serves


def test_a_huge_body_is_refused_before_it_is_sent(site: tuple[Path, str]) -> None:
    root, base = site
    token = make_token(SECRET.encode(), "fay@example.org")
    # 300 MB announced, nothing sent: the answer comes at once, without reading a byte of it
    answer = raw(base, (f"POST /unsubscribe?token={token} HTTP/1.1\r\nHost: x\r\n"
                        "Content-Length: 300000000\r\n\r\n").encode())
    assert answer.startswith(b"HTTP/1.1 413")
    head = f"POST /unsubscribe?token={token} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunked = raw(base, head.encode() + b"2000\r\n" + b"x" * 0x2000 + b"\r\n")
    assert chunked.startswith(b"HTTP/1.1 413")
    huge_header = raw(base, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 40000 + b"\r\n\r\n")
    assert huge_header.split(b"\r\n")[0].endswith(b" 431 Request Header Fields Too Large")
    assert not suppressed(root, "fay@example.org")


@pytest.mark.slow
def test_mounted_elsewhere_the_app_still_refuses_a_negative_length(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """make_app under another server (here the stdlib's, which passes Content-Length through)."""
    root = make_newsletter(tmp_path)
    monkeypatch.setenv("GIGO_UNSUBSCRIBE_SECRET", SECRET)

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = make_server("127.0.0.1", 0, make_app(load_config(root)), handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        token = make_token(SECRET.encode(), "gus@example.org")
        answer = raw(base, (f"POST /unsubscribe?token={token} HTTP/1.0\r\nContent-Length: -1\r\n\r\n"
                            ).encode())
        assert answer.startswith(b"HTTP/1.0 400")
        assert not suppressed(root, "gus@example.org")
    finally:
        server.shutdown()
        server.server_close()


def test_health_check(site: tuple[Path, str]) -> None:
    _, base = site
    assert request(f"{base}/healthz") == (200, "ok\n")


def test_the_suppression_list_needs_the_sync_key(site: tuple[Path, str]) -> None:
    root, base = site
    request(token_url(base, "hal@example.org"), b"List-Unsubscribe=One-Click")
    for headers in ({}, {"Authorization": "Bearer " + "0" * 64},
                    {"Authorization": "Bearer " + sync_key(b"another secret")},
                    {"Authorization": "Basic " + sync_key(SECRET.encode())}):
        status, body = request(f"{base}/suppressions", headers=headers)
        assert status == 401 and "hal@" not in body
    status, body = request(f"{base}/suppressions",
                           headers={"Authorization": f"Bearer {sync_key(SECRET.encode())}"})
    assert status == 200
    assert [item["email"] for item in json.loads(body)["suppressions"]] == ["hal@example.org"]


@pytest.mark.slow
def test_cli_serve_end_to_end(tmp_path: Path) -> None:
    root = make_newsletter(tmp_path)
    env = {**os.environ, "GIGO_UNSUBSCRIBE_SECRET": SECRET}
    proc = subprocess.Popen([sys.executable, "-m", "gigo_mail", "unsubscribe", "--serve", "--port", "0"],
                            cwd=root, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+/unsubscribe)", line)
        assert match, line
        token = make_token(SECRET.encode(), "cy@example.org")
        status, _ = request(f"{match.group(1)}?token={token}", b"List-Unsubscribe=One-Click")
        assert status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert suppressed(root, "cy@example.org")
