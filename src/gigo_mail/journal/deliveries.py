"""The delivery journal: what was sent to whom, so that nothing is sent twice.

One SQLite file per newsletter, ``<root>/.gigo/journal.sqlite3`` (stdlib sqlite3,
WAL, ``synchronous=NORMAL``), with one row per (issue, recipient key) in
``deliveries``, one row per send attempt of an issue in ``runs``, and the
newsletter's suppression list in ``suppressed``.

How a recipient moves through it::

    (no row) --mark_sending--> sending --mark_sent-----> sent
                                       \\--mark_failed--> failed (permanent or not)

``mark_sending`` is written just before the final dot of DATA; ``mark_sent`` only
after the server's 250 for that DATA. Every mark commits at once: after a
``kill -9`` or a crash, everything marked before it is in the file (WAL with
``synchronous=NORMAL`` survives a killed process; only a power cut may lose the
last few commits).

A send run commits in groups instead (:meth:`Journal.group_commits`, ``journal.groups``):
the marks of one event-loop turn go into one transaction (``executemany``, one timestamp),
committed at the end of the turn; a sender awaits :meth:`Journal.committed` after
``mark_sending``, so no final dot leaves before its ``sending`` mark is in the file, and
the connections whose replies came in the same turn share the commit. A 250's ``sent``
mark is not waited for: it is counted once its commit lands (:meth:`Journal.when_committed`),
usually with the next message's ``sending``. A crash can then lose only marks
whose outcome is still open on the wire (an uncommitted ``sent`` leaves the
recipient ``sending``: uncertain, never silently lost).

The one unavoidable window: the server has accepted a message (sent its 250) but
the process dies before ``mark_sent`` commits. No journal can close it, because
the acceptance and the record are two different machines. The ``sending`` state
makes that window visible instead of silent: a recipient still in ``sending`` when
a run resumes may or may not have the message. Such recipients are *uncertain*
(:meth:`Journal.uncertain` lists them) and are re-sent only when the user asks for
it explicitly; the default is to risk a missing email rather than a duplicate.

Who is sent on resume is decided in one place, ``selection.Selector``, from the
records kept here.

Two processes must never send the same issue at once: :meth:`Journal.begin_run`
takes an exclusive lock (``.gigo/run-<issue>.lock``, released by the OS if the
process dies) and refuses a second run. Runs that never reached ``end_run``
(their process was killed) are closed as ``unfinished`` by the next run.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gigo_mail.address import AddressKey, address_key
from gigo_mail.config import JOURNAL_NAME, journal_path
from gigo_mail.errors import JournalError
from gigo_mail.journal.bounces import BounceRecords
from gigo_mail.journal.groups import GroupedMarks
from gigo_mail.journal.runlock import RunLocks
from gigo_mail.journal.schema import (
    ISSUE_KEYS,
    MARK_OUTCOME,
    MARK_SENDING,
    RECORD_COLUMNS,
    SCHEMA_VERSION,
    Record,
    Run,
    Suppression,
    now,
    record_from_row,
)
from gigo_mail.journal.suppressions import SuppressionList

if TYPE_CHECKING:  # only a send run groups commits; status and friends need no event loop
    pass

__all__ = ["JOURNAL_NAME", "OUTCOMES", "SCHEMA_VERSION", "STATUSES", "UNFINISHED", "Journal", "Record", "Run",
           "Suppression"]

STATUSES = ("pending", "sending", "sent", "failed")
OUTCOMES = ("complete", "unresolved", "interrupted", "stopped", "failed")
UNFINISHED = "unfinished"  # outcome of a run whose process died before end_run


class Journal(SuppressionList, BounceRecords, GroupedMarks):
    """The delivery journal of one newsletter. Use as a context manager."""

    def __init__(self, path: Path) -> None:
        self._run_id: int | None = None
        super().__init__(path)
        self._run_locks = RunLocks(self.path.parent)

    @classmethod
    def for_root(cls, root: Path) -> Journal:
        """The journal of the newsletter at ``root`` (``<root>/.gigo/journal.sqlite3``)."""
        return cls(journal_path(root))

    @classmethod
    def existing(cls, root: Path) -> Journal | None:
        """The journal at ``root`` if there is one: read-only commands and dry runs create no state."""
        path = journal_path(root)
        return cls(path) if path.is_file() else None

    # --- lifecycle -------------------------------------------------------------------------------

    def close(self) -> None:
        self.group_commits(None)
        self._run_locks.close()
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- runs --------------------------------------------------------------------------------------

    def run_active(self, issue_key: str) -> bool:
        """Whether some process (this one included) is sending ``issue_key`` right now."""
        return self._run_locks.active(issue_key)

    def begin_run(self, issue_key: str, total: int | None, segment: str = "") -> int:
        """Start a run (``total`` recipients if known, of ``segment``, "" for the whole list);
        JournalError if one is already sending it."""
        self._run_locks.take(issue_key)
        try:
            with self._lock, self._transaction():
                self._close_unfinished(issue_key)
                cursor = self._db.execute(
                    "INSERT INTO runs (issue_key, started, total, pid, segment) VALUES (?, ?, ?, ?, ?)",
                    (issue_key, now(), total, os.getpid(), segment))
        except sqlite3.Error as exc:
            self._run_locks.release(issue_key)
            raise self._fail("record the start of a run", exc) from None
        self._run_id = cursor.lastrowid
        return int(cursor.lastrowid or 0)

    def _close_unfinished(self, issue_key: str) -> None:
        """Runs left open by a process that died: end them at their last mark."""
        rows = self._db.execute("SELECT id FROM runs WHERE issue_key = ? AND ended IS NULL",
                                (issue_key,)).fetchall()
        for (run_id,) in rows:
            counts, last = self._run_counts(run_id)
            self._db.execute(
                "UPDATE runs SET ended = COALESCE(?, started), outcome = ?, counts = ? WHERE id = ?",
                (last, UNFINISHED, json.dumps(counts), run_id))

    def _run_counts(self, run_id: int) -> tuple[dict[str, int], str | None]:
        rows = self._db.execute(
            "SELECT status, COUNT(*), MAX(updated_at) FROM deliveries WHERE run_id = ? GROUP BY status",
            (run_id,)).fetchall()
        counts = {status: count for status, count, _ in rows}
        last = max((at for _, _, at in rows), default=None)
        return counts, last

    def delivered_in_run(self, run_id: int) -> int:
        """How many recipients this run's marks record as delivered: the figure its report shows."""
        with self._failing("read the journal"), self._lock:
            return self._run_counts(run_id)[0].get("sent", 0)

    def end_run(self, run_id: int, outcome: str) -> None:
        """Close a run with its outcome: complete, interrupted, stopped or failed."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, not {outcome!r}")
        with self._failing("record the end of a run"), self._lock, self._transaction():
            row = self._db.execute("SELECT issue_key FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise JournalError(f"{self.path}: no run {run_id} to end")
            counts, _ = self._run_counts(run_id)
            self._db.execute("UPDATE runs SET ended = ?, outcome = ?, counts = ? WHERE id = ?",
                             (now(), outcome, json.dumps(counts), run_id))
        if self._run_id == run_id:
            self._run_id = None
        self._run_locks.release(row[0])

    def runs(self, issue_key: str) -> list[Run]:
        """Every run of an issue, oldest first. A run still going has ``outcome`` None and
        ``ended`` now; one whose process died is ``unfinished``, ended at its last mark."""
        with self._failing("read the runs"):
            rows = self._db.execute(
                "SELECT id, issue_key, started, ended, outcome, total, counts, segment FROM runs "
                "WHERE issue_key = ? ORDER BY id", (issue_key,)).fetchall()
            result = []
            for run_id, key, started, ended, outcome, total, counts, segment in rows:
                values = json.loads(counts or "{}")
                if ended is None:  # running, or its process died and no run has closed it yet
                    values, last = self._run_counts(run_id)
                    outcome = None if self.run_active(key) else UNFINISHED
                    ended = last if outcome else now()
                result.append(Run(run_id, key, started, ended, outcome, total, values, segment or ""))
            return result

    # --- deliveries --------------------------------------------------------------------------------

    def mark_sending(self, issue_key: str, key: AddressKey, email: str, message_id: str,
                     verp_tag: int | None = None) -> None:
        """Just before DATA's final dot: from here until mark_sent the outcome is uncertain.
        ``verp_tag``: the lookup tag of the message's VERP return address (``send.verp``), if it has one."""
        at = self._stamp()
        self._mark(MARK_SENDING, (issue_key, key, email, "sending", None, "", message_id, 0,
                                   self._run_id, at, at, verp_tag), "record a send")

    def mark_sent(self, issue_key: str, key: AddressKey, email: str, message_id: str, code: int | None,
                  text: str, verp_tag: int | None = None) -> None:
        """After the server's 250 for DATA; committed before this returns. ``verp_tag`` counts only
        for a recipient never marked ``sending`` (its mark keeps the tag)."""
        at = self._stamp()
        self._mark(MARK_OUTCOME, (issue_key, key, email, "sent", code, text or "", message_id or "", 0,
                                   self._run_id, at, at, verp_tag), "record a delivery")

    def mark_failed(self, issue_key: str, key: AddressKey, email: str, code: int | None, text: str,
                    permanent: bool) -> None:
        """A refusal (``permanent``: a 5xx that retrying will not fix) or a transient failure."""
        at = self._stamp()
        self._mark(MARK_OUTCOME, (issue_key, key, email, "failed", code, text or "", "", int(permanent),
                                   self._run_id, at, at, None), "record a failure")

    def mark_uncertain(self, issue_key: str, key: AddressKey, email: str, text: str,
                       code: int | None = None) -> None:
        """The final dot went out and no reply came: it stays ``sending`` (its Message-ID kept),
        with the reason."""
        at = self._stamp()
        self._mark(MARK_OUTCOME, (issue_key, key, email, "sending", code, text or "", "", 0,
                                   self._run_id, at, at, None), "record an uncertain send")

    def mark_untried(self, issue_key: str, key: AddressKey, email: str, code: int | None, text: str) -> None:
        """Back to ``pending``: a refusal about the session, not this recipient (the next run sends)."""
        at = self._stamp()
        self._mark(MARK_OUTCOME, (issue_key, key, email, "pending", code, text or "", "", 0,
                                   self._run_id, at, at, None), "record a recipient")

    def accept_uncertain(self, issue_key: str) -> int:
        """Record every uncertain recipient of an issue as delivered; return how many."""
        return self._bulk("UPDATE deliveries SET status = 'sent', text = 'accepted as delivered (was "
                          "uncertain)', updated_at = ? WHERE issue_key = ? AND status = 'sending'",
                          (now(), issue_key),
                          issue_key, "accept the uncertain recipients")

    def requeue_failed(self, issue_key: str, code: str) -> int:
        """Return failed recipients whose reply was ``code`` (554, or an enhanced 5.7.1) to the
        queue, so the next run sends them; real bounces with other codes stay failed."""
        params: tuple[Any, ...]
        if code.isdigit():
            where, params = "code = ?", (int(code),)
        else:  # an enhanced status starts the reply text: "5.7.1 <a@b>: Relay access denied"
            where, params = "(text = ? OR substr(text, 1, ?) = ?)", (code, len(code) + 1, code + " ")
        return self._bulk(f"UPDATE deliveries SET status = 'pending', permanent = 0, updated_at = ? "
                          f"WHERE issue_key = ? AND status = 'failed' AND {where}",
                          (now(), issue_key, *params),
                          issue_key, "return recipients to the queue")

    def _bulk(self, sql: str, params: tuple[Any, ...], issue_key: str, action: str) -> int:
        """A change to many rows, refused while a send of the issue is running."""
        if self.run_active(issue_key):
            raise JournalError(f"issue {issue_key} is being sent right now; {action} when that run is done")
        with self._failing(action), self._lock, self._transaction():
            return int(self._db.execute(sql, params).rowcount)

    def counts(self, issue_key: str) -> dict[str, int]:
        """Recipients per status (every status present, zero if none)."""
        with self._failing("read the journal"):
            rows = self._db.execute("SELECT status, COUNT(*) FROM deliveries WHERE issue_key = ? "
                                    "GROUP BY status", (issue_key,)).fetchall()
        return dict.fromkeys(STATUSES, 0) | dict(rows)

    def _records(self, issue_key: str, status: str, limit: int | None) -> list[Record]:
        sql = (f"SELECT {RECORD_COLUMNS} FROM deliveries WHERE issue_key = ? AND status = ? "
               "ORDER BY updated_at, key")
        params: tuple[Any, ...] = (issue_key, status)
        if limit is not None:
            sql += " LIMIT ?"
            params += (limit,)
        with self._failing("read the journal"):
            return [record_from_row(row) for row in self._db.execute(sql, params)]

    def failures(self, issue_key: str, limit: int | None = None) -> list[Record]:
        """Failed recipients, oldest failure first."""
        return self._records(issue_key, "failed", limit)

    def uncertain(self, issue_key: str, limit: int | None = None) -> list[Record]:
        """Recipients left in ``sending``: the server may or may not have their message."""
        return self._records(issue_key, "sending", limit)

    def record(self, issue_key: str, address: str) -> Record | None:
        """One recipient's record for an issue; ``address`` in any spelling (or its key)."""
        with self._failing("read the journal"):
            row = self._db.execute(f"SELECT {RECORD_COLUMNS} FROM deliveries WHERE issue_key = ? AND key = ?",
                                   (issue_key, address_key(address))).fetchone()
        return record_from_row(row) if row else None

    def issue_keys(self) -> list[str]:
        """Issues the journal knows about (with deliveries or runs)."""
        with self._failing("read the journal"):
            rows = self._db.execute(ISSUE_KEYS).fetchall()
        return [row[0] for row in rows]

    # --- answers (bounces, complaints) ---------------------------------------------------------------

    def find_message(self, message_id: str) -> Record | None:
        """The recipient a Message-ID was sent to (``<...>`` or bare), or None.

        A mail system may quote the ID in another case. Today's IDs have a lower-case local part
        (``send.msgid``, whose proof ignores case and domain), so one not found as quoted is looked
        for by its lower-cased local part, under any domain spelling (a range of the index)."""
        bare = message_id.strip().strip("<>")
        if not bare:
            return None
        local = bare.rpartition("@")[0].lower()
        with self._failing("read the journal"):
            row = self._db.execute(f"SELECT {RECORD_COLUMNS} FROM deliveries WHERE message_id = ?",
                                   (f"<{bare}>",)).fetchone()
            if row is None and local:  # "<local@" up to "<localA": '@' is 0x40, 'A' the byte after it
                row = self._db.execute(f"SELECT {RECORD_COLUMNS} FROM deliveries WHERE message_id >= ? "
                                       "AND message_id < ? LIMIT 1", (f"<{local}@", f"<{local}A")).fetchone()
        return record_from_row(row) if row else None

    def recipient_keys(self, issue_key: str, untagged: bool = False) -> list[str]:
        """The key of everyone the journal has for an issue, in any status (from the primary key alone);
        ``untagged``: only those marked without a VERP tag (from the tag's index alone)."""
        sql = "SELECT key FROM deliveries WHERE issue_key = ?" + (" AND verp_tag IS NULL" if untagged else "")
        with self._failing("read the journal"):
            return [row[0] for row in self._db.execute(sql, (issue_key,))]

    def verp_tagged_keys(self, issue_key: str, tag: int) -> list[str]:
        """The keys of an issue's deliveries marked with this VERP tag (one, unless 64-bit tags collide),
        from the tag's index alone; the tag only finds them: whether an address is theirs, its MAC decides."""
        with self._failing("read the journal"):
            return [row[0] for row in self._db.execute(
                "SELECT key FROM deliveries WHERE issue_key = ? AND verp_tag = ?", (issue_key, tag))]

    def latest_delivery(self, address: str) -> Record | None:
        """The most recent delivery to an address in any spelling (any issue), or None if it was never
        mailed."""
        with self._failing("read the journal"):
            row = self._db.execute(f"SELECT {RECORD_COLUMNS} FROM deliveries WHERE key = ? "
                                   "ORDER BY updated_at DESC LIMIT 1", (address_key(address),)).fetchone()
        return record_from_row(row) if row else None
