"""`gigo-mail send` end to end: real compile, real messages, a real aiosmtpd server."""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conftest import SmtpServer, TlsFiles
from gigo_mail.cli.app import app
from gigo_mail.journal.deliveries import Journal
from gigo_mail.send.tokens import verify_token
from servers import wait_for_log
from support import fill_disk, make_newsletter, tiny_disk, write_issue

SECRET = "test-secret"
ISSUE_BODY = "Hello {{ subscriber.name }} from {{ subscriber.city }}.\n\nSome news.\n"
runner = CliRunner()


@pytest.fixture
def newsletter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_newsletter(tmp_path / "nl")
    write_issue(root, "050.md", "number: 50\ntitle: Fifty\nsubject: Issue fifty\npreheader: p", ISSUE_BODY)
    monkeypatch.chdir(root)
    monkeypatch.setenv("GIGO_UNSUBSCRIBE_SECRET", SECRET)
    for name in ("GIGO_SMTP_URL", "GIGO_SMTP_PASSWORD", "GIGO_SMTP_CAFILE"):
        monkeypatch.delenv(name, raising=False)
    return root


def write_list(root: Path, count: int, extra: list[dict[str, str]] | None = None) -> Path:
    path = root / "list.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["email", "name", "city"])
        writer.writeheader()
        for i in range(count):
            name = f"Zoë Ünal {i}" if i % 10 == 0 else f"Person {i}"
            writer.writerow({"email": f"p{i}@example.com", "name": name, "city": f"City{i}"})
        for row in extra or []:
            writer.writerow(row)
    return path


def send(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["send", *args])
    return result.exit_code, result.stdout, result.stderr


def test_200_messages_arrive_intact_and_personalised(newsletter: Path,
                                                     start_smtp: Callable[..., SmtpServer]) -> None:
    server = start_smtp(pipelining=True)
    csv_path = write_list(newsletter, 200)
    code, out, err = send("050", "--list", str(csv_path), "--yes", "--smtp", server.url)
    assert code == 0, err
    assert "will get it" in out and "200" in out
    messages = server.messages
    assert len(messages) == 200
    ids = set()
    for received in messages:
        msg = received.parse()
        rcpt = received.rcpt_tos[0]
        i = int(rcpt[1:].split("@")[0])
        name = f"Zoë Ünal {i}" if i % 10 == 0 else f"Person {i}"
        assert received.mail_from == "newsletter@gigo.dev"
        assert msg["From"] == "GIGO Tech Trends <newsletter@gigo.dev>"
        assert msg["Reply-To"] == "contact@gigo.dev"
        assert parseaddr(str(msg["To"])) == (name, rcpt)
        raw_to = next(line for line in received.data.split(b"\r\n") if line.startswith(b"To:"))
        assert (b"=?utf-8?" in raw_to) is (i % 10 == 0)  # RFC 2047 only when needed
        assert msg["Subject"] == "Issue fifty"
        assert msg["Date"]
        message_id = str(msg["Message-ID"])
        assert message_id.startswith("<") and message_id.endswith("@gigo.dev>")
        ids.add(message_id)
        assert "tech-trends.gigo.dev" in str(msg["List-Id"])
        unsubscribe = str(msg["List-Unsubscribe"])
        assert "<https://gigo.dev/unsubscribe?token=" in unsubscribe
        mailto = r", <mailto:unsubscribe\+050\.[0-9a-f]{20}@gigo\.dev\?subject=unsubscribe>$"
        assert re.search(mailto, unsubscribe), unsubscribe
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        token = unsubscribe.split("token=")[1].split(">")[0]
        assert verify_token(SECRET.encode(), token) == rcpt
        text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert f"Hello {name} from City{i}." in text
        assert f"City{i}" in html and "<html" in html.lower()
    assert len(ids) == 200
    with Journal.for_root(newsletter) as journal:
        assert journal.counts("050")["sent"] == 200
    # a second run sends nobody twice
    code, out, _ = send("050", "--list", str(csv_path), "--yes", "--smtp", server.url)
    assert code == 0 and "nothing to send" in out
    assert len(server.messages) == 200


