"""Transports: where built messages go (an SMTP server, or .eml files for a dry run).

Shaped like Django's mail backends, made async: ``await open()``, ``await send(...)``,
``await close()``. One SmtpTransport is one persistent SMTP connection; the sending
engine runs a pool of them.

aiosmtplib does what it is good at: connect, EHLO, STARTTLS, AUTH and its error
classes. The per-message hot path (MAIL/RCPT/DATA) then runs on the same socket through
a small reply parser of our own (:mod:`gigo_mail.wire`): the message bytes already have
CRLF line endings, so dot-stuffing is one ``bytes.replace`` instead of a regex over
every body, and with PIPELINING the three envelope commands go out in one write.
"""

from __future__ import annotations

import asyncio
import functools
import re
import socket
import ssl
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote, urlsplit

from .config import Smtp
from .errors import (
    ConfigError,
    SMTPConnectFailed,
    SMTPFatalError,
    SMTPPermanentError,
    SMTPSessionRefused,
    SMTPTransientError,
    SMTPUncertainError,
)
from .net import is_loopback
from .wire import Reply, ReplyReader, WireClosed, WireTimeout, crlf_lines, dot_stuff

if TYPE_CHECKING:  # imported on the first connection, not by every command
    import aiosmtplib

__all__ = [
    "FileTransport",
    "Reply",
    "SMTPConnectFailed",
    "SmtpEndpoint",
    "SmtpTransport",
    "SmtpUrl",
    "Envelope",
    "Transport",
    "dot_stuff",
    "enhanced_status",
    "make_tls_context",
    "parse_smtp_url",
]

THROTTLE_CODES = frozenset({421, 450, 451, 454})



class Transport(Protocol):
    """What the sending engine needs from a destination."""

    messages: int  # transactions tried on the current connection (for max_per_connection)

    @property
    def is_open(self) -> bool: ...

    async def open(self) -> None: ...

    async def send(self, sender: str, recipient: str, data: bytes, *, smtputf8: bool = False,
                   before_commit: BeforeCommit | None = None, wire: bytes | None = None,
                   then: Envelope | None = None) -> Reply: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Envelope:
    """The next message a connection will carry (what PIPELINING sends ahead)."""

    sender: str
    recipient: str
    data: bytes
    smtputf8: bool = False


class BeforeCommit(Protocol):
    """Runs just before the final dot; may return an awaitable the dot then waits for
    (the journal's commit of the "sending" mark)."""

    def __call__(self) -> Awaitable[None] | None: ...


# --- the SMTP URL ---------------------------------------------------------------------

@dataclass(frozen=True)
class SmtpUrl:
    """A parsed ``smtp://`` or ``smtps://`` URL. Never holds the password."""

    scheme: str  # "smtp" or "smtps"
    host: str
    port: int
    user: str | None

    @property
    def is_loopback(self) -> bool:
        return is_loopback(self.host)

    @property
    def tls(self) -> str:
        """"implicit" (smtps), "starttls" (required), or "opportunistic" (loopback)."""
        if self.scheme == "smtps":
            return "implicit"
        return "opportunistic" if self.is_loopback else "starttls"

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{user}{host}:{self.port}"


def parse_smtp_url(url: str) -> SmtpUrl:
    """Parse smtp://user@host:587, smtps://user@host:465 or smtp://127.0.0.1:1025.

    A password in the URL is refused: it would end up in shell history and config files.
    """
    try:
        parts = urlsplit(url.strip())
    except ValueError as exc:  # "smtp://[::1": an unclosed IPv6 bracket
        raise ConfigError(f"SMTP URL '{url}' is malformed ({exc}); write smtp://HOST:PORT, "
                          "an IPv6 address in brackets: smtp://[::1]:25") from None
    if parts.scheme not in ("smtp", "smtps"):
        raise ConfigError(f"SMTP URL '{url}' must start with smtp:// or smtps://")
    if parts.password is not None:
        raise ConfigError(f"SMTP URL for {parts.hostname} contains a password; remove it and set "
                          "GIGO_SMTP_PASSWORD instead")
    if not parts.hostname:
        raise ConfigError(f"SMTP URL '{url}' has no host")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"SMTP URL '{url}' has an invalid port") from None
    if port == 0:
        raise ConfigError(f"SMTP URL '{url}' has port 0; give the server's port (587, 465, 25, ...)")
    port = port or (465 if parts.scheme == "smtps" else 587)
    user = unquote(parts.username) if parts.username else None
    return SmtpUrl(parts.scheme, parts.hostname, port, user)


