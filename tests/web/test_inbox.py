"""The capture inbox: real SMTP clients against a real InboxServer on 127.0.0.1, port 0."""

from __future__ import annotations

import asyncio
import re
import smtplib
import socket
from collections import Counter
from pathlib import Path

import aiosmtplib
import pytest
from typer.testing import CliRunner

from gigo_mail.cli.app import app
from gigo_mail.compose.compile import compile_issue
from gigo_mail.compose.issue import find_issue
from gigo_mail.compose.scaffold import create_newsletter
from gigo_mail.config import load_config
from gigo_mail.journal.deliveries import Journal
from gigo_mail.lists.reader import read_subscribers
from gigo_mail.send.engine import Sender, SendOptions
from gigo_mail.send.message import MessageFactory
from gigo_mail.transport import SmtpEndpoint, SmtpTransport, parse_smtp_url
from gigo_mail.web.inbox import (
    CapturedMessage,
    InboxError,
    InboxServer,
    list_messages,
    load_message,
    message_parts,
)
from support import newsletter_mail

runner = CliRunner()


def test_aiosmtplib_and_several_recipients(inbox: tuple[InboxServer, list[CapturedMessage]]) -> None:
    server, _ = inbox
    msg = newsletter_mail("Readers <list@example.org>", "Two at once")

    async def send() -> None:
        await aiosmtplib.send(msg, hostname="127.0.0.1", port=server.port,
                              recipients=["ann@example.org", "bob@example.org"])

    asyncio.run(send())
    [row] = list_messages(server.maildir)
    assert row.recipients == ("ann@example.org", "bob@example.org")
    assert load_message(server.maildir, row.id)["Subject"] == "Two at once"


def test_async_context_manager_runs_on_the_callers_loop(tmp_path: Path) -> None:
    async def scenario() -> list[str]:
        async with InboxServer(tmp_path / "inbox", port=0) as server:
            await aiosmtplib.send(newsletter_mail("a@example.org", "from the same loop"),
                                  hostname="127.0.0.1", port=server.port)
            return [m.subject for m in list_messages(server.maildir)]

    assert asyncio.run(scenario()) == ["from the same loop"]