def test_crlf_in_a_name_creates_no_header(newsletter: Path, smtp_server: SmtpServer) -> None:
    evil = {"email": "eve@example.com", "name": "Eve\r\nBcc: victim@example.net", "city": "X\r\nY"}
    csv_path = write_list(newsletter, 2, [evil])
    code, _, err = send("050", "--list", str(csv_path), "--yes", "--smtp", smtp_server.url)
    assert code == 0, err
    received = next(m for m in smtp_server.messages if m.rcpt_tos == ["eve@example.com"])
    head = received.data.split(b"\r\n\r\n")[0]
    assert not any(line.lower().startswith(b"bcc:") for line in head.split(b"\r\n"))
    assert smtp_server.handler.rcpt_attempts["victim@example.net"] == 0
    assert parseaddr(str(received.parse()["To"]))[1] == "eve@example.com"


def test_451_retried_550_recorded_exit_1(newsletter: Path, smtp_server: SmtpServer) -> None:
    smtp_server.handler.rcpt_fail_first["p1@example.com"] = [1, "451 4.7.1 greylisted"]
    smtp_server.handler.rcpt_reply["p2@example.com"] = "550 5.1.1 user unknown"
    csv_path = write_list(newsletter, 5)
    code, out, _ = send("050", "--list", str(csv_path), "--yes", "--smtp", smtp_server.url)
    assert code == 1
    assert "p2@example.com: 550 5.1.1 user unknown" in out
    assert sorted(smtp_server.handler.delivered_to()) == [f"p{i}@example.com" for i in (0, 1, 3, 4)]
    with Journal.for_root(newsletter) as journal:
        record = journal.record("050", "p2@example.com")
        assert record is not None and record.code == 550 and record.permanent


def test_starttls_with_private_ca(newsletter: Path, start_smtp: Callable[..., SmtpServer],
                                  tls_files: TlsFiles, monkeypatch: pytest.MonkeyPatch) -> None:
    server = start_smtp(tls="starttls", tls_files=tls_files, pipelining=True)
    monkeypatch.setenv("GIGO_SMTP_CAFILE", str(tls_files.ca_file))
    code, _, err = send("050", "--list", str(write_list(newsletter, 3)), "--yes", "--smtp", server.url)
    assert code == 0, err
    assert len(server.messages) == 3


