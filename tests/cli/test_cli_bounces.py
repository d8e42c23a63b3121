"""The whole loop on real servers: send through Postfix, answers arrive in Dovecot, `bounces` and a
sync feed the suppression list, and the next send skips exactly those addresses."""

from __future__ import annotations

import csv
import re
import smtplib
import urllib.request
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gigo_mail.cli.app import app
from gigo_mail.config import load_config
from gigo_mail.journal.deliveries import Journal
from gigo_mail.web.public import ServeLimits
from servers import Dovecot, Postfix, running_page, wait_for_messages
from support import make_newsletter, write_issue

SECRET = "loop-secret"
READERS = ["ann", "bob", "cy", "dee", "eve"]  # real mailboxes at list.example.com
GHOSTS = ["ghost1", "ghost2"]  # accepted by Postfix, then bounced: no such user
runner = CliRunner()
# who the second send must skip, and why
WHY = {"ghost1@list.example.com": "hard bounce", "ghost2@list.example.com": "hard bounce",
       "bob@list.example.com": "one-click unsubscribe", "cy@list.example.com": "unsubscribe by mail",
       "dee@list.example.com": "complaint"}


def newsletter(root: Path, extra: str) -> Path:
    make_newsletter(root)
    config = root / "gigo-mail.toml"
    config.write_text(config.read_text().replace("gigo.dev", "news.example.net") + extra)
    return root


