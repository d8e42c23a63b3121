"""Links and images, requested from a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import DnsServer
from gigo_mail.check.links import check_images, check_links
from gigo_mail.check.report import FAIL, OK, SKIP, WARN
from gigo_mail.check.run import CheckOptions, run_check
from gigo_mail.cli.app import app
from gigo_mail.compose.compile import compile_issue
from gigo_mail.compose.issue import find_issue
from gigo_mail.config import load_config
from support import make_newsletter, write_issue

runner = CliRunner()


def png(width: int, height: int = 10, noise: bool = False) -> bytes:
    image = Image.effect_noise((width, height), 100).convert("RGB") if noise else Image.new(
        "RGB", (width, height), "white")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


WIDE = png(1600)
HEAVY = png(700, 700, noise=True)  # random pixels do not compress: over 1 MB


class Site(BaseHTTPRequestHandler):
    release = threading.Event()  # /slow waits for it: the client's timeout fires first
    pair = threading.Barrier(2, timeout=5)  # /pair1 and /pair2 answer only when both are asked at once
    seen: list[tuple[str, str]] = []

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self, body: bool) -> None:
        self.seen.append((self.command, self.path))
        routes = {"/ok": (200, b"ok", "text/html"), "/pair1": (200, b"", "text/html"),
                  "/pair2": (200, b"", "text/html"), "/wide.png": (200, WIDE, "image/png"),
                  "/heavy.png": (200, HEAVY, "image/png")}
        if self.path == "/slow":
            self.release.wait(10)
        if self.path in ("/pair1", "/pair2") and self.command == "HEAD":
            try:
                self.pair.wait()
            except threading.BrokenBarrierError:
                self.path = "/sequential"  # a 404: the checker asked one after the other
        if self.path == "/no-head" and self.command == "HEAD":
            status, data, kind = 405, b"", "text/plain"
        elif self.path == "/no-head":
            status, data, kind = 200, b"fine", "text/html"
        else:
            status, data, kind = routes.get(self.path, (404, b"not found", "text/plain"))
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(data)  # the checker stops reading an image past 1 MB

    def do_HEAD(self) -> None:
        self._reply(body=False)

    def do_GET(self) -> None:
        self._reply(body=True)


@pytest.fixture
def web() -> Iterator[str]:
    Site.release.clear()
    Site.pair.reset()
    Site.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    Site.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_newsletter(tmp_path / "nl")
    monkeypatch.chdir(root)
    return root


def compiled_with(root: Path, web: str) -> object:
    body = (f"[ok]({web}/ok) [no head]({web}/no-head) [gone]({web}/gone) [slow]({web}/slow)\n\n"
            f"[again]({web}/ok)\n\n![wide]({web}/wide.png)\n\n![heavy]({web}/heavy.png)\n\n"
            f"[refused](http://127.0.0.1:9/closed) [a]({web}/pair1) [b]({web}/pair2)\n")
    write_issue(root, "060.md", "subject: Links\npreheader: p", body)
    return compile_issue(load_config(root), find_issue(root, "060"))


def by_subject(findings: list, needle: str) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [(f.level, f.detail) for f in findings if needle in f.subject]


@pytest.mark.slow
def test_each_link_is_asked_once_concurrently_and_dead_ones_fail(root: Path, web: str) -> None:
    compiled = compiled_with(root, web)
    findings = check_links(compiled, timeout=2.0, offline=False)  # type: ignore[arg-type]
    assert by_subject(findings, "/ok") == [(OK, "HTTP 200")]
    assert by_subject(findings, "/no-head") == [(OK, "HTTP 200")]  # HEAD refused, GET answered
    assert by_subject(findings, "/gone") == [(FAIL, "link: HTTP 404")]
    # each of these answers only while the other is being asked: the checker asks concurrently
    assert by_subject(findings, "/pair1") == by_subject(findings, "/pair2") == [(OK, "HTTP 200")]
    [(level, detail)] = by_subject(findings, "/slow")
    assert level == FAIL and "timed out" in detail
    [(level, detail)] = by_subject(findings, "127.0.0.1:9/closed")
    assert level == FAIL and "no answer" in detail
    assert [f.subject for f in findings if "/ok" in f.subject][0].startswith("line ")
    assert Site.seen.count(("HEAD", "/ok")) == 1  # listed twice in the issue, asked once
    assert ("HEAD", "/no-head") in Site.seen and ("GET", "/no-head") in Site.seen
    assert ("GET", "/wide.png") in Site.seen and ("HEAD", "/wide.png") not in Site.seen
    assert any(f.level == SKIP and "per-subscriber" in f.subject for f in findings)
    assert (WARN, "1600 x 10 px") in [(lv, d.split(":")[0]) for lv, d in by_subject(findings, "/wide.png")]
    heavy = by_subject(findings, "/heavy.png")
    assert any(level == FAIL and "over 1 MB" in detail for level, detail in heavy)


@pytest.mark.slow
def test_offline_requests_nothing(root: Path, web: str) -> None:
    findings = check_links(compiled_with(root, web), timeout=0.5, offline=True)  # type: ignore[arg-type]
    assert Site.seen == []
    assert any(f.level == SKIP and "--offline" in f.detail for f in findings)


def test_local_images_are_measured_from_the_file(root: Path) -> None:
    folder = root / "issues" / "061"
    folder.mkdir(parents=True)
    (folder / "wide.png").write_bytes(WIDE)
    (folder / "heavy.png").write_bytes(HEAVY)
    (folder / "small.png").write_bytes(png(600))
    write_issue(root, "061/index.md", "subject: s\npreheader: p",
                "![w](wide.png)\n\n![h](heavy.png)\n\n![s](small.png)\n")
    findings = check_images(compile_issue(load_config(root), find_issue(root, "061")))
    assert [(f.subject, f.level) for f in findings] == [("wide.png", WARN), ("heavy.png", FAIL)]
    assert "1.0 MB" in findings[1].detail or "1.1 MB" in findings[1].detail


def test_check_runs_everything_and_the_cli_exit_code_follows_failures(
        root: Path, web: str, start_dns: Callable[[list[str], list[str]], DnsServer],
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dns = start_dns(["gigo.dev"], []).address  # a domain with no records at all
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # SpamAssassin's own test is in test_check_spam
    compiled = compiled_with(root, web)
    report = run_check(compiled, CheckOptions(dns=dns, offline=True))  # type: ignore[arg-type]
    assert {f.area for f in report.findings} == {"dns", "issue", "links", "images", "compat", "spam"}
    assert "SPF gigo.dev" in {f.subject for f in report.failed}
    result = runner.invoke(app, ["check", "060", "--dns", dns, "--timeout", "2"])
    assert result.exit_code == 1
    assert "HTTP 404" in result.stdout and "failed" in result.stdout
