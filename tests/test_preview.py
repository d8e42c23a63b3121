"""The preview command and its live server, against a real compile and a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import html
import json
import mailbox
import os
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gigo_mail.cli import app
from gigo_mail.preview import IssueBuilder, PreviewState, Watcher
from gigo_mail.preview_http import PreviewHTTPServer, start_server

CONFIG = """\
[newsletter]
name = "Preview Weekly"
from = "Preview Weekly <news@preview.test>"
site_url = "https://preview.test"
unsubscribe_url = "https://preview.test/unsubscribe?token={token}"
postal_address = "1 Test Road, Testville"
"""

ISSUE = """\
---
number: 7
title: Seventh issue
subject: "Tips & <tricks> for issue 7"
preheader: "A short preheader for the seventh issue."
date: 2024-03-01
---

## Hello {{ subscriber.name }}

The first version of the body says FIRST-VERSION.
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny newsletter using the built-in template, as the current folder."""
    root = tmp_path / "site"
    (root / "issues").mkdir(parents=True)
    (root / "gigo-mail.toml").write_text(CONFIG, encoding="utf-8")
    (root / "issues" / "007.md").write_text(ISSUE, encoding="utf-8")
    monkeypatch.chdir(root)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    return root


@dataclass
class Running:
    server: PreviewHTTPServer
    state: PreviewState
    builder: IssueBuilder
    maildir: Path

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
        request = urllib.request.Request(self.server.url.rstrip("/") + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, dict(response.headers), response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read().decode("utf-8", "replace")


@pytest.fixture
def running(site: Path) -> Iterator[Running]:
    builder = IssueBuilder(site, "7")
    state = PreviewState(builder.build)
    maildir = site / ".gigo" / "inbox"
    server = start_server(state, 0, maildir)
    state.rebuild()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Running(server, state, builder, maildir)
    finally:
        server.stopping = True
        state.wake_all()
        server.shutdown()
        server.server_close()
        thread.join(5)


def _touch_later(path: Path) -> None:
    """Make sure the mtime moves even on filesystems with coarse timestamps."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


def test_page_shows_both_widths_text_source_and_report(running: Running) -> None:
    status, headers, page = running.get("/")
    assert status == 200
    assert running.server.server_address[0] == "127.0.0.1"
    assert 'width="720"' in page and 'width="375"' in page  # desktop and mobile iframes
    assert page.count('sandbox="allow-popups allow-popups-to-escape-sandbox"') >= 2
    for tab in ("tab-both", "tab-desktop", "tab-mobile", "tab-text", "tab-source", "tab-report"):
        assert f'id="{tab}"' in page
    current = running.state.current
    assert current is not None
    # the subject is escaped, never raw markup
    assert "Tips &amp; &lt;tricks&gt; for issue 7" in page
    assert "<tricks>" not in page
    # the text tab holds the plain-text part with the sample subscriber filled in
    assert "Hello Ada Lovelace" in current.text
    assert html.escape("The first version of the body says FIRST-VERSION.", quote=True) in page
    # the source tab holds the email HTML, escaped
    assert "&lt;html lang=&#34;en&#34;" in page
    assert "&lt;title&gt;Tips &amp;amp; &amp;lt;tricks&amp;gt;" in page
    # the report: size against Gmail's clip limit, in bytes
    assert f"{current.html_bytes} bytes" in page
    assert "104448 bytes" in page
    assert "Content-Security-Policy" in headers

    status, headers, email_html = running.get("/email.html")
    assert status == 200
    assert email_html == current.html
    assert "FIRST-VERSION" in email_html
    assert "sandbox" in headers["Content-Security-Policy"]
    status, _, text = running.get("/email.txt")
    assert status == 200 and text == current.text


