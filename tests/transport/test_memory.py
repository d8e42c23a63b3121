"""The in-memory transport drives the real engine and journal with no socket at all."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gigo_mail.journal.deliveries import Journal
from gigo_mail.lists.reader import Subscriber, sample_subscriber
from gigo_mail.send.engine import Sender, SendOptions
from gigo_mail.transport.memory import MemoryTransport, Outbox
from gigo_mail.transport.wire import Reply

SENDER = "news@gigo.example"


class Built:
    def __init__(self, subscriber: Subscriber, message_id: str | None = None) -> None:
        self.message_id = message_id or f"<{subscriber.key}@gigo.example>"
        self.data = f"Message-ID: {self.message_id}\r\nSubject: hi\r\n\r\nHello\r\n".encode()


def run(rows: list[Subscriber], outbox: Outbox, journal: Journal, reply=None) -> object:  # type: ignore[no-untyped-def]
    sender = Sender(issue_key="011", envelope_from=SENDER, build=Built,
                    transport_factory=lambda: MemoryTransport(outbox, reply=reply),
                    options=SendOptions(concurrency=3, backoff=0.001, backoff_max=0.002, min_rate=1000.0,
                                        attempts=2),
                    journal=journal)
    return asyncio.run(sender.run(rows))


def test_each_reader_is_kept_once_and_journaled(tmp_path: Path) -> None:
    rows = [sample_subscriber(f"reader{i}@example.org") for i in range(25)]
    outbox = Outbox()
    with Journal(tmp_path / "journal.sqlite3") as journal:
        result = run(rows, outbox, journal)
        assert result.outcome == "complete"  # type: ignore[attr-defined]
        assert sorted(sent.recipient for sent in outbox.sent) == sorted(row.smtp_address for row in rows)
        assert journal.counts("011")["sent"] == 25
        assert 1 <= outbox.connections <= 3


def test_a_scripted_refusal_is_that_readers_failure_and_the_run_is_not_complete(tmp_path: Path) -> None:
    rows = [sample_subscriber(f"reader{i}@example.org") for i in range(6)]
    outbox = Outbox()

    def reply(recipient: str) -> Reply:
        return Reply(550, "5.1.1 no such user") if recipient == "reader3@example.org" else Reply(250, "ok")

    with Journal(tmp_path / "journal.sqlite3") as journal:
        result = run(rows, outbox, journal, reply)
        assert result.outcome == "unresolved" and result.failed == 1  # type: ignore[attr-defined]
        assert "reader3@example.org" not in {sent.recipient for sent in outbox.sent}
        record = journal.record("011", "reader3@example.org")
        assert record is not None and record.status == "failed" and record.code == 550
        assert len(outbox.sent) == 5
