"""The sending engine against a real aiosmtpd server, with handmade messages."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pipeline_probe import PipelineProbe

from conftest import SmtpServer, StalledServer
from gigo_mail.errors import SMTPFatalError
from gigo_mail.journal.deliveries import Journal
from gigo_mail.lists.reader import SkippedRow, Subscriber, sample_subscriber
from gigo_mail.send.engine import Sender, SendOptions, SendResult, SendStats
from gigo_mail.send.selection import Selector, plan_send
from gigo_mail.transport import SmtpEndpoint, SmtpTransport, parse_smtp_url
from servers import wait_for_log
from support import fill_disk, tiny_disk

SENDER = "news@gigo.example"
ISSUE = "011"


@dataclass(frozen=True)
class Msg:
    message_id: str
    data: bytes


_ids = itertools.count(1)


def build(subscriber: Subscriber, message_id: str | None = None) -> Msg:
    message_id = message_id or f"<{next(_ids)}.{subscriber.key}@gigo.example>"
    body = f"Hello {subscriber.name or 'there'}.\r\n.a line starting with a dot\r\n"
    data = (f"From: <{SENDER}>\r\nTo: <{subscriber.smtp_address}>\r\nSubject: test\r\n"
            f"Message-ID: {message_id}\r\n\r\n{body}").encode()
    return Msg(message_id, data)


def people(count: int, domain: str = "example.com") -> list[Subscriber]:
    return [sample_subscriber(f"user{i}@{domain}", f"User {i}") for i in range(count)]


def make_sender(server: SmtpServer | StalledServer | str, journal: Journal | None = None,
                password: str | None = None, on_progress: Callable[[SendStats], None] | None = None,
                data_timeout: float = 5, **options: object) -> Sender:
    url = server if isinstance(server, str) else server.url
    endpoint = SmtpEndpoint(parse_smtp_url(url), password=password, timeout=5, data_timeout=data_timeout)
    defaults: dict[str, object] = {"concurrency": 4, "backoff": 0.01, "backoff_max": 0.05, "min_rate": 500.0}
    defaults.update(options)
    return Sender(issue_key=ISSUE, envelope_from=SENDER, build=build,
                  transport_factory=lambda: SmtpTransport(endpoint),
                  options=SendOptions(**defaults), journal=journal, on_progress=on_progress)  # type: ignore[arg-type]


def send(server: SmtpServer | StalledServer | str, rows: list[Subscriber], journal: Journal | None = None,
         **options: object) -> SendResult:
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
    for m in any_smtp_server.messages:
        message_id = m.data.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0].decode()
        assert m.data == build(by_address[m.rcpt_tos[0]], message_id).data
    assert journal.counts(ISSUE)["sent"] == 200
    record = journal.record(ISSUE, "user7@example.com")
    assert record is not None and record.message_id.endswith(".user7@example.com@gigo.example>")
    assert any_smtp_server.handler.sessions <= 4


def test_sending_is_committed_before_the_final_dot_and_sent_only_after_the_250(
        any_smtp_server: SmtpServer, journal: Journal) -> None:
    """Marks are committed in groups, one per event-loop turn; what another process reads
    from the file when the server has the message is 'sending', never nothing, never 'sent'."""
    seen: dict[str, str | None] = {}
    reader = sqlite3.connect(journal.path, check_same_thread=False)

    def on_data(envelope: Any) -> None:
        for address in envelope.rcpt_tos:
            row = reader.execute("SELECT status FROM deliveries WHERE key = ?", (address,)).fetchone()
            seen[address] = row[0] if row else None

    any_smtp_server.handler.on_data = on_data
    rows = people(60)
    result = send(any_smtp_server, rows, journal)
    reader.close()
    assert result.ok and len(seen) == 60
    assert set(seen.values()) == {"sending"}
    assert journal.counts(ISSUE)["sent"] == 60


def test_one_round_trip_per_message_the_next_envelope_rides_with_the_final_dot(journal: Journal) -> None:
    """RFC 2920: each final dot goes out with the next transaction's MAIL, RCPT and DATA;
    the server sees the next MAIL FROM before it has answered the message."""
    probe = PipelineProbe(expect=6).start()
    try:
        result = send(probe, people(6), journal, concurrency=1)  # type: ignore[arg-type]
    finally:
        probe.stop()
    assert result.ok and result.stats.sent == 6
    assert probe.ahead == [True] * 5
    assert probe.delivered == [f"user{i}@example.com" for i in range(6)]
    assert journal.counts(ISSUE)["sent"] == 6


def test_one_commit_per_message_the_sent_mark_rides_with_the_next_sending(journal: Journal) -> None:
    """With pipelining, a 250's "sent" mark is not committed on its own: the next message's
    "sending" commit, which its final dot waits for, carries it. 12 messages on one connection
    take 12 commits for the deliveries (plus the run's start, its last "sent" and its end), not 24."""
    commits: list[str] = []
    journal._db.set_trace_callback(lambda sql: commits.append(sql) if sql.strip() == "COMMIT" else None)
    probe = PipelineProbe(expect=12).start()
    try:
        result = send(probe, people(12), journal, concurrency=1)  # type: ignore[arg-type]
    finally:
        probe.stop()
        journal._db.set_trace_callback(None)
    assert result.ok and result.stats.sent == 12 and journal.counts(ISSUE)["sent"] == 12
    assert len(commits) <= 12 + 3, len(commits)


def test_a_bug_while_counting_a_delivery_stops_the_run_and_surfaces(
        smtp_server: SmtpServer, journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    """Counting a 250 runs inside the journal's commit, perhaps outside any worker: a bug there
    must not leave the run waiting for a recipient that will never settle."""
    from gigo_mail.send.ratelimit import RateLimiter

    def broken(self: RateLimiter) -> None:
        raise RuntimeError("counting broke")

    monkeypatch.setattr(RateLimiter, "on_success", broken)
    for count in (1, 5):  # one: counted at the end of a loop turn; five: also inside the next commit
        with pytest.raises(RuntimeError, match="counting broke"):
            send(smtp_server, people(count), journal, drain_timeout=5)
        assert journal.counts(ISSUE)["sent"] >= 1  # what was delivered is recorded all the same


def test_a_refusal_of_the_envelope_sent_ahead_is_that_recipients_own(journal: Journal) -> None:
    """The next transaction's RCPT is answered with the previous message's 250: the refusal
    is charged to the next recipient, and the message before it is sent."""
    probe = PipelineProbe(expect=3, refuse=frozenset({"user2@example.com"})).start()
    try:
        result = send(probe, people(4), journal, concurrency=1)  # type: ignore[arg-type]
    finally:
        probe.stop()
    assert (result.stats.sent, result.stats.failed) == (3, 1)
    assert probe.delivered == ["user0@example.com", "user1@example.com", "user3@example.com"]
    assert probe.ahead[0] is True  # user1's envelope went with user0's dot, user2's with user1's
    states = {k: journal.record(ISSUE, f"{k}@example.com") for k in ("user1", "user2", "user3")}
    assert states["user1"].status == "sent"  # type: ignore[union-attr]
    failed = states["user2"]
    assert failed is not None and (failed.status, failed.code, failed.permanent) == ("failed", 550, True)
    assert states["user3"].status == "sent"  # type: ignore[union-attr]


def test_chunking_streams_bdat_transactions_to_postfix_and_ties_each_reply_to_its_own(
        journal: Journal, start_postfix: Callable[..., Any]) -> None:
    """Postfix smtpd offers CHUNKING: whole BDAT transactions go out back to back, up to
    in_flight per connection; the refused recipient in the middle of a stream is the only
    failure, and every other message reaches Postfix whole."""
    postfix = start_postfix("check_recipient_access inline:{ { user7@example.com = REJECT no such user } }, "
                            "permit_mynetworks, reject")
    opened: list[SmtpTransport] = []
    endpoint = SmtpEndpoint(parse_smtp_url(postfix.url), timeout=10, in_flight=4)

    def factory() -> SmtpTransport:
        opened.append(SmtpTransport(endpoint))
        return opened[-1]

    try:
        sender = Sender(issue_key=ISSUE, envelope_from=SENDER, build=build, transport_factory=factory,
                        options=SendOptions(concurrency=2), journal=journal)
        rows = people(40)
        result = asyncio.run(sender.run(rows))
    finally:
        # each session's end is logged as Postfix closes it, its commands counted ("ehlo=1 ... bdat=N");
        # not the bare "disconnect from" of the fixture's port probe, which has none
        wait_for_log(postfix, " ehlo=", len(opened), timeout=10)
        log = postfix.log
    assert (result.stats.sent, result.stats.failed) == (39, 1)
    failure = journal.record(ISSUE, "user7@example.com")
    assert failure is not None and (failure.status, failure.code, failure.permanent) == ("failed", 554, True)
    assert "Recipient address rejected" in failure.text
    assert journal.counts(ISSUE)["sent"] == 39
    assert all(t.chunking and t.pipelining for t in opened if t.messages)
    bdat = [int(part.split("=")[1].split("/")[0]) for part in log.split() if part.startswith("bdat=")]
    assert sum(bdat) == 39  # every accepted message came as BDAT
    for row in rows:  # Postfix parsed each accepted message (the BDAT length framed it right)
        record = journal.record(ISSUE, row.key)
        assert record is not None
        seen = record.message_id != "" and f"message-id={record.message_id}" in log
        assert seen == (row.key != "user7@example.com"), row.key


def test_451_is_retried_then_delivered_and_550_is_recorded(any_smtp_server: SmtpServer,
                                                           journal: Journal) -> None:
    handler = any_smtp_server.handler
    handler.rcpt_fail_first["user3@example.com"] = [2, "451 4.7.1 greylisted, try again"]
    handler.rcpt_reply["user5@example.com"] = "550 5.1.1 no such mailbox"
    result = send(any_smtp_server, people(10), journal)
    assert result.outcome == "unresolved" and not result.ok
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
    server.handler.drop_after = 7  # every session dies, unanswered, at the RCPT of its 8th message
    server.handler.drop_at = "rcpt"
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
    assert second.outcome == "unresolved"  # the three bounces are not silently forgotten
    assert second.stats.not_selected["failed"] == 3  # permanent failures are not retried by default
    assert second.failed == 4  # three from before, user5 in this run
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


# --- after the final dot: uncertain, never retried -------------------------------------------

def test_no_reply_after_the_final_dot_is_uncertain_never_retried_and_the_run_stops(
        start_stalled: Callable[..., StalledServer], journal: Journal) -> None:
    stalled = start_stalled()  # reads every message to its final dot, then never answers
    rows = people(200)
    result = send(stalled, rows, journal, concurrency=3, attempts=5, data_timeout=0.3)
    assert result.outcome == "failed" and "every connection (3) timed out" in result.reason
    tried = result.stats.uncertain  # each connection once, give or take one that reopened first
    assert 3 <= tried < 6 and result.stats.failed == 0 and result.stats.retries == 0
    assert sorted(stalled.received) == sorted(set(stalled.received)) and len(stalled.received) == tried
    assert journal.counts(ISSUE)["sending"] == tried and sum(journal.counts(ISSUE).values()) == tried
    record = journal.uncertain(ISSUE)[0]
    assert "no reply after the final dot" in record.text and record.message_id

    again = send(stalled, rows, journal, concurrency=3, data_timeout=0.3)  # a plain re-run
    assert again.stats.not_selected["uncertain"] == tried and again.uncertain == tried + again.stats.uncertain
    total = tried + again.stats.uncertain
    assert len(stalled.received) == total and len(set(stalled.received)) == total  # nobody got a second copy


def test_a_slow_final_reply_is_waited_for(start_stalled: Callable[..., StalledServer]) -> None:
    slow = start_stalled(reply_delay=0.3)
    result = send(slow, people(4), concurrency=2, data_timeout=5)
    assert result.ok and result.stats.sent == 4 and sorted(slow.received) == sorted(
        s.smtp_address for s in people(4))


def test_uncertain_then_resend_uses_the_first_message_id(start_smtp: Callable[..., SmtpServer],
                                                         journal: Journal) -> None:
    server = start_smtp(pipelining=True)
    server.handler.drop_after = 3  # each session: 3 answered, the 4th kept but its 250 lost
    server.handler.drop_at = "kept"
    rows = people(40)
    first = send(server, rows, journal, concurrency=2)
    assert first.outcome == "unresolved" and first.stats.uncertain > 0
    assert first.stats.sent + first.stats.uncertain == 40 and first.stats.failed == 0
    uncertain = {r.key: r.message_id for r in journal.uncertain(ISSUE)}
    assert len(uncertain) == first.stats.uncertain

    server.handler.drop_after = None
    second = send(server, rows, journal, concurrency=2, resend_uncertain=True)
    assert second.ok and second.stats.sent == len(uncertain)
    delivered = server.handler.delivered_to()
    assert set(delivered) == {s.smtp_address for s in rows}  # every listed recipient has it
    duplicates = sum(delivered.values()) - len(rows)
    assert duplicates <= len(uncertain)
    for key, message_id in uncertain.items():  # the second copy is the same message
        ids = {m.data.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0].decode()
               for m in server.messages if m.rcpt_tos == [key]}
        assert ids == {message_id}
    assert journal.counts(ISSUE)["sent"] == 40


# --- refusals about the session are nobody's bounce ------------------------------------------

def test_auth_required_stops_the_run_and_marks_nobody_failed(start_smtp: Callable[..., SmtpServer],
                                                             journal: Journal) -> None:
    server = start_smtp(password="s3cret")  # 530 5.7.0 Authentication required to MAIL FROM
    rows = people(50)
    result = send(f"smtp://127.0.0.1:{server.port}", rows, journal)  # no user in the URL
    assert result.outcome == "failed" and "wants a login" in result.reason
    assert result.stats.failed == 0 and journal.counts(ISSUE)["failed"] == 0
    fixed = send(server, rows, journal, password="s3cret")
    assert fixed.ok and fixed.stats.sent == 50
    assert set(server.handler.delivered_to().values()) == {1}


def test_the_same_refusal_for_the_first_recipients_trips_the_breaker(smtp_server: SmtpServer,
                                                                    journal: Journal) -> None:
    rows = people(30)
    for subscriber in rows:
        smtp_server.handler.rcpt_reply[subscriber.smtp_address] = "554 Transaction failed"
    result = send(smtp_server, rows, journal, concurrency=2, refusal_breaker=5)
    assert result.outcome == "failed" and "the first 5 recipients were all refused" in result.reason
    assert "554 Transaction failed" in result.reason
    assert result.stats.failed == 0 and journal.counts(ISSUE)["failed"] == 0
    assert sum(smtp_server.handler.rcpt_attempts.values()) < 30  # it stopped
    smtp_server.handler.rcpt_reply.clear()
    again = send(smtp_server, rows, journal)
    assert again.ok and again.stats.sent == 30


def test_refusals_held_before_the_first_success_are_recorded_after_it(smtp_server: SmtpServer,
                                                                      journal: Journal) -> None:
    rows = people(10)
    for i in (0, 1):
        smtp_server.handler.rcpt_reply[f"user{i}@example.com"] = "554 Transaction failed"
    result = send(smtp_server, rows, journal, concurrency=1, refusal_breaker=5)
    assert result.outcome == "unresolved"
    assert (result.stats.sent, result.stats.failed) == (8, 2)
    assert journal.counts(ISSUE)["failed"] == 2




# --- a 4xx about the session is nobody's soft bounce ---------------------------------------------

def test_a_deferred_session_is_retried_on_new_connections_and_charges_nobody(
        any_smtp_server: SmtpServer, journal: Journal) -> None:
    handler = any_smtp_server.handler
    handler.mail_fail_first = [3, "451 4.3.0 Temporary server error, try again later"]  # MAIL FROM
    rows = people(10)
    result = send(any_smtp_server, rows, journal, attempts=1, concurrency=4)  # one try per recipient
    assert result.ok and (result.stats.sent, result.stats.failed) == (10, 0)
    assert handler.mail_fail_first == [0, handler.mail_fail_first[1]]  # all three happened
    assert handler.sessions >= 4 + 3 - 1  # each deferral: a new connection
    assert set(handler.delivered_to().values()) == {1} and len(handler.delivered_to()) == 10
    assert journal.counts(ISSUE)["sent"] == 10


def test_a_421_greeting_mid_run_is_retried_with_backoff(smtp_server: SmtpServer, journal: Journal) -> None:
    handler = smtp_server.handler
    handler.greeting_reply.update({2: "421 4.3.2 Too busy, try later", 3: "421 4.3.2 Too busy, try later"})
    rows = people(6)
    result = send(smtp_server, rows, journal, concurrency=1, max_per_connection=2, attempts=3)
    assert result.ok and result.stats.sent == 6, result.reason
    assert handler.sessions >= 5 and set(handler.delivered_to().values()) == {1}


@pytest.mark.parametrize("fault", ["tls required", "421 greeting"])
def test_a_persistent_session_4xx_stops_the_run_in_one_line_and_fails_nobody(
        fault: str, smtp_server: SmtpServer, journal: Journal) -> None:
    handler = smtp_server.handler
    if fault == "tls required":
        handler.mail_fail_first = [10**6, "454 4.7.0 TLS required: use STARTTLS"]
        shown = "454 4.7.0 TLS required"
    else:  # the first connection is fine; every reconnect is turned away
        handler.greeting_reply.update(dict.fromkeys(range(2, 100), "421 4.3.2 Service not available"))
        shown = "421 4.3.2 Service not available"
    rows = people(40)
    result = send(smtp_server, rows, journal, concurrency=2, attempts=3, max_per_connection=1, max_errors=5)
    assert result.outcome == "failed", result.reason
    assert shown in result.reason and "times in a row" in result.reason and "\n" not in result.reason
    assert result.stats.failed == 0 and result.stats.failures == []
    assert journal.counts(ISSUE)["failed"] == 0  # no soft bounce recorded for a session fault
    handler.mail_fail_first, handler.greeting_reply = None, {}
    again = send(smtp_server, rows, journal)
    assert again.ok and set(handler.delivered_to().values()) == {1} and len(handler.delivered_to()) == 40


def test_per_recipient_4xx_at_rcpt_is_still_charged(smtp_server: SmtpServer, journal: Journal) -> None:
    for i, reply in enumerate(("450 4.2.1 mailbox busy", "451 4.7.1 greylisted", "452 4.2.2 over quota")):
        smtp_server.handler.rcpt_reply[f"user{i}@example.com"] = reply
    result = send(smtp_server, people(5), journal, attempts=2)
    assert (result.stats.sent, result.stats.failed) == (2, 3) and result.outcome == "unresolved"
    assert {f.email for f in result.stats.failures} == {f"user{i}@example.com" for i in range(3)}
    assert all(smtp_server.handler.rcpt_attempts[f"user{i}@example.com"] == 2 for i in range(3))


# --- a recipient re-sent because it was uncertain stays uncertain until a copy is accepted --------

def _leave_uncertain(server: SmtpServer, journal: Journal, rows: list[Subscriber]) -> dict[str, str]:
    server.handler.drop_after, server.handler.drop_at = 3, "kept"  # each session: the 4th 250 lost
    first = send(server, rows, journal, concurrency=2)
    assert first.stats.uncertain > 0
    server.handler.drop_after = None
    return {r.key: r.message_id for r in journal.uncertain(ISSUE)}


@pytest.mark.parametrize("fault", ["530 at MAIL FROM", "dropped before the dot", "550 at RCPT",
                                   "454 at MAIL FROM"])
def test_a_failed_resend_keeps_the_recipient_uncertain_with_its_first_message_id(
        fault: str, start_smtp: Callable[..., SmtpServer], journal: Journal) -> None:
    server = start_smtp(pipelining=True)
    rows = people(24)
    uncertain = _leave_uncertain(server, journal, rows)
    handler = server.handler
    if fault == "530 at MAIL FROM":
        handler.mail_fail_first = [10**6, "530 5.7.0 Authentication required"]
    elif fault == "454 at MAIL FROM":
        handler.mail_fail_first = [10**6, "454 4.7.0 TLS required"]
    elif fault == "dropped before the dot":
        handler.drop_after, handler.drop_at = 0, "rcpt"
    else:
        handler.rcpt_reply.update(dict.fromkeys(uncertain, "550 5.1.1 no such user"))
    received = len(handler.messages)
    resend = send(server, rows, journal, concurrency=2, attempts=2, resend_uncertain=True)
    assert not resend.ok and resend.stats.sent == 0 and resend.stats.failed == 0
    assert len(handler.messages) == received  # no copy went out
    assert {r.key: r.message_id for r in journal.uncertain(ISSUE)} == uncertain  # same ones, same ids
    assert journal.counts(ISSUE)["pending"] == journal.counts(ISSUE)["failed"] == 0

    handler.mail_fail_first, handler.drop_after = None, None
    handler.rcpt_reply.clear()
    fixed = send(server, rows, journal, concurrency=2, resend_uncertain=True)
    assert fixed.ok and fixed.stats.sent == len(uncertain)
    for key, message_id in uncertain.items():
        ids = {m.data.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0].decode()
               for m in handler.messages if m.rcpt_tos == [key]}
        assert ids == {message_id}