def test_editing_the_issue_bumps_version_and_serves_new_content(running: Running, site: Path) -> None:
    _, _, first = running.get("/version")
    assert json.loads(first)["version"] == 1
    watcher = Watcher(running.state, running.builder.watch_paths, interval=0.05)
    watcher.start()
    try:
        answer: dict[str, int] = {}

        def long_poll() -> None:  # what the page does: wait for a version other than 1
            answer.update(json.loads(running.get("/version?after=1")[2]))

        waiter = threading.Thread(target=long_poll)
        waiter.start()
        time.sleep(0.2)
        assert waiter.is_alive(), "the long-poll should wait for a change"
        issue = site / "issues" / "007.md"
        issue.write_text(ISSUE.replace("FIRST-VERSION", "SECOND-VERSION"), encoding="utf-8")
        _touch_later(issue)
        waiter.join(10)
        assert answer.get("version") == 2
    finally:
        watcher.stop()
    _, _, email_html = running.get("/email.html")
    assert "SECOND-VERSION" in email_html and "FIRST-VERSION" not in email_html
    _, _, page = running.get("/")
    assert 'data-version="2"' in page


def test_template_and_config_changes_rebuild(running: Running, site: Path) -> None:
    watcher = Watcher(running.state, running.builder.watch_paths)
    from gigo_mail.render import BUILTIN_TEMPLATES

    override = site / "templates" / "default"
    shutil.copytree(BUILTIN_TEMPLATES / "default", override)
    text_template = override / "email.txt.j2"
    text_template.write_text(text_template.read_text() + "\nTEMPLATE-MARK\n", encoding="utf-8")
    assert watcher.check() is True
    assert "TEMPLATE-MARK" in running.get("/email.txt")[2]

    config = site / "gigo-mail.toml"
    config.write_text(CONFIG.replace("Preview Weekly", "Renamed Weekly"), encoding="utf-8")
    _touch_later(config)
    assert watcher.check() is True
    assert "Renamed Weekly" in running.get("/email.html")[2]
    assert watcher.check() is False  # nothing changed since


def test_compile_error_shows_in_page_and_keeps_last_build(running: Running, site: Path) -> None:
    watcher = Watcher(running.state, running.builder.watch_paths)
    issue = site / "issues" / "007.md"
    issue.write_text("---\nsubject: [unclosed\n---\nbody\n", encoding="utf-8")
    _touch_later(issue)
    assert watcher.check() is True
    status, _, page = running.get("/")
    assert status == 200
    assert 'id="compile-error"' in page
    assert "007.md" in page and "not valid YAML" in page
    assert "showing the last good build" in page
    assert "FIRST-VERSION" in running.get("/email.html")[2]
    assert json.loads(running.get("/version")[2])["error"]

    issue.write_text(ISSUE, encoding="utf-8")
    _touch_later(issue)
    assert watcher.check() is True
    assert 'id="compile-error"' not in running.get("/")[2]


def _captured(maildir: Path) -> str:
    msg = EmailMessage()
    msg["From"] = "Preview Weekly <news@preview.test>"
    msg["To"] = "ada@example.org"
    msg["Subject"] = "Inbox <b>copy</b> & more"
    msg["Message-ID"] = "<abc123@preview.test>"
    msg["List-Unsubscribe"] = "<https://preview.test/unsubscribe?token=t0k>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content("Plain part of the captured message.\n")
    msg.add_alternative("<html><body><p>HTML part</p><script>alert(1)</script>"
                        '<img src="cid:logo@preview.test" alt="logo"></body></html>', subtype="html")
    html_part = msg.get_payload()[1]
    html_part.add_related(b"\x89PNG\r\n\x1a\nfake-png-bytes", maintype="image", subtype="png",
                          cid="<logo@preview.test>")
    maildir.parent.mkdir(parents=True, exist_ok=True)
    box = mailbox.Maildir(str(maildir), create=True)
    return box.add(msg)


