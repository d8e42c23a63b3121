"""SmtpTransport: one persistent SMTP connection, and its transaction state machine.

aiosmtplib does what it is good at: connect, EHLO, STARTTLS, AUTH and its error
classes. The per-message hot path (MAIL/RCPT/DATA) then runs on the same socket through
a small reply parser of our own (:mod:`gigo_mail.transport.wire`): the message bytes already have
CRLF line endings, so dot-stuffing is one ``bytes.replace`` instead of a regex over
every body, and with PIPELINING the three envelope commands go out in one write.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING

from gigo_mail.errors import (
    SMTPConnectFailed,
    SMTPFatalError,
    SMTPPermanentError,
    SMTPTransientError,
    SMTPUncertainError,
)
from gigo_mail.transport.opening import open_error
from gigo_mail.transport.replies import _error_for
from gigo_mail.transport.url import SmtpEndpoint, _local_hostname
from gigo_mail.transport.wire import Reply, ReplyReader, WireClosed, WireTimeout, crlf_lines, dot_stuff

if TYPE_CHECKING:  # imported on the first connection, not by every command
    import aiosmtplib

    from gigo_mail.transport.protocol import BeforeCommit, Envelope


_FORBIDDEN_IN_ADDRESS = re.compile(r"[\x00-\x20\x7f<>]")
_NOT_IMPLEMENTED = frozenset({500, 502, 504})  # command unknown, not implemented, parameter not implemented


def _in_step(replies: list[Reply]) -> bool:
    """Whether MAIL, RCPT and DATA replies can be what they claim: only DATA may say 354, and
    DATA never says 2xx. A stray reply shifts the rest, and one of these gives it away."""
    mail_r, rcpt_r, data_r = replies
    return mail_r.code != 354 and rcpt_r.code != 354 and not 200 <= data_r.code < 300


def _chunk_in_step(reader: ReplyReader, *replies: Reply) -> bool:
    """Whether a streamed transaction's five replies (RSET, MAIL, RCPT, BDAT, NOOP) can be what
    they claim: no transaction before it on the connection was out of step, RSET and NOOP say
    250, nothing says 354, and no reply came that nobody asked for."""
    rset_r, *_, noop_r = replies
    return (not reader.out_of_step and rset_r.code == 250 and noop_r.code == 250
            and all(reply.code != 354 for reply in replies) and not reader.unasked)


def _envelope_address(address: str, what: str) -> str:
    if _FORBIDDEN_IN_ADDRESS.search(address):
        raise SMTPPermanentError(f"{address!r}: {what} contains a space, angle bracket or control "
                                 "character", None, "invalid address", about_recipient=what == "recipient")
    return address


class SmtpTransport:
    """One persistent SMTP connection that carries many messages.

    ``open`` raises SMTPFatalError (login refused, TLS failure, no STARTTLS where it is
    required) or SMTPConnectFailed; ``send`` returns the server's final reply or raises
    SMTPTransientError (4xx, dropped connection, timeout) or SMTPPermanentError (5xx).
    After a transient error the connection may be closed: check ``is_open``.
    """

    def __init__(self, endpoint: SmtpEndpoint) -> None:
        self.endpoint = endpoint
        self._client: aiosmtplib.SMTP | None = None
        self._reader: ReplyReader | None = None
        self._transport: asyncio.WriteTransport | None = None
        self.pipelining = False
        self.chunking = False
        self.smtputf8 = False
        self.eightbitmime = False
        self.in_flight = endpoint.in_flight  # BDAT transactions on the wire at once
        self.messages = 0  # transactions tried on the current connection
        self._early: tuple[str, list[Reply]] | None = None  # replies to a transaction sent ahead
        self._slots: asyncio.Semaphore | None = None
        self._turn: asyncio.Future[None] | None = None  # the last streamed transaction's replies

    @property
    def is_open(self) -> bool:
        return self._reader is not None and self._reader.usable

    async def open(self) -> None:
        """Connect, greet, secure and log in; then take over the socket for the hot path."""
        import aiosmtplib

        await self.close()
        endpoint, url = self.endpoint, self.endpoint.url
        use_tls = url.tls == "implicit"
        start_tls: bool | None = {"implicit": False, "starttls": True, "opportunistic": None}[url.tls]
        client = aiosmtplib.SMTP(
            hostname=url.host, port=url.port, timeout=endpoint.timeout,
            use_tls=use_tls, start_tls=start_tls,
            tls_context=endpoint.tls_context(),
            local_hostname=endpoint.local_hostname or _local_hostname(),
            username=url.user, password=endpoint.password if url.user else None,
        )
        try:
            await client.connect()
            if client.is_ehlo_or_helo_needed:
                await client.ehlo()
        except aiosmtplib.SMTPAuthenticationError as exc:
            client.close()
            if 400 <= exc.code < 500:  # "454 4.7.0 Temporary authentication failure": not the password
                raise SMTPConnectFailed(f"{endpoint.where} deferred the login for '{url.user}': "
                                        f"{exc.code} {exc.message}") from None
            raise SMTPFatalError(f"{endpoint.where} refused login for '{url.user}': {exc.code} "
                                 f"{exc.message}; check GIGO_SMTP_PASSWORD") from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            client.close()
            raise open_error(endpoint, exc) from None
        except asyncio.CancelledError:  # an early open of a send that did not start: drop the socket now
            client.close()
            raise
        transport = client.transport
        if transport is None or transport.is_closing():
            client.close()
            raise SMTPConnectFailed(f"{endpoint.where} closed the connection after the greeting")
        self._client = client
        self.pipelining = client.supports_extension("pipelining")
        self.chunking = client.supports_extension("chunking") and not endpoint.run.no_chunking
        self._slots = asyncio.Semaphore(max(1, self.in_flight))
        self._early = None
        self._turn = None
        self.smtputf8 = client.supports_extension("smtputf8")
        self.eightbitmime = client.supports_extension("8bitmime")
        self._reader = ReplyReader()
        transport.set_protocol(self._reader)
        self._reader.attach(transport)
        self._transport = transport  # type: ignore[assignment]
        self.messages = 0
        if self.streams:
            await self._probe_bdat()

    async def _probe_bdat(self) -> None:
        """Ask for BDAT outside a transaction before trusting CHUNKING: a server that has it
        answers 503 (MAIL first), one that only advertises it answers 500 or 502. Zero bytes
        go with it, so no body is ever read as commands by a server that lacks BDAT."""
        assert self._reader is not None and self._transport is not None
        self._transport.write(b"BDAT 0 LAST\r\n")
        try:
            (reply,) = await self._reader.read(1, self.endpoint.timeout)
        except WireClosed as exc:
            await self.close()
            raise SMTPConnectFailed(f"{self.endpoint.where} {exc}") from None
        if reply.code == 421:
            await self.close()
            raise SMTPConnectFailed(f"{self.endpoint.where} deferred the session: {reply}")
        if reply.code in _NOT_IMPLEMENTED:
            self._no_chunking(reply)

    def _no_chunking(self, reply: Reply) -> None:
        """DATA for this server from now on, on every connection of the run, said once."""
        self.chunking = False
        self.endpoint.run.no_chunking = True
        self.endpoint.run.note(f"{self.endpoint.where} offers CHUNKING but refused BDAT ({reply}); "
                               "this run sends to it with DATA instead")

    @property
    def notes(self) -> list[str]:
        return self.endpoint.run.notes  # one-line facts about the server, shared by the run

    async def _out_of_step(self, recipient: str) -> SMTPTransientError:
        """A stray reply before the message's first byte: drop the connection; uncharged."""
        await self.close()
        return SMTPTransientError(f"{recipient}: {self.endpoint.where} sent a reply out of step with the "
                                  "commands; the connection was dropped before the message went out",
                                  None, "reply out of step (before the message)", about_session=True)

    async def _uncertain_out_of_step(self, recipient: str) -> SMTPUncertainError:
        """A stray reply once the message went out: which reply was its answer is unknown."""
        await self.close()
        return SMTPUncertainError(f"{recipient}: {self.endpoint.where} sent a reply out of step after the "
                                  "final dot; the server may have the message",
                                  "reply out of step after the final dot")

    def _envelope(self, sender: str, recipient: str, data: bytes, smtputf8: bool) -> bytes:
        """MAIL FROM and RCPT TO for one message; SMTPPermanentError if it cannot go here."""
        _envelope_address(sender, "sender")
        _envelope_address(recipient, "recipient")
        utf8 = smtputf8 or not recipient.isascii() or not sender.isascii()
        if utf8 and not self.smtputf8:
            raise SMTPPermanentError(
                f"{recipient}: {self.endpoint.where} does not offer SMTPUTF8, which this address needs",
                None, "server does not support SMTPUTF8 (non-ASCII address)", about_recipient=True)
        params = ""
        if self.eightbitmime and (utf8 or not data.isascii()):
            params += " BODY=8BITMIME"
        if utf8:
            params += " SMTPUTF8"
        encoding = "utf-8" if utf8 else "ascii"
        return f"MAIL FROM:<{sender}>{params}\r\nRCPT TO:<{recipient}>\r\n".encode(encoding)

    @property
    def streams(self) -> bool:
        """CHUNKING and PIPELINING: whole BDAT transactions go out back to back."""
        return self.chunking and self.pipelining and self.in_flight > 1

    def _lost(self, recipient: str, exc: WireClosed, committed: bool
              ) -> SMTPTransientError | SMTPUncertainError:
        """The connection failed: before any byte of the message, a retry is safe; after it,
        the server may have the message (uncertain, never retried)."""
        timed_out = isinstance(exc, WireTimeout)
        if committed:
            return SMTPUncertainError(
                f"{recipient}: {self.endpoint.where} {exc} after the final dot; the server may "
                "have the message", f"no reply after the final dot: {exc}", timed_out=timed_out)
        return SMTPTransientError(f"{recipient}: {self.endpoint.where} {exc}", None, str(exc),
                                  timed_out=timed_out)

    async def send(self, sender: str, recipient: str, data: bytes, *, smtputf8: bool = False,
                   before_commit: BeforeCommit | None = None, wire: bytes | None = None,
                   then: Envelope | None = None) -> Reply:
        """Deliver one message to one recipient; return the server's 250 reply.

        ``before_commit`` runs just before the final dot goes out (the journal marks the
        recipient "sending" there: from then on delivery is uncertain until the reply).
        ``wire`` is ``data``'s DATA payload when the caller has it ready (``BuiltMessage.wire``);
        otherwise it is made here with :func:`dot_stuff`.

        ``then`` (PIPELINING, RFC 2920) is the next message this connection will carry: its
        MAIL FROM, RCPT TO and DATA go out in the same write as this message's final dot,
        and their replies are read with this message's 250, so each message costs one round
        trip. Their outcome belongs to the next ``send`` for that recipient, never to this
        one. When the server offers CHUNKING too, messages go out as ``BDAT n LAST``
        transactions, up to ``in_flight`` of them on the wire at once (concurrent calls).
        """
        reader, transport = self._reader, self._transport
        if reader is None or transport is None or not reader.usable:
            raise SMTPTransientError(f"{recipient}: connection to {self.endpoint.where} is closed")
        early, self._early = self._early, None
        if early is not None and early[0] != recipient:
            # the transaction sent ahead is not this one: leave it by dropping the connection
            await self.close()
            raise SMTPTransientError(f"{recipient}: connection to {self.endpoint.where} was reset")
        commands = self._envelope(sender, recipient, data, smtputf8)
        if self.streams:
            return await self._send_chunk(recipient, commands, data, before_commit, wire is not None)
        payload = dot_stuff(data) if wire is None else wire
        timeout = self.endpoint.timeout
        self.messages += 1
        committed = False  # from the first byte of the payload on, the server may keep the message
        ahead = b""
        try:
            if early is not None:
                await self._check_envelope(early[1], recipient)
            elif self.pipelining:
                transport.write(commands + b"DATA\r\n")
                await self._check_envelope(await reader.read(3, timeout), recipient)
            else:
                mail, _, rcpt = commands.partition(b"\r\n")
                for command, stage, expected in ((mail + b"\r\n", "MAIL FROM", 250), (rcpt, "RCPT TO", 250),
                                                 (b"DATA\r\n", "DATA", 354)):
                    transport.write(command)
                    (reply,) = await reader.read(1, timeout)
                    if reply.code < 400 and (reply.code == 354) != (expected == 354):  # a stray reply
                        raise await self._out_of_step(recipient)
                    if reply.code != expected:
                        await self._after_failure(reply)
                        raise _error_for(reply, stage, recipient, self.endpoint.where)
            if then is not None and self.pipelining:
                try:
                    ahead = self._envelope(then.sender, then.recipient, then.data, then.smtputf8)
                    ahead += b"DATA\r\n"
                except SMTPPermanentError:
                    ahead = b""  # its own send says why
            if not reader.usable:  # closed after its 354: nothing of the message went out
                raise WireClosed(reader.closed_reason or "closed the connection")
            if before_commit is not None and (pending := before_commit()) is not None:
                await pending  # the journal's commit of the "sending" mark
                if not reader.usable:
                    raise WireClosed(reader.closed_reason or "closed the connection")
            committed = True
            transport.write(payload + ahead if ahead else payload)
            await reader.drain()
            (final,) = await reader.read(1, self.endpoint.data_timeout)
        except WireClosed as exc:
            await self.close()
            raise self._lost(recipient, exc, committed) from None
        if final.code == 354 or (reader.unasked and not ahead):
            raise await self._uncertain_out_of_step(recipient)
        if ahead and then is not None and not await self._read_ahead(then.recipient, final):
            raise await self._uncertain_out_of_step(recipient)
        if final.code != 250:
            if final.code == 421:
                await self.close()
            raise _error_for(final, "the message", recipient, self.endpoint.where)
        return final

    async def _read_ahead(self, recipient: str, final: Reply) -> bool:
        """Collect the replies to the next transaction's MAIL, RCPT and DATA (sent with the
        last final dot) for the next send to ``recipient``; on trouble, start it afresh.
        False when they are out of step: a stray reply came before them, perhaps before the
        reply taken for the final dot's."""
        reader = self._reader
        if final.code == 421 or reader is None:
            await self.close()
            return True
        try:
            replies = await reader.read(3, self.endpoint.timeout)
        except WireClosed:
            await self.close()
            return True
        if not _in_step(replies) or reader.unasked:
            return False
        self._early = (recipient, replies)
        return True

    async def _check_envelope(self, replies: list[Reply], recipient: str) -> None:
        """Raise the error for a refused MAIL FROM, RCPT TO or DATA (after leaving the
        connection clean for the next message). Out of step: a transient error about the
        session, charged to nobody."""
        if not _in_step(replies) or (self._reader is not None and self._reader.unasked):
            raise await self._out_of_step(recipient)
        mail_r, rcpt_r, data_r = replies
        if mail_r.code == 250 and rcpt_r.code == 250 and data_r.code == 354:
            return
        if data_r.code == 354 and self._transport is not None and self._reader is not None:
            # a lax server took DATA anyway: send an empty message (it has no recipient)
            self._transport.write(b".\r\n")
            await self._reader.read(1, self.endpoint.timeout)
        await self._after_failure(mail_r if mail_r.code != 250 else rcpt_r)
        stage = "MAIL FROM" if mail_r.code != 250 else "RCPT TO" if rcpt_r.code != 250 else "DATA"
        bad = mail_r if mail_r.code != 250 else rcpt_r if rcpt_r.code != 250 else data_r
        raise _error_for(bad, stage, recipient, self.endpoint.where)

    async def _send_chunk(self, recipient: str, commands: bytes, data: bytes,
                          before_commit: BeforeCommit | None, prepared: bool) -> Reply:
        """One BDAT transaction, written whole without waiting for the ones before it.

        RSET first, so that whatever the transaction before it left (a refused recipient),
        this one starts clean; its replies are read in the order the transactions went out.
        The message goes out in the same write as its envelope, so ``sending`` is committed
        before that write, and from then on a lost connection leaves it uncertain.

        NOOP last: its 250 is the reply after the message's, so a stray reply that came before
        them (taken for the message's, with the real one, say a 554, behind it) shows itself
        here, not as a delivery; then this transaction and every one behind it on the
        connection are uncertain (:func:`_chunk_in_step`) and the connection is dropped."""
        assert self._slots is not None
        async with self._slots:
            reader, transport = self._reader, self._transport
            if reader is None or transport is None or not reader.usable:
                raise SMTPTransientError(f"{recipient}: connection to {self.endpoint.where} is closed")
            body = data if prepared else crlf_lines(data)
            if before_commit is not None and (pending := before_commit()) is not None:
                await pending
            if not reader.usable:
                raise SMTPTransientError(f"{recipient}: connection to {self.endpoint.where} is closed")
            self.messages += 1
            transport.write(b"RSET\r\n" + commands + b"BDAT %d LAST\r\n" % len(body) + body + b"NOOP\r\n")
            reader.owed += 5
            turn, self._turn = self._turn, asyncio.get_running_loop().create_future()
            mine = self._turn
            try:
                if turn is not None:
                    await asyncio.shield(turn)
                await reader.drain()
                rset_r, mail_r, rcpt_r = await reader.read(3, self.endpoint.timeout)
                (final,) = await reader.read(1, self.endpoint.data_timeout)
                leaving = 421 in (rset_r.code, mail_r.code, rcpt_r.code, final.code)  # no NOOP reply comes
                noop_r = Reply(250, "") if leaving else (await reader.read(1, self.endpoint.timeout))[0]
                # decided before the next transaction reads: a shift spoils every one behind it
                bdat_refused = (not reader.out_of_step and rset_r.code == mail_r.code == rcpt_r.code == 250
                                and final.code in _NOT_IMPLEMENTED)
                if bdat_refused or not _chunk_in_step(reader, rset_r, mail_r, rcpt_r, final, noop_r):
                    reader.out_of_step = True
            except WireClosed as exc:
                await self.close()
                raise self._lost(recipient, exc, True) from None
            finally:
                mine.set_result(None)
                if self._turn is mine:
                    self._turn = None
        if bdat_refused:
            self._no_chunking(final)  # what follows on this connection is its body read as commands
            await self.close()
            raise SMTPTransientError(f"{recipient}: {self.endpoint.where} refused BDAT ({final}); it goes "
                                     "again with DATA", final.code, final.text, about_session=True)
        if reader.out_of_step:
            raise await self._uncertain_out_of_step(recipient)
        for reply, stage in ((mail_r, "MAIL FROM"), (rcpt_r, "RCPT TO"), (final, "the message")):
            if reply.code != 250:
                if reply.code == 421:
                    await self.close()
                raise _error_for(reply, stage, recipient, self.endpoint.where)
        return final

    async def _after_failure(self, reply: Reply) -> None:
        """Leave the connection clean for the next message (or drop it after a 421)."""
        if reply.code == 421 or self._reader is None or self._transport is None:
            await self.close()
            return
        self._transport.write(b"RSET\r\n")
        (rset,) = await self._reader.read(1, self.endpoint.timeout)
        if rset.code != 250:
            await self.close()

    async def close(self) -> None:
        """Say QUIT (briefly) and drop the connection. Safe to call twice. With streamed
        transactions still owed replies, it just drops it (they see the close)."""
        reader, transport, client = self._reader, self._transport, self._client
        self._reader = self._transport = self._client = None
        self._early = None
        if reader is not None and transport is not None and reader.usable and not reader.owed:
            try:
                transport.write(b"QUIT\r\n")
                await reader.read(1, min(self.endpoint.timeout, 2.0))
            except (WireClosed, OSError):
                pass
        if transport is not None and not transport.is_closing():
            transport.close()
        if client is not None:
            client.close()