# --- a full disk: the first error is the one shown, and nobody who got it is forgotten ------------

@pytest.fixture(params=["tmpfs", "page limit"])
def full_journal(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Journal]:
    """A journal that runs out of room after a few marks: on a tiny tmpfs that fills up for real
    (ENOSPC; needs root and mount), or capped with SQLite's max_page_count (SQLITE_FULL)."""
    folder = tmp_path / "disk"
    if request.param == "page limit":
        with Journal(folder / "journal.sqlite3") as opened:
            pages = opened._db.execute("PRAGMA page_count").fetchone()[0]
            opened._db.execute(f"PRAGMA max_page_count = {pages + 2}")
            yield opened
        return
    with tiny_disk(folder), Journal(folder / "journal.sqlite3") as opened:
        fill_disk(folder, leave=40_000)  # the run's first few marks fit, then the disk is full
        yield opened


def test_a_full_disk_stops_the_run_with_the_first_error_and_forgets_nobody(
        smtp_server: SmtpServer, full_journal: Journal) -> None:
    rows = people(300)
    result = send(smtp_server, rows, full_journal, concurrency=3)  # returns: no error replaces the first
    assert result.outcome == "failed"
    assert "database or disk is full" in result.reason and "free some disk space" in result.reason
    assert "cannot record a send" in result.reason or "cannot record a delivery" in result.reason
    delivered = smtp_server.handler.delivered_to()
    assert 0 < len(delivered) < 300 and set(delivered.values()) == {1}
    for address in delivered:  # whoever the server has is sent or, at worst, uncertain: never forgotten
        record = full_journal.record(ISSUE, address)
        assert record is not None and record.status in ("sent", "sending"), address
    assert result.stats.sent == full_journal.counts(ISSUE)["sent"]
