"""The dry run's destination: each message written to an .eml file (or only counted)."""

from __future__ import annotations

import re
from pathlib import Path

from gigo_mail.errors import ConfigError
from gigo_mail.transport.protocol import BeforeCommit, Envelope
from gigo_mail.transport.wire import Reply

__all__ = ["FileTransport"]

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