@functools.cache
def make_tls_context(cafile: str | None = None) -> ssl.SSLContext:
    """A verifying client context; ``cafile`` adds a private CA (GIGO_SMTP_CAFILE)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if cafile:
        try:
            context.load_verify_locations(cafile=cafile)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load CA file {cafile}: {exc}; fix GIGO_SMTP_CAFILE") from exc
    return context


@functools.cache
def _local_hostname() -> str:
    name = socket.getfqdn()
    return name if name and name != "localhost" and "." in name else "localhost.localdomain"


@dataclass(frozen=True)
class SmtpEndpoint:
    """Everything a connection needs; shared by every connection of a run."""

    url: SmtpUrl
    password: str | None = None
    timeout: float = 30.0  # every command but the final dot
    data_timeout: float = Smtp.data_timeout  # the reply to the final dot (RFC 5321 4.5.3.2.6)
    cafile: str | None = None
    local_hostname: str | None = None
    in_flight: int = 4  # [smtp] in_flight: BDAT transactions on the wire at once per connection

    @property
    def where(self) -> str:
        return f"{self.url.host}:{self.url.port}"

    def tls_context(self) -> ssl.SSLContext:
        return make_tls_context(self.cafile or None)


# --- SMTP ----------------------------------------------------------------------------------

_FORBIDDEN_IN_ADDRESS = re.compile(r"[\x00-\x20\x7f<>]")


def _envelope_address(address: str, what: str) -> str:
    if _FORBIDDEN_IN_ADDRESS.search(address):
        raise SMTPPermanentError(f"{address!r}: {what} contains a space, angle bracket or control "
                                 "character", None, "invalid address", about_recipient=what == "recipient")
    return address


_ENHANCED = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})\b")
# Replies that are about the session (who may send, through whom), whatever the recipient.
_SESSION_TEXT = re.compile(r"authenticat|auth(entication)? required|log ?in (first|required)|"
                           r"relay(ing)?( access)? (is )?(denied|not (permitted|allowed))|"
                           r"access denied|sender address rejected|not authori[sz]ed to (relay|send)",
                           re.IGNORECASE)
_SESSION_STATUS = frozenset({(7, 0), (7, 8), (7, 9), (7, 11), (7, 14)})  # RFC 3463/4954/7504 security
_TLS_TEXT = re.compile(r"starttls|tls (is )?required|encryption (is )?required", re.IGNORECASE)


def enhanced_status(text: str) -> tuple[int, int] | None:
    """(subject, detail) of an RFC 3463 enhanced status code at the start of a reply text."""
    match = _ENHANCED.match(text)
    return (int(match.group(2)), int(match.group(3))) if match else None


_AUTH_TEXT = re.compile(r"auth|log ?in", re.IGNORECASE)


def _session_hint(reply: Reply, stage: str) -> str:
    if reply.code == 530 or _AUTH_TEXT.search(reply.text):
        return ("the server wants a login: name the user in the SMTP URL (smtp://USER@HOST:587) "
                "and set GIGO_SMTP_PASSWORD")
    if stage == "MAIL FROM" or "sender" in reply.text.lower():
        return ("the server refused the sender: check [newsletter] from in gigo-mail.toml, and that "
                "your login may send as that address")
    return ("the server will not relay for this session: log in (smtp://USER@HOST:587 with "
            "GIGO_SMTP_PASSWORD) or send through the server meant for your domain")


def _error_for(reply: Reply, stage: str, recipient: str, where: str = "the server"
               ) -> SMTPTransientError | SMTPPermanentError | SMTPSessionRefused:
    """The one place that decides whom a refusal is about.

    5xx to MAIL FROM, 530 and the security statuses (X.7.0 authentication required, ...),
    and texts like "Relay access denied" are about the session: fatal, no recipient is
    charged. X.1.x (address) and X.2.x (mailbox) are about the recipient. Anything else is
    a permanent failure of unknown scope, which the engine's refusal breaker watches.
    A 4xx is about the session on the same terms, or as a 421 or "TLS required"; any other
    4xx (450, 451, 452 to RCPT, a deferred message) is this recipient's to retry.
    """
    text = f"{recipient}: server answered {stage} with {reply}"
    status = enhanced_status(reply.text)
    about_session = (stage == "MAIL FROM" or reply.code in (421, 530)
                     or (status is not None and status in _SESSION_STATUS)
                     or _SESSION_TEXT.search(reply.text) is not None)
    if 400 <= reply.code < 500:
        if about_session or _TLS_TEXT.search(reply.text):
            return SMTPTransientError(f"{where} answered {stage} with {reply}", reply.code, reply.text,
                                      about_session=True)
        return SMTPTransientError(text, reply.code, reply.text)
    if about_session:
        return SMTPSessionRefused(f"{where} answered {stage} with {reply}: {_session_hint(reply, stage)}; "
                                  "no recipient was marked failed", reply.code, reply.text)
    return SMTPPermanentError(text, reply.code, reply.text,
                              about_recipient=status is not None and status[0] in (1, 2))


def _root_cause(exc: BaseException) -> BaseException:
    seen = exc
    while seen.__cause__ is not None:
        seen = seen.__cause__
    return seen


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
            raise self._open_error(exc) from None
        transport = client.transport
        if transport is None or transport.is_closing():
            client.close()
            raise SMTPConnectFailed(f"{endpoint.where} closed the connection after the greeting")
        self._client = client
        self.pipelining = client.supports_extension("pipelining")
        self.chunking = client.supports_extension("chunking")
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

    def _open_error(self, exc: BaseException) -> SMTPFatalError:
        import aiosmtplib

        where, cause = self.endpoint.where, _root_cause(exc)
        if isinstance(cause, ssl.SSLError) or "SSL" in str(exc):
            reason = getattr(cause, "verify_message", None) or getattr(cause, "reason", None) or cause
            return SMTPFatalError(f"TLS with {where} failed: {reason}; {self._tls_hint(cause)}")
        if isinstance(cause, socket.gaierror):
            return SMTPConnectFailed(f"cannot resolve SMTP host '{self.endpoint.url.host}': "
                                     f"{cause.strerror}")
        if isinstance(cause, ConnectionRefusedError):
            return SMTPConnectFailed(f"{where} refused the connection; is the SMTP server running?")
        if isinstance(exc, aiosmtplib.SMTPResponseException) and 400 <= exc.code < 500:
            return SMTPConnectFailed(f"{where} deferred the session: {exc.code} {exc.message}")  # 421 busy
        if isinstance(exc, aiosmtplib.SMTPConnectResponseError):
            return SMTPFatalError(f"{where} refused the session: {exc.code} {exc.message}")
        if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
            return SMTPConnectFailed(f"{where} did not answer within {self.endpoint.timeout:g} s")
        if isinstance(exc, aiosmtplib.SMTPServerDisconnected | OSError):
            return SMTPConnectFailed(f"cannot connect to {where}: {exc}")
        text = getattr(exc, "message", None) or str(exc)
        if "STARTTLS" in text:
            return SMTPFatalError(f"{where} does not offer STARTTLS, which a non-local server needs; "
                                  "use smtps://HOST:465 if it offers implicit TLS")
        if "AUTH" in text:
            return SMTPFatalError(f"{where} does not offer AUTH for '{self.endpoint.url.user}'")
        return SMTPFatalError(f"{where}: {text}")

    def _tls_hint(self, cause: BaseException) -> str:
        """The hint that fits the TLS failure (not always the CA file)."""
        text = f"{getattr(cause, 'verify_message', '')} {getattr(cause, 'reason', '')} {cause}".lower()
        url = self.endpoint.url
        if "hostname mismatch" in text or "ip address mismatch" in text or "doesn't match" in text:
            return (f"the certificate is not for '{url.host}'; use the host name the certificate names "
                    "in the SMTP URL")
        if url.tls == "implicit" and ("wrong version number" in text or "record layer" in text
                                      or "unexpected eof" in text):
            return (f"port {url.port} does not speak TLS from the start; for STARTTLS use "
                    f"smtp://{url.host}:{url.port} (or smtps:// on port 465)")
        if "expired" in text:
            return "the server's certificate has expired; the server's admin must renew it"
        return "if the server uses a private CA, set GIGO_SMTP_CAFILE to its certificate"

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
        if ahead and then is not None:
            await self._read_ahead(then.recipient, final)
        if final.code != 250:
            if final.code == 421:
                await self.close()
            raise _error_for(final, "the message", recipient, self.endpoint.where)
        return final

    async def _read_ahead(self, recipient: str, final: Reply) -> None:
        """Collect the replies to the next transaction's MAIL, RCPT and DATA (sent with the
        last final dot) for the next send to ``recipient``; on trouble, start it afresh."""
        reader = self._reader
        if final.code == 421 or reader is None:
            await self.close()
            return
        try:
            self._early = (recipient, await reader.read(3, self.endpoint.timeout))
        except WireClosed:
            await self.close()

    async def _check_envelope(self, replies: list[Reply], recipient: str) -> None:
        """Raise the error for a refused MAIL FROM, RCPT TO or DATA (after leaving the
        connection clean for the next message)."""
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
        before that write, and from then on a lost connection leaves it uncertain."""
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
            transport.write(b"RSET\r\n" + commands + b"BDAT %d LAST\r\n" % len(body) + body)
            reader.owed += 4
            turn, self._turn = self._turn, asyncio.get_running_loop().create_future()
            mine = self._turn
            try:
                if turn is not None:
                    await asyncio.shield(turn)
                await reader.drain()
                _, mail_r, rcpt_r = await reader.read(3, self.endpoint.timeout)
                (final,) = await reader.read(1, self.endpoint.data_timeout)
            except WireClosed as exc:
                await self.close()
                raise self._lost(recipient, exc, True) from None
            finally:
                mine.set_result(None)
                if self._turn is mine:
                    self._turn = None
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


