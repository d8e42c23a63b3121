"""SMTP connections opened while the issue compiles and the list is planned.

At a distance, opening a connection costs round trips (TCP, greeting, EHLO, STARTTLS,
EHLO again, AUTH) that a list send used to spend only after its compile and plan pass. A
run that will not stop to ask (``--yes``, or no terminal) opens its connections early,
in an event loop of their own on a background thread, and the engine later runs on that
same loop (``handoff``), taking them as they are.

Nothing is sent early: the engine still decides. An open that failed is kept, not shown,
and raised when the engine takes that connection, so the first connection's failure is
the same one line, at the same point of the run, as when it is opened there. A send that
does not start (a refusal, nobody to send to, a draft, an error in the plan) calls
``close``: each open connection says QUIT, and the loop and its thread end.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable

from gigo_mail.transport import Transport

FRESH_FOR = 30.0  # seconds: an early connection older than this at the hand-off is opened again


class EarlyConnections:
    """``count`` transports from ``make``, opening on a background loop from construction on."""

    def __init__(self, make: Callable[[], Transport], count: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.transports = [make() for _ in range(max(1, count))]
        self.opening: list[asyncio.Task[None]] = []
        self.opened_at = time.monotonic()
        self._handed = False
        self._closed = False
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), name="smtp-early", daemon=True)
        self._thread.start()
        ready.wait()

    def _serve(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.opening = [self.loop.create_task(t.open()) for t in self.transports]
        ready.set()
        self.loop.run_forever()

    def _stop_thread(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join()

    def handoff(self) -> asyncio.AbstractEventLoop:
        """Stop the background thread and give its loop, opens still pending in it, to the caller,
        who runs the engine on it (``asyncio.Runner(loop_factory=...)``) and closes it."""
        self._stop_thread()
        self._handed = True
        return self.loop

    @property
    def stale(self) -> bool:
        return time.monotonic() - self.opened_at > FRESH_FOR

    def close(self) -> None:
        """The send did not start: close every connection unused (QUIT), end the loop and thread.
        Failed opens are collected unseen. Does nothing once handed off (the engine closes them)."""
        if self._handed or self._closed:
            return
        self._closed = True
        self._stop_thread()
        try:
            self.loop.run_until_complete(self._close_all())
        finally:
            self.loop.close()

    async def first(self) -> None:
        """The engine's first connection, as ``open`` would leave it: its early open's failure is
        raised (and the others closed unused, as none would have been opened); an old or
        dropped one is opened again."""
        try:
            if not await take(self.transports[0], self.opening[0], self.stale):
                await self.transports[0].open()
        except BaseException:
            await self._close_all()
            raise

    def rest(self) -> list[tuple[Transport, Awaitable[bool]]]:
        """The other connections, each with the wait for its early open (see ``take``)."""
        stale, pairs = self.stale, zip(self.transports[1:], self.opening[1:], strict=True)
        return [(transport, take(transport, task, stale)) for transport, task in pairs]

    async def _close_all(self) -> None:
        for task in self.opening:
            task.cancel()
        await asyncio.gather(*self.opening, return_exceptions=True)
        for transport in self.transports:
            with contextlib.suppress(Exception):
                await transport.close()


async def take(transport: Transport, opening: asyncio.Task[None], stale: bool) -> bool:
    """Wait for an early open; whether the connection is ready. Its failure is raised (the
    engine treats it as that open's own failure). A connection the server closed meanwhile,
    or an old one, is closed and reported not ready, so the engine opens it again."""
    await opening
    if transport.is_open and not stale:
        return True
    await transport.close()
    return False
