"""The signup store: people who asked to join, who confirmed, and the proof of their consent.

One SQLite file, ``.gigo/signups.sqlite3`` (mode 0600: it holds addresses), kept by the
public page and read by ``subscribers pull`` (in the same folder, or on the sending
machine after a pull over HTTPS, so the evidence lives where the list does):

* ``pending``: a signup waiting for its confirmation (the random id in the mail's link);
* ``confirmed``: each confirmation, in order (``seq`` is the pull cursor), with the evidence
  a sender must be able to print: signup and confirmation time, the consent text's version
  and hash, the page the form was on, and (opt-in) a truncated IP;
* ``consent_texts``: every consent text by its hash, so the whole wording is kept;
* ``used_proofs``: proof-of-work challenges already spent, until they expire (no replay);
* ``mails``: when a confirmation mail went to an address (at most one more per hour);
* ``meta``: cursors (what was pulled from the page, what went into the list).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gigo_mail.errors import JournalError
from gigo_mail.journal.store import connect, immediate

STORE_NAME = "signups.sqlite3"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (
    id TEXT PRIMARY KEY, key TEXT NOT NULL, email TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',
    signup_at TEXT NOT NULL, consent_version TEXT NOT NULL, consent_hash TEXT NOT NULL,
    page TEXT NOT NULL DEFAULT '', ip TEXT NOT NULL DEFAULT '', mailed_at REAL NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS pending_key ON pending (key);
CREATE TABLE IF NOT EXISTS confirmed (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, email TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '', signup_at TEXT NOT NULL, confirmed_at TEXT NOT NULL,
    consent_version TEXT NOT NULL, consent_hash TEXT NOT NULL, page TEXT NOT NULL DEFAULT '',
    ip TEXT NOT NULL DEFAULT '', source TEXT NOT NULL DEFAULT 'signup page',
    UNIQUE (key, confirmed_at));
CREATE INDEX IF NOT EXISTS confirmed_key ON confirmed (key);
CREATE TABLE IF NOT EXISTS consent_texts (hash TEXT PRIMARY KEY, version TEXT NOT NULL, text TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS used_proofs (id TEXT PRIMARY KEY, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS mails (key TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS mails_key ON mails (key, at);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Pending:
    id: str
    key: str
    email: str
    name: str
    signup_at: str
    consent_version: str
    consent_hash: str
    page: str
    ip: str
    mailed_at: float


@dataclass(frozen=True)
class Confirmation:
    """One confirmed signup with its evidence (``seq`` orders them for pulls)."""

    seq: int
    key: str
    email: str
    name: str
    signup_at: str
    confirmed_at: str
    consent_version: str
    consent_hash: str
    page: str
    ip: str
    source: str

    def as_dict(self) -> dict[str, object]:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


_CONFIRMED_COLUMNS = ("seq, key, email, name, signup_at, confirmed_at, consent_version, consent_hash, page, "
                      "ip, source")


class SignupStore:
    """The page's pending and confirmed signups; safe to share between the page's threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._db = connect(self.path, "signup store")  # 0600, WAL, the one way every file is opened
        try:
            self._db.execute("PRAGMA secure_delete = ON")  # an erased address leaves no bytes behind
            with self._transaction():
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
        except sqlite3.Error as exc:
            self._db.close()
            raise JournalError(f"{self.path}: cannot use the signup store: {exc}; if the file is damaged, "
                               "move it aside (its signups and consent evidence are then lost)") from None

    @classmethod
    def for_state(cls, state_dir: Path) -> SignupStore:
        return cls(Path(state_dir) / STORE_NAME)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SignupStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock, immediate(self._db):
            yield

    def _fail(self, action: str, exc: sqlite3.Error) -> JournalError:
        return JournalError(f"{self.path}: cannot {action}: {exc}")

    # --- the page ---------------------------------------------------------------------------

    def spend_proof(self, proof_id: str, expires: float) -> bool:
        """Record a proof of work as used; False when it was used before (a replay)."""
        now = time.time()
        try:
            with self._transaction():
                self._db.execute("DELETE FROM used_proofs WHERE expires < ?", (now - 60,))
                cursor = self._db.execute("INSERT OR IGNORE INTO used_proofs (id, expires) VALUES (?, ?)",
                                          (proof_id, expires))
                return cursor.rowcount == 1
        except sqlite3.Error as exc:
            raise self._fail("record a proof of work", exc) from None

    def remember_consent_text(self, digest: str, version: str, text: str) -> None:
        try:
            with self._transaction():
                self._db.execute("INSERT OR IGNORE INTO consent_texts (hash, version, text) VALUES (?, ?, ?)",
                                 (digest, version, text))
        except sqlite3.Error as exc:
            raise self._fail("record the consent text", exc) from None

    def consent_text(self, digest: str) -> tuple[str, str] | None:
        """(version, text) of a consent text by its hash."""
        row = self._db.execute("SELECT version, text FROM consent_texts WHERE hash = ?", (digest,)).fetchone()
        return (row[0], row[1]) if row else None

    def add_pending(self, pending: Pending, forget_before: float) -> None:
        """Record a signup; unconfirmed ones mailed before ``forget_before`` (their link has
        expired) are deleted on the way: an address nobody confirmed is not kept."""
        try:
            with self._transaction():
                self._db.execute("DELETE FROM pending WHERE mailed_at < ?", (forget_before,))
                self._db.execute("INSERT INTO pending VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                 (pending.id, pending.key, pending.email, pending.name, pending.signup_at,
                                  pending.consent_version, pending.consent_hash, pending.page, pending.ip,
                                  pending.mailed_at))
        except sqlite3.Error as exc:
            raise self._fail("record a signup", exc) from None

    def pending(self, pending_id: str) -> Pending | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM pending WHERE id = ?", (pending_id,)).fetchone()
        return Pending(*row) if row else None

    def mails_since(self, key: str, since: float) -> int:
        """Confirmation mails sent to this address since ``since`` (a Unix time)."""
        with self._lock:
            row = self._db.execute("SELECT COUNT(*) FROM mails WHERE key = ? AND at >= ?",
                                   (key, since)).fetchone()
        return int(row[0])

    def record_mail(self, key: str, at: float) -> None:
        try:
            with self._transaction():
                self._db.execute("DELETE FROM mails WHERE at < ?", (at - 86400,))
                self._db.execute("INSERT INTO mails (key, at) VALUES (?, ?)", (key, at))
        except sqlite3.Error as exc:
            raise self._fail("record a confirmation mail", exc) from None

    def confirm(self, pending_id: str, confirmed_at: str) -> Confirmation | None:
        """Turn a pending signup into a confirmation (once: a second confirm finds nothing)."""
        try:
            with self._transaction():
                row = self._db.execute("SELECT * FROM pending WHERE id = ?", (pending_id,)).fetchone()
                if row is None:
                    return None
                p = Pending(*row)
                self._db.execute("DELETE FROM pending WHERE key = ?", (p.key,))
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO confirmed (key, email, name, signup_at, confirmed_at, "
                    "consent_version, consent_hash, page, ip) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (p.key, p.email, p.name, p.signup_at, confirmed_at, p.consent_version, p.consent_hash,
                     p.page, p.ip))
                seq = cursor.lastrowid or 0
        except sqlite3.Error as exc:
            raise self._fail("record a confirmation", exc) from None
        return Confirmation(seq, p.key, p.email, p.name, p.signup_at, confirmed_at, p.consent_version,
                            p.consent_hash, p.page, p.ip, "signup page")

    # --- pulls and evidence -----------------------------------------------------------------

    def confirmations_after(self, seq: int, limit: int) -> list[Confirmation]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_CONFIRMED_COLUMNS} FROM confirmed WHERE seq > ? ORDER BY seq "
                                    "LIMIT ?", (seq, limit)).fetchall()
        return [Confirmation(*row) for row in rows]

    def add_confirmations(self, items: Iterable[Confirmation]) -> int:
        """Store confirmations pulled from the page (their evidence); return how many were new."""
        rows = [(c.key, c.email, c.name, c.signup_at, c.confirmed_at, c.consent_version, c.consent_hash,
                 c.page, c.ip, c.source) for c in items]
        try:
            with self._transaction():
                before = self._db.total_changes
                self._db.executemany(
                    "INSERT OR IGNORE INTO confirmed (key, email, name, signup_at, confirmed_at, "
                    "consent_version, consent_hash, page, ip, source) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
                return self._db.total_changes - before
        except sqlite3.Error as exc:
            raise self._fail("store pulled confirmations", exc) from None

    def evidence(self, key: str) -> list[Confirmation]:
        """Every confirmation of this address, oldest first."""
        with self._lock:
            rows = self._db.execute(f"SELECT {_CONFIRMED_COLUMNS} FROM confirmed WHERE key = ? ORDER BY seq",
                                    (key,)).fetchall()
        return [Confirmation(*row) for row in rows]

    def forget(self, key: str) -> int:
        """Erase every pending and confirmed row of this address; return how many rows went."""
        try:
            with self._transaction():
                gone = self._db.execute("DELETE FROM pending WHERE key = ?", (key,)).rowcount
                gone += self._db.execute("DELETE FROM confirmed WHERE key = ?", (key,)).rowcount
                self._db.execute("DELETE FROM mails WHERE key = ?", (key,))
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            raise self._fail("erase an address", exc) from None
        return gone

    def get_meta(self, name: str, default: str = "") -> str:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return str(row[0]) if row else default

    def set_meta(self, name: str, value: str) -> None:
        try:
            with self._transaction():
                self._db.execute("INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE "
                                 "SET value = excluded.value", (name, value))
        except sqlite3.Error as exc:
            raise self._fail("save a cursor", exc) from None