def invoke(root: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    monkeypatch.chdir(root)
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output + result.stderr
    return result.output


def received(mail: Path, name: str) -> list[EmailMessage]:
    folder = mail / "list" / name / "new"
    files = sorted(folder.iterdir()) if folder.is_dir() else []
    return [message_from_bytes(p.read_bytes(), policy=policy.default) for p in files]  # type: ignore[misc]


def smtp(postfix: Postfix, sender: str, to: str, message: EmailMessage) -> None:
    with smtplib.SMTP("127.0.0.1", postfix.port, timeout=10) as client:
        client.send_message(message, from_addr=sender, to_addrs=[to])


def complaint_about(original: EmailMessage) -> EmailMessage:
    """An ARF report (RFC 5965) as a mailbox provider sends it, with the original attached."""
    report = EmailMessage()
    report["From"] = "feedback@arf.provider.example"
    report["To"] = "fbl@news.example.net"
    report["Subject"] = "Abuse report"
    report["Message-ID"] = "<arf-1@arf.provider.example>"
    report.set_content("This is an email abuse report.")
    report.make_mixed()
    fields = EmailMessage()
    fields.set_content("Feedback-Type: abuse\nUser-Agent: Provider-FBL/1.0\nVersion: 1\n")
    fields.replace_header("Content-Type", "message/feedback-report")
    report.attach(fields)
    report.add_attachment(original)  # message/rfc822
    report.replace_header("Content-Type", 'multipart/report; report-type="feedback-report"; '
                          f'boundary="{report.get_boundary()}"')
    return report


def test_the_whole_loop(tmp_path: Path, server_root: Path, dovecot: Dovecot,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    mail = dovecot.root / "mail"
    boxes = {f"{name}@news.example.net": "gigo/Maildir/" for name in ("bounce", "unsubscribe", "fbl")}
    boxes.update({f"{n}@list.example.com": f"list/{n}/" for n in READERS})
    postfix = Postfix(server_root, mail, boxes)
    monkeypatch.setenv("GIGO_UNSUBSCRIBE_SECRET", SECRET)
    monkeypatch.setenv("GIGO_IMAP_PASSWORD", dovecot.password)
    monkeypatch.setenv("GIGO_IMAP_CAFILE", str(dovecot.cafile))
    server = newsletter(tmp_path / "server", "")
    try:
        postfix.start()
        with running_page(load_config(server), ServeLimits(loop_timeout=0.05)) as page:
            laptop = newsletter(tmp_path / "laptop", f"""
[unsubscribe]
sync_url = "{page}/suppressions"

[bounces]
source = "{dovecot.url}"
move_to = "Processed"
return_path = "bounce@news.example.net"
verp = true
""")
            with (laptop / "list.csv").open("w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["email", "name"])
                writer.writerows([f"{n}@list.example.com", n.title()] for n in READERS + GHOSTS)
            write_issue(laptop, "060.md", "number: 60\nsubject: Sixty\npreheader: p",
                        "Hello {{ subscriber.name }}.\n")
            write_issue(laptop, "061.md", "number: 61\nsubject: Sixty-one\npreheader: p", "Hello again.\n")
            smtp_url = ["--smtp", postfix.url]

            invoke(laptop, monkeypatch, "send", "060", "--list", "list.csv", "--yes", *smtp_url)
            dsns = wait_for_messages(dovecot.maildir, len(GHOSTS))  # Postfix's own DSNs
            assert len(dsns) == len(GHOSTS), postfix.log
            for name in READERS:  # Postfix delivers after it accepted: each copy, not only the DSNs
                assert len(wait_for_messages(mail / "list" / name, 1)) == 1, name

            # bob clicks one-click (RFC 8058) on the page, with the URL from his own copy
            header = str(received(mail, "bob")[0]["List-Unsubscribe"])
            url = re.search(r"<(https://[^>]+)>", header).group(1)  # type: ignore[union-attr]
            url = url.replace("https://news.example.net", page)
            with urllib.request.urlopen(urllib.request.Request(url, data=b"List-Unsubscribe=One-Click"),
                                        timeout=5) as response:
                assert response.status == 200
            # cy writes to the mailto: of List-Unsubscribe, her own tokenised address
            mailto = re.search(r"<mailto:([^?>]+)", str(received(mail, "cy")[0]["List-Unsubscribe"]))
            assert mailto and mailto.group(1).startswith("unsubscribe+060."), mailto
            request = EmailMessage()
            request["From"], request["Subject"] = "Cy <cy@list.example.com>", "unsubscribe"
            request["To"] = mailto.group(1)
            request["Message-ID"] = "<unsub-cy@list.example.com>"
            request.set_content("")
            smtp(postfix, "cy@list.example.com", mailto.group(1), request)
            # dee's provider reports her complaint, quoting her copy (its Return-Path is the VERP address)
            copy = received(mail, "dee")[0]
            smtp(postfix, "feedback@arf.provider.example", "fbl@news.example.net", complaint_about(copy))
            # eve is away: an RFC 3834 auto-reply to the return path
            away = EmailMessage()
            away["From"], away["Subject"] = "eve@list.example.com", "Out of office"
            away["To"] = str(copy["Return-Path"]).strip("<>")
            away["Auto-Submitted"] = "auto-replied"
            away["Message-ID"] = "<ooo-eve@list.example.com>"
            away.set_content("Back next week.")
            smtp(postfix, "", away["To"], away)
            assert len(wait_for_messages(dovecot.maildir, len(GHOSTS) + 3)) == len(GHOSTS) + 3

            out = invoke(laptop, monkeypatch, "bounces")
            for label, count in (("hard bounces", 2), ("complaints", 1), ("unsubscribes", 1), ("ignored", 1),
                                 ("unattributed", 0)):
                assert re.search(rf"^\s*{label}\s+{count}\b", out, re.M), (label, out)
            assert re.search(r"^\s*unsubscribes\s+1\s+suppressed: 1 proven", out, re.M), out  # by its token
            assert "Not believed" not in out, out
            again = invoke(laptop, monkeypatch, "bounces")  # nothing left in INBOX: all were moved
            assert "0 messages" in again

            out = invoke(laptop, monkeypatch, "send", "061", "--list", "list.csv", "--yes", *smtp_url)
            assert "pulled 1 unsubscribes" in out
            assert re.search(r"will get it\s+2\b", out), out
            assert len(wait_for_messages(mail / "list" / "eve", 2)) == 2
            assert len(wait_for_messages(mail / "list" / "ann", 2)) == 2
            got_061 = {n for n in READERS if any(m["Subject"] == "Sixty-one" for m in received(mail, n))}
            assert got_061 == {"ann", "eve"}

            status = invoke(laptop, monkeypatch, "status", "060")
            assert re.search(r"^\s*hard bounces\s+2\s+suppressed", status, re.M)
            assert re.search(r"^\s*complaints\s+1\s+14\.29% of sent: over", status, re.M)  # 1 of 7
            assert re.search(r"^\s*unsubscribed by mail\s+1\b", status, re.M)
            with Journal.for_root(laptop) as journal:
                reasons = {row.email: row.reason for row in journal.suppressions()}
            assert reasons == WHY
            listing = invoke(laptop, monkeypatch, "unsubscribe", "--list")
            assert "complaint" in listing and "one-click unsubscribe" in listing
    finally:
        postfix.stop()
