"""Transports: where built messages go (an SMTP server, or .eml files for a dry run).

Shaped like Django's mail backends, made async: ``await open()``, ``await send(...)``,
``await close()``. One SmtpTransport is one persistent SMTP connection; the sending
engine runs a pool of them.

The SMTP connection lives in :mod:`gigo_mail.smtp_transport`, its URL and endpoint in
:mod:`gigo_mail.smtp_url`, the reading of its replies in :mod:`gigo_mail.smtp_replies`;
their public names are imported from here.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .errors import ConfigError, SMTPConnectFailed
from .smtp_replies import enhanced_status
from .smtp_transport import SmtpTransport
from .smtp_url import SmtpEndpoint, SmtpUrl, make_tls_context, parse_smtp_url
from .wire import Reply, dot_stuff

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
