"""The sending engine against a real aiosmtpd server, with handmade messages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import SmtpServer
from gigo_mail.errors import SMTPFatalError
from gigo_mail.journal import Journal
from gigo_mail.selection import Selector, plan_send
from gigo_mail.sender import Sender, SendOptions, SendResult, SendStats
from gigo_mail.subscribers import SkippedRow, Subscriber, sample_subscriber
from gigo_mail.transport import SmtpEndpoint, SmtpTransport, parse_smtp_url

SENDER = "news@gigo.example"
ISSUE = "011"


@dataclass(frozen=True)
class Msg:
    message_id: str
    data: bytes


def build(subscriber: Subscriber) -> Msg:
    body = f"Hello {subscriber.name or 'there'}.\r\n.a line starting with a dot\r\n"
    data = (f"From: <{SENDER}>\r\nTo: <{subscriber.smtp_address}>\r\nSubject: test\r\n"
            f"Message-ID: <{subscriber.key}@gigo.example>\r\n\r\n{body}").encode()
    return Msg(f"<{subscriber.key}@gigo.example>", data)


def people(count: int, domain: str = "example.com") -> list[Subscriber]:
    return [sample_subscriber(f"user{i}@{domain}", f"User {i}") for i in range(count)]


def make_sender(server: SmtpServer, journal: Journal | None = None, password: str | None = None,
                on_progress: Callable[[SendStats], None] | None = None, **options: object) -> Sender:
    endpoint = SmtpEndpoint(parse_smtp_url(server.url), password=password, timeout=5)
    defaults: dict[str, object] = {"concurrency": 4, "backoff": 0.01, "backoff_max": 0.05, "min_rate": 500.0}
    defaults.update(options)
    return Sender(issue_key=ISSUE, envelope_from=SENDER, build=build,
                  transport_factory=lambda: SmtpTransport(endpoint),
                  options=SendOptions(**defaults), journal=journal, on_progress=on_progress)  # type: ignore[arg-type]


def send(server: SmtpServer, rows: list[Subscriber], journal: Journal | None = None, **options: object
         ) -> SendResult:
    return asyncio.run(make_sender(server, journal, **options).run(rows))


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    with Journal(tmp_path / ".gigo" / "journal.sqlite3") as opened:
        yield opened  # type: ignore[misc]


def test_every_message_arrives_once_and_is_journaled(any_smtp_server: SmtpServer, journal: Journal) -> None:
    rows = people(200)
    result = send(any_smtp_server, rows, journal)
    assert result.outcome == "complete" and result.ok
    assert result.stats.sent == 200
    delivered = any_smtp_server.handler.delivered_to()
    assert set(delivered) == {s.smtp_address for s in rows}
    assert set(delivered.values()) == {1}
    by_address = {s.smtp_address: s for s in rows}
    assert all(m.data == build(by_address[m.rcpt_tos[0]]).data for m in any_smtp_server.messages)
    assert journal.counts(ISSUE)["sent"] == 200
    assert journal.record(ISSUE, "user7@example.com").message_id == "<user7@example.com@gigo.example>"
    assert any_smtp_server.handler.sessions <= 4


def test_451_is_retried_then_delivered_and_550_is_recorded(any_smtp_server: SmtpServer,
                                                           journal: Journal) -> None:
    handler = any_smtp_server.handler
    handler.rcpt_fail_first["user3@example.com"] = [2, "451 4.7.1 greylisted, try again"]
    handler.rcpt_reply["user5@example.com"] = "550 5.1.1 no such mailbox"
    result = send(any_smtp_server, people(10), journal)
    assert result.outcome == "complete" and not result.ok
    assert (result.stats.sent, result.stats.failed) == (9, 1)
    assert handler.rcpt_attempts["user3@example.com"] == 3
    assert handler.delivered_to()["user3@example.com"] == 1
    assert "user5@example.com" not in handler.delivered_to()
    record = journal.record(ISSUE, "user5@example.com")
    assert record is not None and (record.status, record.code, record.permanent) == ("failed", 550, True)
    assert record.text == "5.1.1 no such mailbox"
    assert journal.record(ISSUE, "user3@example.com").status == "sent"  # type: ignore[union-attr]


def test_transient_failure_gives_up_after_attempts(smtp_server: SmtpServer, journal: Journal) -> None:
    smtp_server.handler.rcpt_reply["user1@example.com"] = "450 4.2.0 mailbox busy"
    result = send(smtp_server, people(3), journal, attempts=3)
    assert result.stats.failed == 1
    assert smtp_server.handler.rcpt_attempts["user1@example.com"] == 3
    record = journal.record(ISSUE, "user1@example.com")
    assert record is not None and record.status == "failed" and not record.permanent


def test_dropped_connections_lose_nothing(start_smtp: Callable[..., SmtpServer], journal: Journal) -> None:
    server = start_smtp(pipelining=True)
    server.handler.drop_after = 7  # every session dies, unanswered, on its 8th message
    rows = people(100)
    result = send(server, rows, journal, attempts=10)
    assert result.ok, result.stats.failures[:3]
    delivered = server.handler.delivered_to()
    assert set(delivered) == {s.smtp_address for s in rows} and set(delivered.values()) == {1}
    assert server.handler.sessions >= 100 // 7


def test_max_per_connection_is_honoured(any_smtp_server: SmtpServer) -> None:
    result = send(any_smtp_server, people(50), concurrency=2, max_per_connection=10)
    assert result.ok
    per_session = {m.session for m in any_smtp_server.messages}
    counts = [sum(1 for m in any_smtp_server.messages if m.session == s) for s in per_session]
    assert max(counts) <= 10
    assert any_smtp_server.handler.sessions >= 5


def test_error_threshold_stops_and_rerun_resumes_without_duplicates(smtp_server: SmtpServer,
                                                                   journal: Journal) -> None:
    handler = smtp_server.handler
    rows = people(60)
    for i in (2, 3, 4, 5):
        handler.rcpt_reply[f"user{i}@example.com"] = "550 5.1.1 unknown user"
    first = send(smtp_server, rows, journal, concurrency=1, max_errors=3)
    assert first.outcome == "stopped" and "max_errors = 3" in first.reason
    assert first.stats.sent < 60 - 4
    assert journal.runs(ISSUE)[-1].outcome == "stopped"
    second = send(smtp_server, rows, journal, concurrency=3)
    assert second.outcome == "complete"
    assert second.stats.not_selected["failed"] == 3  # permanent failures are not retried by default
    delivered = handler.delivered_to()
    assert set(delivered.values()) == {1}
    assert len(delivered) == 60 - 4
    assert first.stats.sent + second.stats.sent == 56


def test_stop_mid_run_then_resume_sends_everyone_once(any_smtp_server: SmtpServer, journal: Journal) -> None:
    rows = people(150)
    built: list[str] = []

    async def interrupted() -> SendResult:
        sender = make_sender(any_smtp_server, journal)

        def build_then_stop(subscriber: Subscriber) -> Msg:
            built.append(subscriber.key)
            if len(built) == 50:
                sender.stop()  # what Ctrl-C does
            return build(subscriber)

        sender.build = build_then_stop
        return await sender.run(rows)

    first = asyncio.run(interrupted())
    assert first.outcome == "interrupted"
    assert 46 <= first.stats.sent <= 50  # the in-flight ones finished
    assert journal.runs(ISSUE)[-1].outcome == "interrupted"
    second = send(any_smtp_server, rows, journal)
    assert second.stats.not_selected["sent"] == first.stats.sent
    assert second.stats.sent == 150 - first.stats.sent
    delivered = any_smtp_server.handler.delivered_to()
    assert len(delivered) == 150 and set(delivered.values()) == {1}


def test_retry_failed_resends_only_failures(smtp_server: SmtpServer, journal: Journal) -> None:
    handler = smtp_server.handler
    handler.rcpt_reply["user1@example.com"] = "550 5.2.2 mailbox full"
    rows = people(5)
    send(smtp_server, rows, journal)
    del handler.rcpt_reply["user1@example.com"]
    again = send(smtp_server, rows, journal, retry_failed=True)
    assert again.stats.sent == 1 and again.stats.not_selected["not failed"] == 4
    assert handler.delivered_to()["user1@example.com"] == 1
    assert set(handler.delivered_to().values()) == {1}


def test_throttling_replies_slow_the_run_and_nothing_is_lost(smtp_server: SmtpServer) -> None:
    smtp_server.handler.data_fail_first = (6, "454 4.7.0 Throttling failure: maximum sending rate exceeded")
    sender = make_sender(smtp_server, attempts=10)
    result = asyncio.run(sender.run(people(30)))
    assert result.ok and result.stats.sent == 30
    assert result.stats.throttled == 6
    assert sender.limiter.rate is not None  # a limit appeared where there was none
    assert set(smtp_server.handler.delivered_to().values()) == {1}


def test_rate_limit_holds(smtp_server: SmtpServer) -> None:
    start = time.monotonic()
    result = send(smtp_server, people(20), rate=100.0)
    elapsed = time.monotonic() - start
    assert result.stats.sent == 20
    assert elapsed >= 0.15


def test_wrong_password_is_fatal_before_anything(start_smtp: Callable[..., SmtpServer],
                                                 journal: Journal) -> None:
    server = start_smtp(password="s3cret")
    with pytest.raises(SMTPFatalError, match="refused login"):
        send(server, people(5), journal, password="nope")
    assert journal.runs(ISSUE) == []
    assert server.messages == []
    assert send(server, people(5), journal, password="s3cret").stats.sent == 5


def test_utf8_local_part_needs_smtputf8(start_smtp: Callable[..., SmtpServer], journal: Journal) -> None:
    server = start_smtp(smtputf8=False)
    rows = [sample_subscriber("jörg@example.com", "Jörg"), sample_subscriber("ann@bücher.example", "Ann")]
    result = send(server, rows, journal)
    assert result.stats.sent == 1 and result.stats.failed == 1
    assert server.handler.delivered_to() == {"ann@xn--bcher-kva.example": 1}
    assert "SMTPUTF8" in result.stats.failures[0].text
    assert result.stats.failures[0].permanent


def test_plan_counts_skips_and_journal(smtp_server: SmtpServer, journal: Journal) -> None:
    rows = people(6)
    send(smtp_server, rows[:2], journal)
    listed: list[Subscriber | SkippedRow] = [*rows, SkippedRow(9, "bob@", "invalid", "bad")]
    plan = plan_send(listed, Selector(journal, ISSUE), limit=3)
    assert (plan.to_send, plan.not_selected["sent"]) == (3, 2)
    assert (plan.skipped["invalid"], plan.beyond_limit) == (1, 1)
