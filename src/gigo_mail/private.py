"""Files that hold addresses or secrets are readable by their owner alone.

The journal, the answers database, the unsubscribe secret, the capture inbox and the sync
cursor all live under ``.gigo/`` and hold readers' addresses or keys. With the usual umask
(022) they were made 0644 in a 0755 folder: readable by every account on a shared server.
Here they are made 0600 in a 0700 folder, and ones left looser by an earlier version are
tightened whenever they are opened. The folder's own mode is the first guard (nobody else
can even list it); the files' modes hold if the folder is ever copied elsewhere.

SQLite makes a database's ``-wal`` and ``-shm`` files with the database file's mode, so a
database created 0600 here keeps its companions private too; existing companions are
tightened with it.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def tighten(path: Path, mode: int = FILE_MODE) -> None:
    """Take group and other permissions off ``path`` if it exists (a no-op if already private).
    A file owned by another account cannot be changed; that is left to its owner."""
    with contextlib.suppress(FileNotFoundError, PermissionError):
        current = stat.S_IMODE(path.stat().st_mode)
        if current & 0o077:
            os.chmod(path, current & mode)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) as needed; ``path`` itself ends up 0700."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    tighten(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Make sure ``path`` exists and is 0600, in a 0700 folder, without changing its content."""
    private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    tighten(path)
    return path


def private_sqlite(path: Path) -> Path:
    """Prepare a SQLite database file and its companions before it is opened: all 0600."""
    private_file(path)
    for suffix in SQLITE_COMPANIONS:
        tighten(path.with_name(path.name + suffix))
    return path


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically, the new file 0600 from its first byte."""
    private_dir(path.parent)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(temp, FILE_MODE)  # O_CREAT's mode does not apply to a leftover temp file
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
