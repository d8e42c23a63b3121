"""The preview's HTTP server: pages, the email, the inbox and what it refuses, over real HTTP
on 127.0.0.1."""

from __future__ import annotations

import html
import mailbox
import re
import urllib.request
from email.message import EmailMessage
from pathlib import Path

import pytest

from conftest import Running
from gigo_mail.web.screenshot import find_chromium, probe


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
    # the preflight's offline part: a score per client family, escaped, and where the rest is
    assert "<h2>Preflight</h2>" in page and "Outlook " in page and "Samsung Email " in page
    assert "&lt;style&gt; element" in page and "<style> element" not in page
    assert "gigo-mail check 007" in page
    assert {f.area for f in current.checks} >= {"compat"}

    status, headers, email_html = running.get("/email.html")
    assert status == 200
    assert email_html == current.html
    assert "FIRST-VERSION" in email_html
    assert "sandbox" in headers["Content-Security-Policy"]
    status, _, text = running.get("/email.txt")
    assert status == 200 and text == current.text


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
    assert f'src="/inbox/{key}/body.html?scheme=dark"' in page  # the Dark tab
    assert running.get(f"/inbox/{key}/body.html?scheme=dark")[0] == 200
    assert f'src="/inbox/{key}/cid/logo@preview.test"' in body
    with urllib.request.urlopen(f"{running.server.url}inbox/{key}/cid/logo@preview.test", timeout=5) as r:
        assert r.read() == b"\x89PNG\r\n\x1a\nfake-png-bytes"
        assert r.headers["Content-Type"] == "image/png"


def test_bad_paths_and_hosts_are_refused(running: Running, site: Path) -> None:
    assert running.get("/inbox/no-such-message")[0] == 404
    assert running.get("/inbox/..%2f..%2fgigo-mail.toml")[0] == 404
    assert running.get("/../gigo-mail.toml")[0] == 404
    assert running.get("/007.md")[0] == 404  # the source is not served
    assert running.get("/static/../preview.py")[0] == 404
    assert running.get("/static/preview.css")[0] == 200
    assert running.get("/%00")[0] == 404  # a NUL in the path: no traceback, the connection answers
    assert running.get("/inbox/%00x")[0] == 404
    assert running.get("/")[0] == 200  # and the server goes on
    assert running.get("/", headers={"Host": "attacker.example:8025"})[0] == 403
    (site / "issues" / "pic.png").write_bytes(b"\x89PNG-ish")
    status, headers, _ = running.get("/pic.png")  # an issue's relative image
    assert status == 200 and headers["Content-Type"] == "image/png"


# Colours Chromium computed for the parts of the email a reader sees.
COLOURS_JS = """[doc.body, doc.querySelector(".card td"), doc.querySelector("h1"),
  doc.querySelector(".content p"), doc.querySelector(".masthead-name"), doc.querySelector(".footer a")]
  .map(function (el) { var s = win.getComputedStyle(el); return [s.color, s.backgroundColor]; })"""


def test_dark_tab_shows_the_emails_own_dark_styles(running: Running, tmp_path: Path) -> None:
    """The Dark tab's email, in a browser left in light mode, looks as the email itself does
    in a browser in dark mode."""
    _, _, page = running.get("/")
    assert 'data-tab="dark"' in page and 'id="tab-dark"' in page
    version = running.state.version
    assert page.count(f'src="/email.html?scheme=dark&amp;v={version}"') == 2
    status, headers, dark = running.get(f"/email.html?scheme=dark&v={version}")
    assert status == 200 and "sandbox" in headers["Content-Security-Policy"]
    current = running.state.current
    assert current is not None and "prefers-color-scheme: dark" in current.html
    assert "prefers-color-scheme" not in dark and dark != current.html
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no Chromium installed")
    (tmp_path / "own.html").write_text(current.html, encoding="utf-8")
    (tmp_path / "tab.html").write_text(dark, encoding="utf-8")
    in_dark_mode = probe(chromium, tmp_path / "own.html", [375], COLOURS_JS, workdir=tmp_path, dark=True,
                         offline=True)
    dark_tab = probe(chromium, tmp_path / "tab.html", [375], COLOURS_JS, workdir=tmp_path, offline=True)
    assert dark_tab == in_dark_mode
    page_colour = [int(c) for c in re.findall(r"\d+", dark_tab[0][0][1])]
    assert max(page_colour) < 64  # a dark page, not the light one