def test_untrusted_certificate_stops_with_one_line(newsletter: Path, start_smtp: Callable[..., SmtpServer],
                                                   untrusted_tls_files: TlsFiles,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    server = start_smtp(tls="starttls", tls_files=untrusted_tls_files)
    monkeypatch.setenv("GIGO_SMTP_CAFILE", str(untrusted_tls_files.ca_file))
    code, _, err = send("050", "--list", str(write_list(newsletter, 3)), "--yes", "--smtp", server.url)
    assert code == 1
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and "TLS with 127.0.0.1" in err
    assert server.messages == []


def test_auth_ok_and_wrong_password_stops_at_once(newsletter: Path, start_smtp: Callable[..., SmtpServer],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    server = start_smtp(password="s3cret", pipelining=True)
    csv_path = write_list(newsletter, 4)
    monkeypatch.setenv("GIGO_SMTP_PASSWORD", "wrong-password")
    code, out, err = send("050", "--list", str(csv_path), "--yes", "--smtp", server.url)
    assert code == 1
    assert "refused login for 'ann'" in err and "Traceback" not in err
    assert "wrong-password" not in out + err
    assert server.messages == []
    monkeypatch.setenv("GIGO_SMTP_PASSWORD", "s3cret")
    code, out, err = send("050", "--list", str(csv_path), "--yes", "--smtp", server.url)
    assert code == 0, err
    assert "s3cret" not in out + err and f"smtp://ann@127.0.0.1:{server.port}" in out
    assert len(server.messages) == 4


def test_test_send_leaves_the_journal_alone(newsletter: Path, smtp_server: SmtpServer) -> None:
    code, out, err = send("050", "--to", "me@example.com", "--to", "you@example.com",
                          "--smtp", smtp_server.url)
    assert code == 0, err
    assert sorted(smtp_server.handler.delivered_to()) == ["me@example.com", "you@example.com"]
    assert all(str(m.parse()["Subject"]).startswith("[TEST] ") for m in smtp_server.messages)
    journal_file = newsletter / ".gigo" / "journal.sqlite3"
    if journal_file.exists():
        with Journal(journal_file) as journal:
            assert journal.runs("050") == [] and journal.counts("050")["sent"] == 0


def test_dry_run_writes_parseable_eml_and_connects_nowhere(newsletter: Path, smtp_server: SmtpServer) -> None:
    csv_path = write_list(newsletter, 12, [{"email": "bob@", "name": "Bob", "city": ""}])
    code, out, err = send("050", "--list", str(csv_path), "--dry-run", "--out", "outbox", "--smtp",
                          smtp_server.url)
    assert code == 0, err
    files = sorted((newsletter / "outbox").glob("*.eml"))
    assert len(files) == 12
    from email import message_from_bytes, policy

    msg = message_from_bytes(files[3].read_bytes(), policy=policy.default)
    assert parseaddr(str(msg["To"]))[1] == "p3@example.com"
    assert "Hello Person 3 from City3." in msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert smtp_server.handler.sessions == 0
    assert "skipped: invalid" in out
    assert not (newsletter / ".gigo" / "journal.sqlite3").exists()


def test_no_terminal_and_no_yes_refuses(newsletter: Path, smtp_server: SmtpServer) -> None:
    code, _, err = send("050", "--list", str(write_list(newsletter, 2)), "--smtp", smtp_server.url)
    assert code == 1 and "--yes" in err
    assert smtp_server.messages == []


def test_missing_list_is_a_usage_error(newsletter: Path) -> None:
    code, _, _ = send("050")
    assert code == 2


def test_sigint_stops_saves_and_resumes_without_duplicates(newsletter: Path, smtp_server: SmtpServer) -> None:
    csv_path = write_list(newsletter, 60)
    command = [sys.executable, "-c", "from gigo_mail.cli.app import main; main()", "send", "050", "--list",
               str(csv_path), "--yes", "--rate", "25", "--smtp", smtp_server.url]
    env = {**os.environ, "GIGO_UNSUBSCRIBE_SECRET": SECRET}
    process = subprocess.Popen(command, cwd=newsletter, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while len(smtp_server.messages) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=20)
    assert process.returncode == 130, err
    first = len(smtp_server.messages)
    assert 5 <= first < 60
    with Journal.for_root(newsletter) as journal:
        assert journal.counts("050")["sent"] == first
        assert journal.runs("050")[-1].outcome == "interrupted"
    code, _, err2 = send("050", "--list", str(csv_path), "--yes", "--smtp", smtp_server.url)
    assert code == 0, err2
    delivered = smtp_server.handler.delivered_to()
    assert len(delivered) == 60 and set(delivered.values()) == {1}


def test_a_full_disk_shows_the_error_that_stopped_the_run(newsletter: Path, smtp_server: SmtpServer) -> None:
    csv_path = write_list(newsletter, 300)
    with tiny_disk(newsletter / ".gigo"):
        Journal.for_root(newsletter).close()
        fill_disk(newsletter / ".gigo", leave=120_000)  # room for the first few dozen marks
        code, out, err = send("050", "--list", str(csv_path), "--yes", "--smtp", smtp_server.url)
        assert code == 1
        error = " ".join(line for line in err.splitlines() if "error:" in line or "full" in line)
        assert "database or disk is full" in error and "free some disk space" in error
        assert "cannot record a send" in error or "cannot record a delivery" in error, err
        assert "end of a run" not in err and "Traceback" not in err
        assert "summary" in out and "outcome" in out
        with Journal.for_root(newsletter) as journal:  # read-only: whoever has it is recorded
            for address in smtp_server.handler.delivered_to():
                record = journal.record("050", address)
                assert record is not None and record.status in ("sent", "sending")
    assert 0 < len(smtp_server.messages) < 300


def test_bad_rows_are_shown_with_line_numbers_and_the_rest_sent(newsletter: Path,
                                                                  smtp_server: SmtpServer) -> None:
    bad = [{"email": "bob@", "name": "Bob", "city": "B"},
           {"email": "P0@EXAMPLE.COM", "name": "Dup", "city": "D"}]
    csv_path = write_list(newsletter, 3, bad)
    code, out, _ = send("050", "--list", str(csv_path), "--yes", "--smtp", smtp_server.url)
    assert code == 0
    assert f"{csv_path}:5: 'bob@' is not a valid address" in " ".join(out.split())
    assert "list.csv:6: 'P0@EXAMPLE.COM' is a duplicate of line 2" in " ".join(out.split())
    assert sorted(smtp_server.handler.delivered_to()) == [f"p{i}@example.com" for i in range(3)]


def test_a_column_the_list_lacks_is_warned_about(newsletter: Path, smtp_server: SmtpServer) -> None:
    csv_path = newsletter / "nocity.csv"
    csv_path.write_text("email,name\na@example.com,Ann\n", encoding="utf-8")
    code, out, _ = send("050", "--list", str(csv_path), "--yes", "--smtp", smtp_server.url)
    assert code == 0
    assert "uses subscriber.city but" in out and "has no 'city' column" in " ".join(out.split())
    body = smtp_server.messages[0].parse().get_body(("plain",)).get_content()
    assert "Hello Ann from ." in body


def test_uncertain_recipients_fail_the_run_until_resolved_and_resend_keeps_the_message_id(
        newsletter: Path, smtp_server: SmtpServer) -> None:
    csv_path = write_list(newsletter, 3)
    with Journal.for_root(newsletter) as journal:  # a crash left p1 between the final dot and the reply
        journal.mark_sending("050", "p1@example.com", "p1@example.com", "<first.1@gigo.dev>")
    code, out, err = send("050", "--list", str(csv_path), "--yes", "--smtp", smtp_server.url)
    assert code == 1 and "outcome" in out and "unresolved" in out.split("outcome", 1)[1].split("\n")[0]
    assert "uncertain (use --resend-uncertain)" in out
    last = " ".join(err.split())
    assert "1 recipient(s) got the message up to its final dot" in last
    assert "gigo-mail send 050 --list list.csv --resend-uncertain" in last
    assert "gigo-mail status 050 --accept-uncertain" in last
    assert sorted(smtp_server.handler.delivered_to()) == ["p0@example.com", "p2@example.com"]
    code, out, err = send("050", "--list", str(csv_path), "--yes", "--smtp", smtp_server.url)
    assert code == 1 and "1 recipient(s) got the message" in " ".join(err.split())  # still not done
    code, out, _ = send("050", "--list", str(csv_path), "--yes", "--resend-uncertain",
                        "--smtp", smtp_server.url)
    assert code == 0
    assert sorted(smtp_server.handler.delivered_to()) == [f"p{i}@example.com" for i in range(3)]
    (resent,) = [m for m in smtp_server.messages if m.rcpt_tos == ["p1@example.com"]]
    assert resent.parse()["Message-ID"] == "<first.1@gigo.dev>"


def test_accept_uncertain_resolves_them_without_sending(newsletter: Path, smtp_server: SmtpServer) -> None:
    csv_path = write_list(newsletter, 2)
    with Journal.for_root(newsletter) as journal:
        journal.mark_sending("050", "p1@example.com", "p1@example.com", "<first.1@gigo.dev>")
    code, out, err = send("050", "--list", str(csv_path), "--yes", "--smtp", smtp_server.url)
    assert code == 1
    result = runner.invoke(app, ["status", "050", "--accept-uncertain"])
    assert result.exit_code == 0 and "Recorded 1 uncertain recipient as delivered" in result.stdout
    code, out, err = send("050", "--list", str(csv_path), "--yes", "--smtp", smtp_server.url)
    assert code == 0 and "nothing to send" in out
    assert sorted(smtp_server.handler.delivered_to()) == ["p0@example.com"]


def test_at_a_terminal_send_offers_to_resend_the_uncertain(newsletter: Path, smtp_server: SmtpServer) -> None:
    import pty

    csv_path = write_list(newsletter, 3)
    with Journal.for_root(newsletter) as journal:
        for i in (0, 1):
            journal.mark_sending("050", f"p{i}@example.com", f"p{i}@example.com", f"<first.{i}@gigo.dev>")
    primary, secondary = pty.openpty()
    env = {**os.environ, "COLUMNS": "200", "TERM": "dumb"}
    process = subprocess.Popen([sys.executable, "-m", "gigo_mail", "send", "050", "--list", str(csv_path),
                                "--smtp", smtp_server.url], stdin=secondary, stdout=secondary,
                               stderr=secondary, cwd=newsletter, env=env)
    os.close(secondary)
    seen = b""

    def wait_for(text: bytes) -> None:
        nonlocal seen
        while text not in seen:
            chunk = os.read(primary, 4096)
            assert chunk, seen.decode(errors="replace")
            seen += chunk

    try:
        wait_for(b"Re-send those 2 too")
        assert b"2 recipient(s) are uncertain" in seen
        os.write(primary, b"y\n")
        wait_for(b"Send issue 050 to 3 subscribers?")
        os.write(primary, b"y\n")
        assert process.wait(30) == 0
    finally:
        process.kill()
        os.close(primary)
    delivered = smtp_server.handler.delivered_to()
    assert sorted(delivered) == [f"p{i}@example.com" for i in range(3)] and set(delivered.values()) == {1}


def test_auth_required_stops_with_one_line_and_requeue_undoes_old_bounces(
        newsletter: Path, start_smtp: Callable[..., SmtpServer], monkeypatch: pytest.MonkeyPatch) -> None:
    server = start_smtp(password="s3cret")
    csv_path = write_list(newsletter, 20)
    code, out, err = send("050", "--list", str(csv_path), "--yes", "--smtp", f"smtp://127.0.0.1:{server.port}")
    assert code == 1
    assert "530 5.7.0 Authentication required: the server wants a login" in " ".join(err.split())
    with Journal.for_root(newsletter) as journal:
        assert journal.counts("050")["failed"] == 0
        for i in range(12):  # what an older version recorded for such a run: bounces that are not
            journal.mark_failed("050", f"p{i}@example.com", f"p{i}@example.com", 530,
                                "5.7.0 Authentication required", True)
        journal.mark_failed("050", "p19@example.com", "p19@example.com", 550, "5.1.1 no such user", True)
    status = runner.invoke(app, ["status", "050"])
    assert "gigo-mail status 050 --requeue 5.7.0" in " ".join(status.stdout.split())
    status = runner.invoke(app, ["status", "050", "--requeue", "5.7.0"])
    assert status.exit_code == 0 and "Returned 12 recipients" in status.stdout
    monkeypatch.setenv("GIGO_SMTP_PASSWORD", "s3cret")
    code, out, err = send("050", "--list", str(csv_path), "--yes", "--smtp", server.url)
    assert code == 1 and "1 recipient(s) failed" in " ".join(err.split())  # the real bounce stays
    delivered = server.handler.delivered_to()
    assert len(delivered) == 19 and "p19@example.com" not in delivered and set(delivered.values()) == {1}


@pytest.mark.parametrize(("restrictions", "reply"), [
    ("reject_unauth_destination", "Relay access denied"),  # relay denied to an unauthenticated client
    ("permit_sasl_authenticated, reject", "Access denied"),  # a submission server that wants AUTH
])
def test_postfix_refusing_the_session_marks_nobody_failed(newsletter: Path, start_postfix: Callable[..., Any],
                                                          restrictions: str, reply: str) -> None:
    postfix = start_postfix(restrictions)
    csv_path = write_list(newsletter, 40)
    code, out, err = send("050", "--list", str(csv_path), "--yes", "--smtp", postfix.url)
    line = " ".join(err.split())
    assert code == 1 and "554 5.7.1" in line and reply in line and "no recipient was marked failed" in line
    assert "Traceback" not in out + err
    with Journal.for_root(newsletter) as journal:
        counts = journal.counts("050")
    assert counts["failed"] == 0 and counts["sent"] == 0
    fixed = start_postfix("permit_mynetworks, reject")  # the right server: it relays for us
    code, out, err = send("050", "--list", str(csv_path), "--yes", "--smtp", fixed.url)
    assert code == 0, err
    with Journal.for_root(newsletter) as journal:
        assert journal.counts("050")["sent"] == 40
    # Postfix took every one (into its discard transport, which delivers after the send has returned)
    assert wait_for_log(fixed, "status=sent", 40) == 40


def test_login_to_a_real_postfix_through_dovecot_sasl(newsletter: Path, server_root: Path, dovecot: Any,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Postfix relays only for a session that logged in (SASL through Dovecot, offered only after
    STARTTLS, with a trustme certificate): without a password, and with a wrong one, the run stops
    at once with one line and charges nobody; with the right one every message is relayed, and
    Postfix's log names the user, never the password."""
    import trustme

    from servers import Postfix

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    chain, key = server_root / "smtpd-chain.pem", server_root / "smtpd-key.pem"
    ca_file = server_root / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(chain))
    cert.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    for path in (chain, key):
        path.chmod(0o644)  # a test key: smtpd reads it as the postfix user
    postfix = Postfix(server_root, server_root / "mail", restrictions="permit_sasl_authenticated, reject",
                      elsewhere="discard:", sasl=dovecot, tls=(chain, key)).start()
    try:
        monkeypatch.setenv("GIGO_SMTP_CAFILE", str(ca_file))
        url = f"smtp://{dovecot.user}@127.0.0.1:{postfix.port}"
        csv_path = write_list(newsletter, 6)
        anonymous = f"smtp://127.0.0.1:{postfix.port}"
        code, out, err = send("050", "--list", str(csv_path), "--yes", "--smtp", anonymous)
        assert code == 1 and len(err.strip().splitlines()) == 1 and "554 5.7.1" in err, err
        monkeypatch.setenv("GIGO_SMTP_PASSWORD", "not-the-password")
        code, out, err = send("050", "--list", str(csv_path), "--yes", "--smtp", url)
        line = " ".join(err.split())
        assert code == 1 and "refused login" in line and "535" in line, err
        assert "not-the-password" not in out + err + postfix.log and "Traceback" not in out + err
        with Journal.for_root(newsletter) as journal:
            assert journal.counts("050")["failed"] == 0 and journal.counts("050")["sent"] == 0
        monkeypatch.setenv("GIGO_SMTP_PASSWORD", dovecot.password)
        code, out, err = send("050", "--list", str(csv_path), "--yes", "--smtp", url)
        assert code == 0, err
        assert wait_for_log(postfix, "status=sent", 6) == 6
        assert f"sasl_method=PLAIN, sasl_username={dovecot.user}" in postfix.log
        assert dovecot.password not in out + err + postfix.log
    finally:
        postfix.stop()


def test_postfix_recipient_refusal_is_the_only_failure(newsletter: Path,
                                                       start_postfix: Callable[..., Any]) -> None:
    postfix = start_postfix("check_recipient_access inline:{ { p3@example.com = 550 5.1.1 no such user } }, "
                            "permit_mynetworks, reject")
    csv_path = write_list(newsletter, 10)
    code, out, err = send("050", "--list", str(csv_path), "--yes", "--smtp", postfix.url)
    assert code == 1 and "1 recipient(s) failed" in " ".join(err.split())
    with Journal.for_root(newsletter) as journal:
        record = journal.record("050", "p3@example.com")
        assert journal.counts("050")["sent"] == 9
    assert record is not None and record.permanent and record.code == 550


# --- lists from other platforms, segments, the dry run's plan --------------------------------------


def write_rows(root: Path, text: str, name: str = "export.csv") -> Path:
    path = root / name
    path.write_text(text, encoding="utf-8")
    return path


def test_unclear_opt_out_values_stop_the_send_and_the_dry_run(newsletter: Path,
                                                              smtp_server: SmtpServer) -> None:
    path = write_rows(newsletter, "email,name,city,Newsletter Consent\nann@example.org,Ann,Oslo,granted\n"
                                  "bob@example.org,Bob,Rome,\ncy@example.org,Cy,Pune,revoked\n")
    for extra in (["--yes", "--smtp", smtp_server.url], ["--dry-run", "--out", "outbox"]):
        code, out, err = send("050", "--list", str(path), *extra)
        assert code == 1
        assert "cannot tell who opted out" in err and "'newsletter_consent' ('', 'granted', 'revoked')" in err
        assert "Traceback" not in err
    assert smtp_server.messages == [] and not (newsletter / "outbox").exists()
    config = newsletter / "gigo-mail.toml"
    config.write_text(config.read_text() + '\n[list]\nopt_out_column = "Newsletter Consent"\n'
                      'opt_out_values = ["revoked"]\n')
    code, out, err = send("050", "--list", str(path), "--yes", "--smtp", smtp_server.url)
    assert code == 0, err
    assert sorted(smtp_server.handler.delivered_to()) == ["ann@example.org", "bob@example.org"]
    assert "skipped: unsubscribed" in out


def test_segment_by_tag_and_where_is_sent_and_recorded(newsletter: Path, smtp_server: SmtpServer) -> None:
    path = write_rows(newsletter, "email,name,city,plan,tags\nann@example.org,Ann,Oslo,paid,\"beta, news\"\n"
                                  "bob@example.org,Bob,Rome,free,news\ncy@example.org,Cy,Pune,paid,vip\n"
                                  "di@example.org,Di,Lima,paid,news\n")
    code, out, err = send("050", "--list", str(path), "--yes", "--smtp", smtp_server.url, "--tag", "news",
                          "--tag", "vip", "--where", "plan == 'paid' and city != 'Lima'")
    assert code == 0, err
    assert sorted(smtp_server.handler.delivered_to()) == ["ann@example.org", "cy@example.org"]
    assert "not in segment" in out and "tag: news | vip; where: plan == 'paid'" in " ".join(out.split())
    assert "skipped: not in segment" not in out and "subscribers check" not in out  # not a problem row
    with Journal.for_root(newsletter) as journal:
        (run,) = journal.runs("050")
    assert run.segment == "tag: news | vip; where: plan == 'paid' and city != 'Lima'"
    result = runner.invoke(app, ["status", "050"], env={"COLUMNS": "250"})
    assert "Segment" in result.stdout and "tag: news | vip" in result.stdout


def test_a_where_naming_a_missing_column_is_one_line(newsletter: Path) -> None:
    path = write_rows(newsletter, "email,name,city\nann@example.org,Ann,Oslo\n")
    code, _, err = send("050", "--list", str(path), "--dry-run", "--where", "plann == 'paid'")
    assert code == 1 and "'plann'" in err and "no such column" in err
    code, _, err = send("050", "--list", str(path), "--dry-run", "--where", "plan = 'paid'")
    assert code == 1 and "unexpected '='" in err


def test_dry_run_prints_the_plan_and_no_write_says_rendered(newsletter: Path) -> None:
    path = write_rows(newsletter, "email,name,city,status\nann@example.org,Ann,Oslo,subscribed\n"
                                  "bob@example.org,Bob,Rome,unsubscribed\nbad@,X,Y,\n")
    code, out, err = send("050", "--list", path.name, "--dry-run", "--no-write")
    assert code == 0, err
    assert "plain CSV" in out and "will get it" in out
    assert "skipped: unsubscribed" in out and "skipped: invalid" in out
    assert "export.csv:3: status is 'unsubscribed'" in out  # file:line, as a real send shows them
    assert "rendered" in out and "written" not in out


def test_test_send_and_preview_use_the_configured_lists_first_sendable_row(
        newsletter: Path, smtp_server: SmtpServer) -> None:
    config = newsletter / "gigo-mail.toml"
    config.write_text(config.read_text() + '\n[list]\npath = "subscribers.csv"\n')
    assert runner.invoke(app, ["unsubscribe", "ana@example.org"]).exit_code == 0  # the first row
    code, _, err = send("050", "--to", "me@example.com", "--smtp", smtp_server.url)
    assert code == 0, err
    (received,) = smtp_server.messages
    assert "Hello Björn Åström from Uppsala." in received.parse().get_body(("plain",)).get_content()
    preview = runner.invoke(app, ["preview", "050", "--text"])
    assert preview.exit_code == 0 and "Hello Björn Åström from Uppsala." in preview.stdout


# -- drafts ---------------------------------------------------------------------------------------

def _draft(newsletter: Path) -> None:
    write_issue(newsletter, "051.md", "number: 51\nsubject: Draft 51\npreheader: p\ndraft: true", ISSUE_BODY)


def test_a_draft_is_not_sent_to_the_list_with_yes_and_says_how_to_undraft(newsletter: Path,
                                                                         smtp_server: SmtpServer) -> None:
    _draft(newsletter)
    code, out, err = send("051", "--list", str(write_list(newsletter, 2)), "--smtp", smtp_server.url, "--yes")
    assert code == 1 and "Traceback" not in out + err
    assert err.strip() == ("error: not sending: issues/051.md is a draft (draft: true in its front matter); "
                           "delete that line, or set draft: false, when it is ready for the list")
    assert smtp_server.messages == []
    journal = Journal.existing(newsletter)
    assert journal is None or not any(journal.counts("051").values())


def test_a_draft_still_goes_to_a_test_address_and_a_dry_run(newsletter: Path,
                                                             smtp_server: SmtpServer) -> None:
    _draft(newsletter)
    assert send("051", "--to", "me@example.org", "--smtp", smtp_server.url)[0] == 0
    assert send("051", "--list", str(write_list(newsletter, 2)), "--dry-run", "--no-write")[0] == 0
    assert len(smtp_server.messages) == 1


def test_at_a_terminal_a_draft_is_asked_about(newsletter: Path, smtp_server: SmtpServer) -> None:
    import pty

    _draft(newsletter)
    csv_path = write_list(newsletter, 2)
    primary, secondary = pty.openpty()
    env = {**os.environ, "COLUMNS": "200", "TERM": "dumb"}
    process = subprocess.Popen([sys.executable, "-m", "gigo_mail", "send", "051", "--list", str(csv_path),
                                "--smtp", smtp_server.url], stdin=secondary, stdout=secondary,
                               stderr=secondary, cwd=newsletter, env=env)
    os.close(secondary)
    seen = b""
    try:
        while b"Send the draft 051 to 2 subscribers?" not in seen:
            chunk = os.read(primary, 4096)
            assert chunk, seen.decode(errors="replace")
            seen += chunk
        assert b"draft: true" in seen and b"delete that line" in seen
        os.write(primary, b"n\n")
        assert process.wait(30) == 1
    finally:
        process.kill()
        os.close(primary)
    assert smtp_server.messages == []


# -- one way to write numbers ---------------------------------------------------------------------

RATE = re.compile(r"^(\d{1,3}(,\d{3})*|\d\.\d) msg/s$")


def test_counts_and_rates_are_written_one_way_by_send_status_and_subscribers(newsletter: Path,
                                                                            smtp_server: SmtpServer) -> None:
    big = write_list(newsletter, 1100)
    code, out, _ = send("050", "--list", str(big), "--dry-run", "--no-write")
    assert code == 0 and "1,100" in out and "1100" not in out
    checked = runner.invoke(app, ["subscribers", "check", str(big)])
    assert checked.exit_code == 0 and "1,100" in checked.stdout and "1100" not in checked.stdout
    code, out, _ = send("050", "--list", str(write_list(newsletter, 12)), "--smtp", smtp_server.url, "--yes")
    assert code == 0, out
    summary_rate = re.search(r"│ rate\s+│\s+(.+?)\s+│", out)
    assert summary_rate and RATE.match(summary_rate.group(1)), out
    status = runner.invoke(app, ["status", "050"], env={"COLUMNS": "200"})
    rates = re.findall(r"(\S+ msg/s|\S+/s)", status.stdout)
    assert rates and all(RATE.match(rate) or rate.endswith(" msg/s") for rate in rates), status.stdout
    assert not re.search(r"\d/s", status.stdout), status.stdout  # never "43.5/s"
