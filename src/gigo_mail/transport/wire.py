"""Bytes on the wire: the DATA form of a message, and the hot-path reply reader.

The DATA form (CRLF line endings, dot-stuffed, ending with the ``.`` line) is what
RFC 5321 puts on the wire. :func:`dot_stuff` makes it from any bytes;
:class:`WireForm` makes it from a message built of pieces, most of which are the same
for every recipient: their stuffed forms are computed once per issue, so a
recipient's DATA payload costs a join, not scans over the whole message.

The reply reader is an asyncio Protocol swapped onto an established SMTP socket.
aiosmtplib's protocol parses one reply per ``data_received`` wake-up and expects one
command in flight, so PIPELINING's replies arriving in one packet would be lost.
This reader parses every complete reply in the buffer, queues them, and wakes the
sender once the number of replies it asked for is there.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Iterable
from typing import NamedTuple

_BARE_EOL = re.compile(rb"\r\n|\r|\n")


def crlf_lines(data: bytes) -> bytes:
    """``data`` with every line ending CRLF (BDAT sends bytes as they are)."""
    crlf = data.count(b"\r\n")
    if data.count(b"\n") != crlf or data.count(b"\r") != crlf:
        data = _BARE_EOL.sub(b"\r\n", data)
    return data


def _stuff(piece: bytes, line_start: bool) -> bytes:
    """``piece`` with CRLF line endings and every line that starts with a dot doubled;
    ``line_start``: the piece begins a line."""
    piece = crlf_lines(piece)
    if line_start and piece[:1] == b".":
        piece = b"." + piece
    if b"\n." in piece:  # a scan is 4x cheaper than a replace that finds nothing
        piece = piece.replace(b"\r\n.", b"\r\n..")
    return piece


def dot_stuff(data: bytes) -> bytes:
    """The DATA payload for ``data``, ending with the terminating ``.`` line.

    CRLF line endings are checked with C-speed scans and one ``bytes.replace`` does the
    stuffing; anything else is normalised first, so handmade bytes are safe too."""
    data = _stuff(data, True)
    return data + (b".\r\n" if data.endswith(b"\r\n") else b"\r\n.\r\n")


class WireForm:
    """The DATA payload of messages made of pieces, with the fixed pieces prepared once.

    ``fixed`` are the pieces shared by every message (an issue's literal stretches and
    header blocks): their stuffed forms are computed here, for a piece that begins a line
    and for one that does not. Any other piece (a recipient's values) is stuffed as it
    comes; those are a few hundred bytes."""

    def __init__(self, fixed: Iterable[bytes]) -> None:
        self._forms: dict[int, tuple[bytes, bytes, bytes]] = {}
        for piece in fixed:
            self._forms[id(piece)] = (piece, _stuff(piece, False), _stuff(piece, True))

    def payload(self, pieces: Iterable[bytes]) -> bytes:
        """What ``dot_stuff(b"".join(pieces))`` returns, for a fraction of its cost."""
        out = []
        line_start = True
        forms = self._forms
        for piece in pieces:
            if not piece:
                continue
            known = forms.get(id(piece))
            if known is not None and known[0] is piece:
                piece = known[2] if line_start else known[1]
            else:
                piece = _stuff(piece, line_start)
            out.append(piece)
            line_start = piece[-1:] == b"\n"
        out.append(b".\r\n" if line_start else b"\r\n.\r\n")
        return b"".join(out)

MAX_REPLY_BYTES = 64 * 1024


class Reply(NamedTuple):
    """One SMTP reply; multi-line texts are joined with newlines."""

    code: int
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.text}".strip()


class WireClosed(ConnectionError):
    """The connection closed, timed out or spoke garbage; the message says which."""


class WireTimeout(WireClosed, TimeoutError):
    """No reply within the time allowed (the connection is dropped with it)."""


class ReplyReader(asyncio.Protocol):
    """Collects SMTP replies from the socket; ``read(n)`` awaits the next n of them."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._buffer = bytearray()
        self._lines: list[str] = []
        self._replies: deque[Reply] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._want = 0
        self._closed: str | None = None
        self._timeout_hit = False
        self._paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self.transport: asyncio.BaseTransport | None = None
        self.owed = 0  # replies to commands already written (BDAT streaming keeps count)
        self.out_of_step = False  # a streamed transaction saw a shifted reply: none behind it is believed

    def attach(self, transport: asyncio.BaseTransport) -> None:
        """Called after ``transport.set_protocol(self)`` (which skips connection_made)."""
        self.transport = transport
        if transport.is_closing():
            self._closed = "closed the connection"

    @property
    def usable(self) -> bool:
        """Open, and no reply arrived unasked (a stray 421 means the server is leaving)."""
        return (self._closed is None and len(self._replies) <= self.owed and self.transport is not None
                and not self.transport.is_closing())

    @property
    def unasked(self) -> int:
        """Replies queued beyond those owed: a server out of step with the commands."""
        return max(0, len(self._replies) - self.owed)

    @property
    def closed_reason(self) -> str | None:
        return self._closed

    # -- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.attach(transport)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        while (end := buffer.find(b"\n", start)) >= 0:
            line = bytes(buffer[start:end]).rstrip(b"\r")
            start = end + 1
            code = line[:3]
            if len(code) != 3 or not code.isdigit():
                self._fail(f"sent a malformed reply line {line[:80]!r}")
                return
            self._lines.append(line[4:].decode("utf-8", "replace"))
            if line[3:4] != b"-":
                self._replies.append(Reply(int(code), "\n".join(self._lines)))
                self._lines = []
        if start:
            del buffer[:start]
        if len(buffer) > MAX_REPLY_BYTES or len(self._lines) > 1000:
            self._fail("sent an endless reply")
            return
        waiter = self._waiter
        if waiter is not None and len(self._replies) >= self._want and not waiter.done():
            waiter.set_result(None)

    def eof_received(self) -> bool:
        return False  # let the transport close; connection_lost wakes everyone

    def connection_lost(self, exc: Exception | None) -> None:
        if self._closed is None:
            self._closed = "closed the connection" + (f" ({exc})" if exc else "")
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)  # read() sees _closed and raises
        self._wake_drain()

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake_drain()

    # -- used by SmtpTransport ---------------------------------------------------------------

    def _fail(self, why: str) -> None:
        self._closed = why
        if self.transport is not None:
            self.transport.abort()  # type: ignore[attr-defined]

    def _wake_drain(self) -> None:
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)

    async def drain(self) -> None:
        """Wait while the transport's write buffer is over its high-water mark."""
        while self._paused and self._closed is None:
            self._drain_waiter = self._loop.create_future()
            await self._drain_waiter
        if self._closed is not None:
            raise WireClosed(self._closed)

    async def read(self, count: int, timeout: float) -> list[Reply]:
        """The next ``count`` replies; WireClosed on close, garbage or timeout."""
        replies = self._replies
        if len(replies) < count:
            if self._closed is not None:
                raise WireClosed(self._closed)
            waiter = self._waiter = self._loop.create_future()
            self._want = count
            timer = self._loop.call_later(timeout, self._timed_out, waiter, timeout)
            try:
                await waiter
            except asyncio.CancelledError:
                self._fail("was abandoned mid-command")
                raise
            finally:
                timer.cancel()
                self._waiter = None
            if len(replies) < count:
                if self._timeout_hit:
                    raise WireTimeout(self._closed or "did not answer")
                raise WireClosed(self._closed or "closed the connection")
        self.owed = max(0, self.owed - count)
        return [replies.popleft() for _ in range(count)]

    def _timed_out(self, waiter: asyncio.Future[None], timeout: float) -> None:
        if not waiter.done():
            self._timeout_hit = True
            self._fail(f"did not answer within {timeout:g} s")
            waiter.set_result(None)