def test_smtputf8_and_8bitmime_are_advertised_and_work(
        inbox: tuple[InboxServer, list[CapturedMessage]]) -> None:
    server, _ = inbox
    msg = newsletter_mail("Jörg <jörg@exämple.org>", "Grüße aus Köln")
    with smtplib.SMTP("127.0.0.1", server.port) as client:
        client.ehlo()
        assert client.has_extn("smtputf8") and client.has_extn("8bitmime")
        client.send_message(msg, mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    [row] = list_messages(server.maildir)
    assert row.recipients == ("jörg@exämple.org",)
    assert row.subject == "Grüße aus Köln"
    assert load_message(server.maildir, row.id)["To"] == "Jörg <jörg@exämple.org>"


def test_any_login_is_accepted(inbox: tuple[InboxServer, list[CapturedMessage]]) -> None:
    server, _ = inbox
    with smtplib.SMTP("127.0.0.1", server.port) as client:
        client.login("ann", "whatever")
        client.send_message(newsletter_mail("a@example.org", "after login"))
    assert [m.subject for m in list_messages(server.maildir)] == ["after login"]


def _rcpt_failures(server: InboxServer, addresses: list[str]) -> set[str]:
    failed: set[str] = set()
    with smtplib.SMTP("127.0.0.1", server.port) as client:
        client.ehlo()
        client.mail("news@example.org")
        for address in addresses:
            code, text = client.rcpt(address)
            if code != 250:
                assert code == 451, (code, text)
                assert b"chaos" in text and b"simulated temporary failure" in text
                failed.add(address)
        client.rset()
    return failed


def test_chaos_mode_fails_about_p_of_rcpts_repeatably(tmp_path: Path) -> None:
    addresses = [f"reader{i}@example.org" for i in range(500)]
    runs = []
    for seed in (7, 7, 8):
        with InboxServer(tmp_path / "inbox", port=0, fail_rate=0.2, fail_code=451, seed=seed) as server:
            runs.append(_rcpt_failures(server, addresses))
            assert server.chaos.injected == len(runs[-1])
    assert 60 <= len(runs[0]) <= 140  # 20 % of 500 = 100
    assert runs[0] == runs[1]  # same seed, same recipients fail
    assert runs[0] != runs[2]


def test_chaos_retry_of_a_failed_recipient_gets_a_fresh_draw(tmp_path: Path) -> None:
    with InboxServer(tmp_path / "inbox", port=0, fail_rate=0.5, seed=3) as server:
        addresses = [f"r{i}@example.org" for i in range(200)]
        first = _rcpt_failures(server, addresses)
        second = _rcpt_failures(server, sorted(first))
    assert first and second < first  # some retries now pass, as with a real throttling server


def test_chaos_on_data_with_a_permanent_code(tmp_path: Path) -> None:
    with InboxServer(tmp_path / "inbox", port=0, fail_rate=1.0, fail_code=554, fail_on="data") as server:
        with smtplib.SMTP("127.0.0.1", server.port) as client, \
                pytest.raises(smtplib.SMTPDataError) as caught:
            client.send_message(newsletter_mail("a@example.org", "refused"))
        assert caught.value.smtp_code == 554
        assert list_messages(server.maildir) == []


def test_chaos_421_closes_the_connection(tmp_path: Path) -> None:
    with InboxServer(tmp_path / "inbox", port=0, fail_rate=1.0, fail_code=421) as server, \
            smtplib.SMTP("127.0.0.1", server.port) as client:
        client.ehlo()
        client.mail("news@example.org")
        code, _ = client.rcpt("a@example.org")
        assert code == 421
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.noop()


def test_bad_chaos_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        InboxServer(tmp_path, fail_rate=1.5)
    with pytest.raises(ValueError):
        InboxServer(tmp_path, fail_code=250)


def test_port_in_use_is_an_inbox_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(InboxError, match=rf"127\.0\.0\.1:{port} is already in use.*--port"):
            InboxServer(tmp_path / "inbox", port=port).start()


# -- end to end: a fresh newsletter sent for real into the inbox -------------------------------

def test_send_of_a_fresh_newsletter_lands_in_the_inbox(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "letter"
    assert runner.invoke(app, ["init", str(root)]).exit_code == 0
    monkeypatch.chdir(root)
    monkeypatch.delenv("GIGO_SMTP_URL", raising=False)
    with InboxServer(root / ".gigo" / "inbox", port=0) as server:
        result = runner.invoke(app, ["send", "001", "--list", "subscribers.csv", "--yes",
                                     "--smtp", server.url])
        assert result.exit_code == 0, result.output + result.stderr
        listed = list_messages(server.maildir)
    assert sorted(m.recipients for m in listed) == [
        ("ada@example.org",), ("jose@example.org",), ("zoe@example.org",)]
    by_address = {m.recipients[0]: m for m in listed}
    zoe = load_message(server.maildir, by_address["zoe@example.org"].id)
    assert zoe["Subject"] == "Welcome to Letter"
    assert "zoe@example.org" in zoe["To"] and "Zoë Ångström" in zoe["To"]
    assert zoe["List-Unsubscribe"] and zoe["Message-ID"]
    html, text = message_parts(zoe)
    assert text is not None and "Hello Zoë Ångström!" in text
    assert "Zoë Ångström lives in Uppsala" in " ".join(text.split())  # the extra CSV column
    assert html is not None and "Zoë Ångström" in html
    # the journal saw all three, so `issues` reports the issue as sent
    issues = runner.invoke(app, ["issues"])
    row = next(line for line in issues.output.splitlines() if line.strip().startswith("001"))
    assert re.search(r"Welcome to\s.*\s3\s+0\s+\d{4}-\d\d-\d\d \d\d:\d\d \(complete\)", row), row


def test_chaos_rehearsal_through_the_sender_delivers_each_reader_once(tmp_path: Path) -> None:
    """A real send engine against a flaky inbox: 451s are retried, nobody gets two copies."""
    root = tmp_path / "letter"
    create_newsletter(root)
    readers = [f"reader{i}@example.org" for i in range(60)]
    rows = "".join(f"{address},Reader {i}\n" for i, address in enumerate(readers))
    (root / "list.csv").write_text("email,name\n" + rows)
    compiled = compile_issue(load_config(root), find_issue(root, "001"))
    factory = MessageFactory(compiled, secret=b"test-secret")
    with InboxServer(tmp_path / "inbox", port=0, fail_rate=0.3, fail_code=451, seed=11) as server, \
            Journal.for_root(root) as journal:
        endpoint = SmtpEndpoint(parse_smtp_url(server.url), timeout=5)
        sender = Sender(issue_key="001", envelope_from=factory.envelope_from, build=factory.build,
                        transport_factory=lambda: SmtpTransport(endpoint), journal=journal,
                        options=SendOptions(concurrency=4, attempts=10, backoff=0.005, backoff_max=0.02,
                                            min_rate=1e6))  # 451 means "slow down"; not here
        result = asyncio.run(sender.run(read_subscribers(root / "list.csv")))
        injected = server.chaos.injected
        counts = journal.counts("001")
    assert result.outcome == "complete" and result.stats.failed == 0, result.reason
    delivered = Counter(r for m in list_messages(tmp_path / "inbox") for r in m.recipients)
    assert delivered == Counter(readers)  # everyone, exactly once
    assert counts["sent"] == 60 and counts["failed"] == 0
    assert 8 <= injected <= 45  # ~30 % of 60 first tries, plus some retries failing again
