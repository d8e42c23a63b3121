"""`publish --serve`: a real HTTP server on 127.0.0.1 and a real client; an edit republishes and reloads."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gigo_mail.cli.app import app
from gigo_mail.web.publish_serve import SiteBuilder, serve_site
from support import make_newsletter


def get(port: int, path: str, host: str = "127.0.0.1") -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers={"Host": host})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_serves_the_site_with_live_reload_and_republishes_on_save(tmp_path: Path) -> None:
    root = make_newsletter(tmp_path / "news")
    builder = SiteBuilder(root)
    assert (builder.site_dir / "issues" / "011" / "index.html").is_file()  # published before serving
    with serve_site(builder, 0, interval=0.05) as server:
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        port = server.port
        status, headers, body = get(port, "/")
        assert status == 200 and b'data-watch="build" data-version="0"' in body
        assert b'<script src="/static/preview.js"></script></body>' in body
        assert b"<script" not in (builder.site_dir / "index.html").read_bytes()  # only as served
        status, headers, _ = get(port, "/issues/011")
        assert status == 301 and headers["Location"] == "/issues/011/"
        status, headers, body = get(port, "/feed.json")
        assert status == 200 and headers["Content-Type"] == "application/feed+json"
        assert json.loads(body)["items"][0]["id"] == "https://gigo.dev/issues/011/"
        assert get(port, "/static/preview.js")[0] == 200
        assert get(port, "/../gigo-mail.toml")[0] == 404
        assert get(port, "/%2e%2e/subscribers.csv")[0] == 404
        assert get(port, "/", host="evil.example")[0] == 403
        assert get(port, "/%00")[0] == 404  # a NUL in the path: no traceback, the connection answers

        issue = root / "issues" / "011.md"
        issue.write_text(issue.read_text().replace("Text-to-video takes another", "Edited text-to-video"))
        _, _, answer = get(port, "/version?after=0")  # long-polls until the rebuild
        assert json.loads(answer) == {"version": 1, "inbox": 0, "error": ""}
        assert b"Edited text-to-video" in get(port, "/issues/011/")[2]
        assert b"Edited text-to-video" in (builder.site_dir / "feed.xml").read_bytes()
        server.shutdown()


def test_a_taken_port_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_newsletter(tmp_path / "news")
    monkeypatch.chdir(root)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["publish", "--serve", "--port", str(port)])
    assert result.exit_code == 1
    assert f"127.0.0.1:{port} is already in use" in result.output and "Traceback" not in result.output
