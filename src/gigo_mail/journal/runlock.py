"""One sender per issue: an exclusive lock file per issue while a run is going.

``flock`` rather than a pid in the journal: the OS drops the lock when the process
dies, even by ``kill -9``, so a crashed run never blocks the next one, and a reused
pid can never pass for a live sender.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import IO

from gigo_mail.errors import JournalError

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX: no cross-process run lock
    fcntl = None  # type: ignore[assignment]


class RunLocks:
    """The run locks this process holds, as ``<folder>/run-<issue>.lock`` files."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._held: dict[str, IO[bytes]] = {}

    def path(self, issue_key: str) -> Path:
        return self.folder / f"run-{re.sub(r'[^A-Za-z0-9_.-]', '_', issue_key)}.lock"

    def take(self, issue_key: str) -> None:
        """Hold the lock of ``issue_key``; JournalError naming the holder if another has it."""
        if fcntl is None or issue_key in self._held:
            return
        handle = self.path(issue_key).open("a+b")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().decode(errors="replace").strip() or "?"
            handle.close()
            raise JournalError(f"issue {issue_key} is being sent by another gigo-mail process "
                               f"(pid {holder}); wait for it to finish or stop it first") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()).encode())
        handle.flush()
        self._held[issue_key] = handle

    def release(self, issue_key: str) -> None:
        handle = self._held.pop(issue_key, None)
        if handle is not None:
            handle.close()

    def active(self, issue_key: str) -> bool:
        """Whether some process (this one included) holds the lock of ``issue_key``."""
        if issue_key in self._held:
            return True
        path = self.path(issue_key)
        if fcntl is None or not path.exists():
            return False
        with path.open("rb") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            return False

    def close(self) -> None:
        for issue_key in list(self._held):
            self.release(issue_key)
