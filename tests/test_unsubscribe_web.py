"""The one-click unsubscribe page, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from gigo_mail.config import load_config
from gigo_mail.errors import ConfigError
from gigo_mail.journal import Journal
from gigo_mail.unsubscribe import make_token
from gigo_mail.unsubscribe_web import TokenLocation, make_app
from support import make_newsletter

SECRET = "web-secret"


class Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture()
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    root = make_newsletter(tmp_path)
    monkeypatch.setenv("GIGO_UNSUBSCRIBE_SECRET", SECRET)
    server = make_server("127.0.0.1", 0, make_app(load_config(root)), handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def request(url: str, data: bytes | None = None) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def suppressed(root: Path, email: str) -> bool:
    with Journal.for_root(root) as journal:
        return journal.is_suppressed(email)


def test_get_asks_and_post_unsubscribes(site: tuple[Path, str]) -> None:
    root, base = site
    url = f"{base}/unsubscribe?token={make_token(SECRET.encode(), 'Ann@Example.org')}"
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
