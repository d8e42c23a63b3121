"""Waitress, held to what one client may cost: the public page must answer while strangers
hold sockets open.

Waitress reads and writes asynchronously, so a slow client holds no worker thread; what it
holds is a connection. Out of the box three things let a few hundred of them take the page
down, and this module closes each:

* ``channel_timeout`` counts seconds without *any* byte: a client that sends one header
  line every few seconds is never idle, and keeps its connection for ever. Here each
  request must also arrive whole (headers and body) within ``request_timeout`` of its first
  byte, however busy the client looks.
* ``connection_limit`` stops accepting once reached, so a few hundred held sockets left
  every new client waiting in the backlog. Here the limit is in the thousands (the
  file-descriptor limit is raised to fit, or the limit lowered to what the process may
  open) and the event loop uses ``poll``, which has no 1,024-descriptor ceiling.
* Nothing stopped one address from holding every connection. Here one client address may
  hold ``per_client`` connections at once; the next is closed as soon as it is accepted.
  Behind a reverse proxy every request comes from the proxy's address, so ``--serve`` is
  meant to sit behind one that buffers requests (nginx, Caddy): slow clients then cost the
  proxy, and the proxy's connections are few.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

MAX_BODY = 4096  # "List-Unsubscribe=One-Click" is 26 bytes; the page's form sends the same
_ACCEPT_BATCH = 256  # connections taken from the backlog per turn of the event loop
_FD_MARGIN = 64  # descriptors kept for the journal, the trigger pipe, logs and the threads


@dataclass(frozen=True, kw_only=True)
class ServeLimits:
    """What one client may cost the server. The defaults suit a page on the open internet and
    behind an HTTPS proxy alike."""

    threads: int = 8  # requests handled at once; reading and writing are asynchronous
    connection_limit: int = 4000  # open connections in all; more wait in the backlog
    per_client: int = 32  # open connections from one address; more are closed at once
    request_timeout: float = 10.0  # seconds from a request's first byte to its last, however it trickles
    channel_timeout: float = 10.0  # seconds without a byte before a connection is closed
    cleanup_interval: float = 1.0  # how often both timeouts are checked
    max_header: int = 8 * 1024
    max_body: int = MAX_BODY
    recv_bytes: int = 8192  # read per readiness (a request is at most max_header + max_body)
    backlog: int = 2048  # connections the kernel queues while the page is at its limit
    loop_timeout: float = 1.0  # how long the event loop waits when nothing happens (shutdown latency)


DEFAULT_LIMITS = ServeLimits()


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's soft limit on open files towards ``wanted`` (never past the hard
    limit); the limit now in force."""
    try:
        import resource
    except ImportError:  # not on this platform: nothing to raise
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return wanted if soft == resource.RLIM_INFINITY else int(soft)


def connection_limit(limits: ServeLimits) -> int:
    """The connections this process can really hold: ``limits.connection_limit``, lowered to
    what the file-descriptor limit allows once it is raised as far as it may be."""
    available = raise_fd_limit(limits.connection_limit + _FD_MARGIN) - _FD_MARGIN
    return max(1, min(limits.connection_limit, available))


def create(app: Any, host: str, port: int, limits: ServeLimits, trusted_proxy: str = "") -> Any:
    """The guarded waitress server for ``app``, bound and ready (``.run()``, ``.close()``).
    ``trusted_proxy``: the one address whose X-Forwarded-For names the client (else none is)."""
    from waitress.adjustments import Adjustments
    from waitress.channel import HTTPChannel
    from waitress.server import TcpWSGIServer

    class Channel(HTTPChannel):
        """Remembers when the request it is reading began."""

        request_started: float | None = None

        def received(self, data: bytes) -> bool:
            partial = self.request is not None
            result = super().received(data)
            if self.request is None:
                self.request_started = None
            elif not partial or self.request_started is None:
                self.request_started = time.monotonic()
            return bool(result)

        def del_channel(self, map: Any = None) -> None:  # noqa: A002 (waitress's name)
            if self._fileno is not None and self._fileno in self.server.active_channels:
                self.server.release(self.addr)
            super().del_channel(map)

    class Server(TcpWSGIServer):
        channel_class = Channel

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.per_address: Counter[str] = Counter()
            super().__init__(*args, **kwargs)

        def handle_accept(self) -> None:
            """Accept what the backlog holds, not one per turn of the loop: each turn walks
            every open connection, so a burst of thousands accepted one at a time would keep a
            normal client queued behind them for seconds."""
            for _ in range(_ACCEPT_BATCH):
                if len(self._map) >= self.adj.connection_limit:
                    return
                try:
                    accepted = self.accept()
                except OSError:
                    return
                if accepted is None:  # the backlog is empty
                    return
                self._take(*accepted)

        def _take(self, conn: socket.socket, addr: Any) -> None:
            address = str(addr[0]) if isinstance(addr, tuple) else str(addr)
            if self.per_address[address] >= limits.per_client:
                with contextlib.suppress(OSError):
                    conn.close()  # one address, too many sockets: no channel, no thread, no reply
                return
            try:
                self.set_socket_options(conn)
            except OSError:
                with contextlib.suppress(OSError):
                    conn.close()
                return
            self.per_address[address] += 1
            try:
                self.channel_class(self, conn, addr, self.adj, map=self._map)
            except OSError:  # reset before it was set up: nothing holds the count but us
                if conn.fileno() not in self.active_channels:
                    self.release(addr)
                with contextlib.suppress(OSError):
                    conn.close()

        def release(self, addr: Any) -> None:
            address = str(addr[0]) if isinstance(addr, tuple) else str(addr)
            self.per_address[address] -= 1
            if self.per_address[address] <= 0:
                del self.per_address[address]

        def maintenance(self, now: float) -> None:
            super().maintenance(now)
            cutoff = time.monotonic() - limits.request_timeout
            for channel in list(self.active_channels.values()):
                started = getattr(channel, "request_started", None)
                if started is not None and started < cutoff and not channel.requests:
                    channel.will_close = True  # a request still incomplete after request_timeout

    adj = Adjustments(host=host, port=port, threads=limits.threads,
                      connection_limit=connection_limit(limits), backlog=limits.backlog,
                      channel_timeout=limits.channel_timeout, cleanup_interval=limits.cleanup_interval,
                      max_request_header_size=limits.max_header, max_request_body_size=limits.max_body,
                      inbuf_overflow=limits.max_body, recv_bytes=limits.recv_bytes,
                      asyncore_use_poll=True, asyncore_loop_timeout=limits.loop_timeout, ident="",
                      expose_tracebacks=False, clear_untrusted_proxy_headers=True,
                      **({"trusted_proxy": trusted_proxy, "trusted_proxy_headers": {"x-forwarded-for"}}
                         if trusted_proxy else {}))
    from waitress.task import ThreadedTaskDispatcher

    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(adj.threads)
    return Server(app, map={}, dispatcher=dispatcher, adj=adj, sockinfo=adj.listen[0])