def test_inbox_lists_messages_and_shows_one(running: Running) -> None:
    key = _captured(running.maildir)
    status, _, listing = running.get("/inbox")
    assert status == 200
    assert "1 message" in listing
    assert "Inbox &lt;b&gt;copy&lt;/b&gt; &amp; more" in listing
    assert "<b>copy</b>" not in listing
    assert f'href="/inbox/{key}"' in listing

    status, _, page = running.get(f"/inbox/{key}")
    assert status == 200
    # headers as a table
    assert "<th>List-Unsubscribe</th><td>&lt;https://preview.test/unsubscribe?token=t0k&gt;</td>" in page
    assert "<th>Message-ID</th><td>&lt;abc123@preview.test&gt;</td>" in page
    assert "<th>List-Unsubscribe-Post</th>" in page
    # both widths in sandboxed iframes, text part, raw source escaped
    assert f'src="/inbox/{key}/body.html"' in page
    assert 'width="720"' in page and 'width="375"' in page
    assert "allow-scripts" not in page
    assert "Plain part of the captured message." in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert" not in page

    status, headers, body = running.get(f"/inbox/{key}/body.html")
    assert status == 200
    assert "sandbox" in headers["Content-Security-Policy"]
    assert f'src="/inbox/{key}/cid/logo@preview.test"' in body
    with urllib.request.urlopen(f"{running.server.url}inbox/{key}/cid/logo@preview.test", timeout=5) as r:
        assert r.read() == b"\x89PNG\r\n\x1a\nfake-png-bytes"
        assert r.headers["Content-Type"] == "image/png"


def test_bad_paths_and_hosts_are_refused(running: Running, site: Path) -> None:
    assert running.get("/inbox/no-such-message")[0] == 404
    assert running.get("/inbox/..%2f..%2fgigo-mail.toml")[0] == 404
    assert running.get("/../gigo-mail.toml")[0] == 404
    assert running.get("/007.md")[0] == 404  # the issue's source is not served
    assert running.get("/static/../preview.py")[0] == 404
    assert running.get("/static/preview.css")[0] == 200
    assert running.get("/", headers={"Host": "attacker.example:8025"})[0] == 403
    (site / "issues" / "pic.png").write_bytes(b"\x89PNG-ish")
    status, headers, _ = running.get("/pic.png")  # an issue's relative image
    assert status == 200 and headers["Content-Type"] == "image/png"


def test_cli_no_open_writes_files_and_prints_paths(site: Path) -> None:
    result = CliRunner().invoke(app, ["preview", "7", "--no-open"])
    assert result.exit_code == 0, result.output
    for name in ("email.html", "preview.html", "email.txt"):
        path = site / "build" / "007" / name
        assert path.is_file()
        assert f"build/007/{name}" in result.output
    assert "FIRST-VERSION" in (site / "build" / "007" / "preview.html").read_text()


def test_cli_without_display_behaves_like_no_open(site: Path) -> None:
    result = CliRunner().invoke(app, ["preview", "007"])
    assert result.exit_code == 0, result.output
    assert (site / "build" / "007" / "preview.html").is_file()
    assert "no browser to open here" in result.output


def test_cli_text_prints_plain_text_only(site: Path) -> None:
    result = CliRunner().invoke(app, ["preview", "7", "--text"])
    assert result.exit_code == 0, result.output
    assert "Hello Ada Lovelace" in result.stdout
    assert "The first version of the body says FIRST-VERSION." in result.stdout
    assert "<html" not in result.stdout.lower()
    assert not (site / "build").exists()


def test_cli_unknown_issue_is_one_line(site: Path) -> None:
    result = CliRunner().invoke(app, ["preview", "99", "--no-open"])
    assert result.exit_code == 1
    assert "no issue '99'" in result.output and "007" in result.output
    assert "Traceback" not in result.output


def test_cli_serve_on_a_taken_port_is_one_line_error(site: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["preview", "7", "--serve", "--port", str(port), "--no-open"])
    assert result.exit_code == 1
    assert f"127.0.0.1:{port} is already in use" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_first_build_failing_still_serves_a_page(site: Path) -> None:
    from gigo_mail import preview_pages

    issue = site / "issues" / "007.md"
    issue.write_text(ISSUE.replace('subject: "Tips & <tricks> for issue 7"\n', ""), encoding="utf-8")
    state = PreviewState(IssueBuilder(site, "7").build)
    state.rebuild()
    assert state.current is None and state.version == 1
    page = preview_pages.preview_page(state, inbox_enabled=True)
    assert "Not compiled yet" in page
    assert "no &#39;subject&#39;" in page
    assert "Not compiled yet" in preview_pages.placeholder_email(state.error)
