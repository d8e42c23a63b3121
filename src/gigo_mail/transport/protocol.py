"""What the sending engine needs from a destination, and what it hands one.

Shaped like Django's mail backends, made async: ``await open()``, ``await send(...)``,
``await close()``. Its own module, below every destination, so that no destination
imports the package that re-exports it."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Protocol

from gigo_mail.transport.wire import Reply

__all__ = ["BeforeCommit", "Envelope", "Transport"]


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
