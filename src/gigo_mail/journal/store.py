"""The journal's file: one SQLite connection, its lock, its schema, its transactions and how
its errors read. :class:`gigo_mail.journal.Journal` and its parts (``journal_suppressions``,
``journal_bounces``) all work through it.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from gigo_mail.errors import JournalError
from gigo_mail.journal.schema import ADDED_COLUMNS, ADDED_INDEXES, SCHEMA, SCHEMA_VERSION
from gigo_mail.private import private_sqlite

BUSY_TIMEOUT_MS = 10_000
# A send touches a few pages of each index per message, at random places (keys and Message-IDs are
# in no order): with SQLite's default 2 MB cache those pages are read from the file again and
# again once a journal outgrows it. Up to 32 MB (a negative size is in KiB; only what is read is
# held); and the write-ahead log is copied into the file every 16 MB instead of every 4 MB (a
# copy ends with an fsync, which a send then waits for).
CACHE_KIB = -32_768
CHECKPOINT_PAGES = 4_000


@contextmanager
def immediate(db: sqlite3.Connection) -> Iterator[None]:
    """One write transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``) on a connection in autocommit mode,
    rolled back on any exception; a rollback that fails too does not hide the first error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        with suppress(sqlite3.Error):
            if db.in_transaction:
                db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def connect(path: Path, what: str) -> sqlite3.Connection:
    """Open one of gigo-mail's SQLite files (``what``: "delivery journal", "answers store") the one
    way they are all opened: autocommit with explicit transactions, WAL, ``synchronous = NORMAL``,
    the same busy timeout, readable by the owner alone; any failure is one JournalError line
    naming the file."""
    try:
        private_sqlite(path)  # addresses: 0600 in a 0700 folder, its -wal and -shm too
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                             timeout=BUSY_TIMEOUT_MS / 1000)
    except (OSError, sqlite3.Error) as exc:
        raise JournalError(f"{path}: cannot open the {what}: {exc}; "
                           "check that the folder is writable") from None
    try:
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.DatabaseError(f"cannot switch to WAL mode (got {mode})")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute(f"PRAGMA cache_size = {CACHE_KIB}")
        db.execute(f"PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES}")
    except sqlite3.DatabaseError as exc:
        db.close()
        raise JournalError(f"{path}: cannot use the {what}: {exc}; if the file is damaged, move it "
                           "aside (what it recorded is then forgotten)") from None
    return db


class JournalStore:
    """Opens (and if need be creates or upgrades) the journal file."""

    _suppressions_changed = 0  # suppression list changes through this connection (data_version: others')

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()  # re-entrant: a grouped commit may be flushed inside a transaction
        self._db = connect(self.path, "delivery journal")
        try:
            self._setup()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise JournalError(f"{self.path}: cannot use the delivery journal: {exc}; "
                               "if the file is damaged, move it aside (sent mail will then be "
                               "forgotten)") from None

    def _setup(self) -> None:
        db = self._db
        with self._transaction():
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            for table, column, declaration in ADDED_COLUMNS:
                present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
                if column not in present:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
            for statement in ADDED_INDEXES:
                db.execute(statement)
            row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
            version = row[0]
            if version is None:
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            elif version > SCHEMA_VERSION:
                raise sqlite3.DatabaseError(
                    f"it was written by a newer gigo-mail (schema {version}, this one knows "
                    f"{SCHEMA_VERSION}); upgrade gigo-mail")

    def _flush_group(self) -> None:
        """Commit what a send run has open before a transaction of its own (the Journal's)."""

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._flush_group()
        with immediate(self._db):
            yield

    @contextmanager
    def _failing(self, action: str) -> Iterator[None]:
        """Any SQLite error inside becomes one JournalError line naming the file and ``action``."""
        try:
            yield
        except sqlite3.Error as exc:
            raise self._fail(action, exc) from None

    def _fail(self, action: str, exc: sqlite3.Error) -> JournalError:
        text = str(exc)
        if "locked" in text or "busy" in text:
            text += " (another gigo-mail process holds it; try again when it is done)"
        elif "full" in text:  # SQLITE_FULL: "database or disk is full"
            text += " (free some disk space, then run the same command again to resume)"
        return JournalError(f"{self.path}: cannot {action}: {text}")
