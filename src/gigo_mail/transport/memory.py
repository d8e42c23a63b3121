"""A destination in memory: what the engine sent, kept in a list (Django's ``locmem`` backend,
httpx's mock transport). For engine tests and programs that need no socket; the replies can be
scripted per recipient to play a server that refuses, defers or fails."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from gigo_mail.transport.protocol import BeforeCommit, Envelope
from gigo_mail.transport.replies import _error_for
from gigo_mail.transport.wire import Reply

__all__ = ["MemoryTransport", "Outbox", "Sent"]


@dataclass(frozen=True, slots=True)
class Sent:
    """One transaction the transport accepted."""

    sender: str
    recipient: str
    data: bytes
    smtputf8: bool


@dataclass
class Outbox:
    """Shared by every connection of one pool, as one server's mailbox would be."""

    sent: list[Sent] = field(default_factory=list)
    connections: int = 0


class MemoryTransport:
    """One "connection" to an :class:`Outbox`. ``reply(recipient)`` decides each answer (250 by
    default); a 2xx keeps the message, any other is raised as the SMTP transport raises a refusal
    at RCPT (the same rule decides whom it is about). ``before_commit`` runs before a message is
    kept, as it runs before the final dot on the wire."""

    def __init__(self, outbox: Outbox | None = None, *,
                 reply: Callable[[str], Reply] | None = None) -> None:
        self.outbox = outbox if outbox is not None else Outbox()
        self._reply = reply or (lambda _recipient: Reply(250, "2.0.0 kept"))
        self.messages = 0
        self._open = False

    @property
    def sent(self) -> list[Sent]:
        return self.outbox.sent

    @property
    def is_open(self) -> bool:
        return self._open

    async def open(self) -> None:
        self._open = True
        self.messages = 0
        self.outbox.connections += 1

    async def send(self, sender: str, recipient: str, data: bytes, *, smtputf8: bool = False,
                   before_commit: BeforeCommit | None = None, wire: bytes | None = None,
                   then: Envelope | None = None) -> Reply:
        if not self._open:
            raise ConnectionError("the memory transport is not open")
        self.messages += 1
        reply = self._reply(recipient)
        if not 200 <= reply.code < 300:
            raise _error_for(reply, "RCPT TO", recipient, "the memory transport")
        if before_commit is not None and (pending := before_commit()) is not None:
            await pending
        self.outbox.sent.append(Sent(sender, recipient, data, smtputf8))
        return reply

    async def close(self) -> None:
        self._open = False
