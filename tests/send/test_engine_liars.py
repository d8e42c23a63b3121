"""Servers that say one thing and do another, over real sockets on loopback: one that offers
CHUNKING but refuses BDAT (the run falls back to DATA for it, with one line), and one that sends a
stray reply inside a pipelined group (the connection's in-flight recipients become uncertain or go
back to the queue, never a permanent failure charged to a reader)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP
from test_engine import ISSUE, people, send

from conftest import FaultyHandler, SmtpServer
from gigo_mail.journal.deliveries import Journal
from gigo_mail.send.options import SendResult
from servers import LoopServer


class ChunkingLiar(FaultyHandler):
    """aiosmtpd (which has no BDAT) advertising CHUNKING anyway."""

    async def handle_EHLO(self, server: SMTP, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        responses = await super().handle_EHLO(server, session, envelope, hostname, responses)
        responses.insert(-1, "250-CHUNKING")
        return responses


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal(tmp_path / ".gigo" / "journal.sqlite3") as opened:
        yield opened


@pytest.mark.slow
def test_chunking_offered_but_bdat_refused_falls_back_to_data(journal: Journal) -> None:
    server = SmtpServer(ChunkingLiar(pipelining=True)).start()
    try:
        result = send(server, people(30), journal, concurrency=3)
    finally:
        server.stop()
    assert result.outcome == "complete" and result.ok, result.reason
    assert result.stats.sent == 30 and result.stats.failed == 0 and result.stats.uncertain == 0
    assert set(server.handler.delivered_to().values()) == {1}
    notes = [note for note in result.stats.notes if "CHUNKING" in note]
    assert len(notes) == 1 and "DATA" in notes[0] and "\n" not in notes[0], result.stats.notes


@dataclass
class _Transaction:
    recipients: list[str] = field(default_factory=list)
    open: bool = False


class StrayReplyServer(LoopServer):
    """A pipelining SMTP server (raw asyncio) that answers every command in order, but once, at
    ``at`` of its ``after``-th message (after the reply to "mail", "rcpt" or the final "dot", or
    just before that "final" reply), adds a stray ``250 2.1.5 ok`` nobody asked for."""

    def __init__(self, at: str, after: int, refuse: bool = False) -> None:
        super().__init__()
        self.at, self.after, self.refuse = at, after, refuse
        self.count: Counter[str] = Counter()
        self.delivered: Counter[str] = Counter()
        self.strayed = False

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def _stray(self, stage: str, writer: asyncio.StreamWriter) -> None:
        self.count[stage] += 1
        if stage == self.at and self.count[stage] == self.after and not self.strayed:
            self.strayed = True
            writer.write(b"250 2.1.5 ok\r\n")

    def _end_message(self, recipients: list[str], writer: asyncio.StreamWriter) -> None:
        """The reply to a whole message, with a stray just before it ("final") or after it ("dot");
        with ``refuse``, the message behind a "final" stray is refused, so taking the stray for
        its reply would count a refused message as delivered."""
        strayed = self.strayed
        self._stray("final", writer)
        if self.strayed and not strayed and self.refuse:
            writer.write(b"554 5.7.1 rejected as spam\r\n")
        else:
            self.delivered.update(recipients)
            writer.write(b"250 2.0.0 queued\r\n")
        self._stray("dot", writer)

    EXTENSIONS = b"250-PIPELINING\r\n250 8BITMIME\r\n"

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 stray.test ESMTP\r\n")
        mail = _Transaction()
        try:
            while line := await reader.readline():
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    writer.write(b"250-stray.test\r\n" + self.EXTENSIONS)
                elif verb == b"RSET":
                    mail.recipients, mail.open = [], False
                    writer.write(b"250 2.0.0 ok\r\n")
                elif verb == b"MAIL":
                    mail.recipients, mail.open = [], True
                    writer.write(b"250 2.1.0 ok\r\n")
                    self._stray("mail", writer)
                elif verb == b"RCPT":
                    mail.recipients.append(line.decode().split("<", 1)[1].split(">", 1)[0])
                    writer.write(b"250 2.1.5 ok\r\n")
                    self._stray("rcpt", writer)
                elif verb == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    break
                elif not await self._message(verb, line, mail, reader, writer):
                    writer.write(b"250 ok\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _message(self, verb: bytes, line: bytes, mail: _Transaction, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> bool:
        """DATA and the message it brings; False for any other command."""
        if verb != b"DATA":
            return False
        writer.write(b"354 go on\r\n")
        while (body := await reader.readline()) not in (b".\r\n", b""):
            pass
        if not body:  # the client left mid-message: nothing is delivered
            raise ConnectionError
        self._end_message(mail.recipients, writer)
        return True


@pytest.mark.slow
@pytest.mark.parametrize(("at", "after"), [("final", 5), ("final", 12), ("rcpt", 1), ("mail", 1), ("mail", 5),
                                           ("rcpt", 5), ("dot", 5), ("dot", 19)])
def test_a_stray_reply_charges_no_reader(journal: Journal, at: str, after: int) -> None:
    server = StrayReplyServer(at, after).start()
    rows = people(20)
    try:
        result = send(server.url, rows, journal, concurrency=1)
    finally:
        server.stop()
    assert server.strayed
    assert result.stats.failed == 0 and not result.stats.failures, result.stats.failures
    assert result.stats.sent + result.stats.uncertain == 20
    assert result.stats.uncertain <= 2  # the connection's in-flight recipients at most
    assert not result.ok or result.stats.uncertain == 0  # a run with unknowns never says all is well
    assert set(server.delivered.values()) == {1} and len(server.delivered) == 20  # nothing twice


@pytest.mark.slow
def test_a_stray_reply_before_a_refusal_is_not_taken_for_delivery(journal: Journal) -> None:
    """The stray 250 comes where the final reply should, and the real one is a 554: the
    message must not be counted delivered (the server refused it); uncertain is the truth."""
    server = StrayReplyServer("final", 5, refuse=True).start()
    try:
        result = send(server.url, people(20), journal, concurrency=1)
    finally:
        server.stop()
    assert sum(server.delivered.values()) == 19
    assert result.stats.sent <= 19 and result.stats.failed == 0
    assert result.stats.sent + result.stats.uncertain == 20 and not result.ok


class StrayChunkingServer(StrayReplyServer):
    """The stray-reply server with CHUNKING and BDAT (RFC 3030): transactions stream, up to
    ``in_flight`` of them on the wire at once, so a stray reply shifts every one behind it."""

    stall = False
    EXTENSIONS = b"250-PIPELINING\r\n250-CHUNKING\r\n250 8BITMIME\r\n"

    async def _message(self, verb: bytes, line: bytes, mail: _Transaction, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> bool:
        """BDAT (every chunk the last, as the engine sends them); False for any other command."""
        if verb != b"BDAT":
            return False
        size = int(line.split()[1])
        if size:
            await reader.readexactly(size)
        if not mail.open:
            writer.write(b"503 5.5.1 MAIL first\r\n")
            return True
        mail.open = False
        if self.stall:  # never answers the message
            await asyncio.sleep(3600)
        self._end_message(mail.recipients, writer)
        return True


@pytest.mark.slow
@pytest.mark.parametrize(("at", "after", "refuse"), [
    ("final", 5, True), ("final", 5, False), ("mail", 3, False), ("rcpt", 7, False), ("dot", 9, False)])
def test_a_stray_reply_between_streamed_transactions_is_never_taken_for_theirs(
        journal: Journal, at: str, after: int, refuse: bool) -> None:
    """With CHUNKING, up to ``in_flight`` BDAT transactions share the connection's replies in
    order: a stray one shifts them all. A message the server refused must never count as
    delivered, nobody is charged a failure, and a run with unknowns never says all is well."""
    server = StrayChunkingServer(at, after, refuse=refuse).start()
    try:
        result = send(server.url, people(20), journal, concurrency=1)
    finally:
        server.stop()
    assert server.strayed
    delivered = set(server.delivered)
    sent = {r.email for r in (journal.record(ISSUE, f"user{i}@example.com") for i in range(20))
            if r is not None and r.status == "sent"}
    assert sent <= delivered, sorted(sent - delivered)  # nothing the server refused counts as sent
    assert result.stats.failed == 0 and not result.stats.failures, result.stats.failures
    assert not result.ok or result.stats.uncertain == 0
    assert set(server.delivered.values()) == {1}  # nothing twice


class SilentAfterBdat(StrayChunkingServer):
    """A CHUNKING server that takes every BDAT transaction and never answers the message."""

    stall = True


@pytest.mark.slow
def test_a_stop_while_streamed_transactions_wait_for_their_reply_ends_within_the_drain_timeout(
        journal: Journal) -> None:
    """Ctrl-C with BDAT transactions on the wire: the run waits drain_timeout for their replies, not
    the ten minutes a final reply may take; those recipients are left uncertain, never sent."""
    server = SilentAfterBdat("never", 0).start()

    async def go() -> tuple[SendResult, float]:
        from test_engine import make_sender

        sender = make_sender(server.url, journal, data_timeout=60, concurrency=2, drain_timeout=0.5)
        asyncio.get_running_loop().call_later(1.0, sender.stop)
        started = time.monotonic()
        result = await sender.run(people(10))
        return result, time.monotonic() - started

    try:
        result, took = asyncio.run(go())
    finally:
        server.stop()
    assert took < 10, took
    assert result.stats.sent == 0 and not result.ok
    assert journal.counts(ISSUE)["sent"] == 0 and journal.counts(ISSUE)["sending"] >= 1