# --- files ---------------------------------------------------------------------------------

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9@._+-]+")


class FileTransport:
    """Writes each message to ``folder/NNNNNN-recipient.eml`` (the --dry-run outbox).

    ``keep`` = False renders and counts without writing (a dry run over a huge list)."""

    def __init__(self, folder: Path, *, keep: bool = True) -> None:
        self.folder = folder
        self.keep = keep
        self.count = 0
        self.messages = 0
        self._open = False

    @property
    def is_open(self) -> bool:
        return self._open

    async def open(self) -> None:
        if self.keep:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(f"cannot create {self.folder}: {exc.strerror}") from exc
        self._open = True
        self.messages = 0

    async def send(self, sender: str, recipient: str, data: bytes, *, smtputf8: bool = False,
                   before_commit: BeforeCommit | None = None, wire: bytes | None = None,
                   then: Envelope | None = None) -> Reply:
        self.count += 1
        self.messages += 1
        if before_commit is not None and (pending := before_commit()) is not None:
            await pending
        if self.keep:
            name = f"{self.count:06d}-{_UNSAFE_NAME.sub('_', recipient)[:80]}.eml"
            try:
                (self.folder / name).write_bytes(data)
            except OSError as exc:
                raise ConfigError(f"cannot write {self.folder / name}: {exc.strerror}") from exc
        return Reply(250, "written")

    async def close(self) -> None:
        self._open = False
