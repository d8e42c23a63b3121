"""The suppression list: addresses never to be mailed again, whoever's list they are on.
Part of :class:`gigo_mail.journal.Journal` (same file, connection and transactions).

An erased address (``subscribers forget``) stays only as a suppression by its key's SHA-256
(``hashed_key``): enough to refuse it in any list, not to read it.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Iterable, Iterator

from gigo_mail.address import address_key
from gigo_mail.journal.schema import ADD_SUPPRESSION, Suppression, now
from gigo_mail.journal.store import JournalStore

FORGOTTEN = "erased on request"


HASHED_PREFIX = "sha256:"


def hashed_key(key: str) -> str:
    """What stays of an erased address: its key's SHA-256, enough to refuse it, not to read it."""
    return HASHED_PREFIX + hashlib.sha256(key.encode("utf-8")).hexdigest()


def rejoinable(reason: str) -> bool:
    """Whether a new double opt-in lifts a suppression: an unsubscribe (by link, one click, mail
    or by hand on request) yes; a hard bounce, a complaint or soft bounces never (removed by hand)."""
    lowered = reason.lower()
    return "unsubscribe" in lowered and not any(word in lowered for word in ("bounce", "complaint"))


class SuppressionList(JournalStore):
    """Adding to, taking off and reading the ``suppressed`` table."""

    def suppression_check(self, every: float = 0.1) -> Callable[[str], bool]:
        """``is_suppressed`` of a row's key for a pass over a list, answered from a set: the list is read
        once, and again when it has changed (through this journal, or by another process: a click on
        the one-click page), looked for at most ``every`` seconds apart. That is no staler than the
        rows a send has read ahead of its connections, and a row costs a set lookup, not a query."""
        keys: set[str] = set()
        erased = False  # the list holds erased addresses (by hashed key): look those up too
        seen: tuple[int, int] | None = None
        checked = float("-inf")

        def suppressed(key: str) -> bool:
            nonlocal keys, erased, seen, checked
            now = time.monotonic()
            if now - checked >= every:
                checked = now
                version = self._suppression_version()
                if version != seen:
                    keys, seen = self.suppressed_keys(), version
                    erased = any(k.startswith(HASHED_PREFIX) for k in keys)
            return key in keys or (erased and hashed_key(key) in keys)

        return suppressed

    def _suppression_version(self) -> tuple[int, int]:
        with self._failing("read the suppression list"):
            return int(self._db.execute("PRAGMA data_version").fetchone()[0]), self._suppressions_changed

    @contextlib.contextmanager
    def _counted(self) -> Iterator[None]:
        """A change to the suppression list through this connection (counted even if it fails)."""
        try:
            yield
        finally:
            self._suppressions_changed += 1

    def suppress(self, emails: Iterable[str], reason: str) -> int:
        """Add addresses to the suppression list; return how many were not on it yet (an erased
        address is on it already, by its hashed key, and is not written again)."""
        added = 0
        at = now()
        with self._failing("update the suppression list"), self._counted(), self._lock, self._transaction():
            for email in emails:
                text = email.strip()
                key = address_key(text)
                cursor = self._db.execute(ADD_SUPPRESSION, (key, text, reason, at, hashed_key(key)))
                added += cursor.rowcount
        return added

    def suppress_each(self, entries: Iterable[tuple[str, str]]) -> tuple[int, int]:
        """Add (address, reason) pairs in one transaction, streamed: (added, given). An error
        raised by ``entries`` (an import that finds a bad row) rolls every one of them back."""
        at = now()
        given = 0

        def rows() -> Iterator[tuple[str, str, str, str, str]]:
            nonlocal given
            for email, reason in entries:
                text = email.strip()
                given += 1
                key = address_key(text)
                yield key, text, reason, at, hashed_key(key)

        with self._failing("update the suppression list"), self._counted(), self._lock, self._big_cache(), \
                self._transaction():
            before = self._db.total_changes
            self._db.executemany(ADD_SUPPRESSION, rows())
            added = self._db.total_changes - before
        return added, given

    @contextlib.contextmanager
    def _big_cache(self) -> Iterator[None]:
        """A 64 MB page cache for a big import: a million random keys into the B-tree spill the
        default 2 MB cache to the WAL over and over (1.2 M inserts: 5.3 s instead of 7.5 s)."""
        size = self._db.execute("PRAGMA cache_size").fetchone()[0]
        self._db.execute("PRAGMA cache_size = -65536")
        try:
            yield
        finally:
            self._db.execute(f"PRAGMA cache_size = {int(size)}")

    def unsuppress(self, emails: Iterable[str]) -> int:
        """Take addresses off the suppression list (a re-subscribe); return how many were on it."""
        removed = 0
        with self._failing("update the suppression list"), self._counted(), self._lock, self._transaction():
            for email in emails:
                cursor = self._db.execute("DELETE FROM suppressed WHERE key = ?", (address_key(email),))
                removed += cursor.rowcount
        return removed

    def is_suppressed(self, address: str) -> bool:
        """Whether an address (in any spelling, or its key) must not be mailed; an erased one too."""
        key = address_key(address)
        with self._failing("read the suppression list"):
            row = self._db.execute("SELECT 1 FROM suppressed WHERE key IN (?, ?)",
                                   (key, hashed_key(key))).fetchone()
        return row is not None

    def suppression(self, address: str) -> Suppression | None:
        """The suppression of an address, if any (its reason and time)."""
        with self._failing("read the suppression list"):
            row = self._db.execute("SELECT key, email, reason, at FROM suppressed WHERE key = ?",
                                   (address_key(address),)).fetchone()
        return Suppression(*row) if row else None

    def forget(self, address: str) -> int:
        """Erase an address from the journal (deliveries keep their rows under the hashed key and no
        address, soft bounces go, its suppression becomes a hashed one); return how many rows held it.
        SQLite overwrites the freed bytes (secure_delete) and the write-ahead log is emptied."""
        key = address_key(address)
        hashed = hashed_key(key)
        with self._failing("erase an address"), self._counted():
            self._db.execute("PRAGMA secure_delete = ON")
            with self._lock, self._transaction():
                changed = self._db.execute("DELETE FROM suppressed WHERE key = ?", (key,)).rowcount
                changed += self._db.execute("DELETE FROM soft_bounces WHERE key = ?", (key,)).rowcount
                self._db.execute("DELETE FROM deliveries WHERE key = ? AND issue_key IN "
                                 "(SELECT issue_key FROM deliveries WHERE key = ?)", (hashed, key))
                changed += self._db.execute("UPDATE deliveries SET key = ?, email = '', text = '' "
                                            "WHERE key = ?", (hashed, key)).rowcount
                self._db.execute("INSERT OR REPLACE INTO suppressed (key, email, reason, at) "
                                 "VALUES (?, '', ?, ?)", (hashed, FORGOTTEN, now()))
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return changed

    def suppressed_keys(self) -> set[str]:
        with self._failing("read the suppression list"):
            return {row[0] for row in self._db.execute("SELECT key FROM suppressed")}

    def suppressions(self) -> list[Suppression]:
        """The suppression list, oldest first."""
        with self._failing("read the suppression list"):
            rows = self._db.execute("SELECT key, email, reason, at FROM suppressed ORDER BY at, key")
            return [Suppression(*row) for row in rows]

    def suppressions_since(self, at: str, key: str = "", limit: int = 1000) -> list[Suppression]:
        """Suppressions after the cursor (``at``, ``key``), oldest first: one page of a sync. An erased
        address's hashed suppression stays here (it has no address to send)."""
        with self._failing("read the suppression list"):
            rows = self._db.execute("SELECT key, email, reason, at FROM suppressed WHERE (at, key) > (?, ?) "
                                    "AND email != '' ORDER BY at, key LIMIT ?", (at, key, limit))
            return [Suppression(*row) for row in rows]
