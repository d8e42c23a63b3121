"""The journal's SQLite schema, its statements, and the rows it hands out.

Kept apart from ``journal`` so that the storage layout can be read in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS deliveries (
    issue_key  TEXT NOT NULL,
    key        TEXT NOT NULL,
    email      TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    code       INTEGER,
    text       TEXT NOT NULL DEFAULT '',
    message_id TEXT NOT NULL DEFAULT '',
    permanent  INTEGER NOT NULL DEFAULT 0,
    run_id     INTEGER,
    first_at   TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    verp_tag   INTEGER,
    PRIMARY KEY (issue_key, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deliveries_by_status ON deliveries (issue_key, status);
CREATE INDEX IF NOT EXISTS deliveries_by_run ON deliveries (run_id);
CREATE INDEX IF NOT EXISTS deliveries_by_key ON deliveries (key);
CREATE INDEX IF NOT EXISTS deliveries_by_message_id ON deliveries (message_id);
CREATE TABLE IF NOT EXISTS runs (
    id        INTEGER PRIMARY KEY,
    issue_key TEXT NOT NULL,
    started   TEXT NOT NULL,
    ended     TEXT,
    outcome   TEXT,
    total     INTEGER,
    counts    TEXT NOT NULL DEFAULT '{}',
    pid       INTEGER
);
CREATE INDEX IF NOT EXISTS runs_by_issue ON runs (issue_key);
CREATE TABLE IF NOT EXISTS suppressed (
    key    TEXT PRIMARY KEY,
    email  TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    at     TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS soft_bounces (
    key       TEXT NOT NULL,
    issue_key TEXT NOT NULL,
    email     TEXT NOT NULL,
    text      TEXT NOT NULL DEFAULT '',
    at        TEXT NOT NULL,
    PRIMARY KEY (key, issue_key)
) WITHOUT ROWID;
"""
# The indexes above that answers look up by (an address's deliveries across issues, a quoted
# Message-ID) came after the first journals were written: ``CREATE INDEX IF NOT EXISTS`` adds them
# to such a file when it is opened, once, with no change of SCHEMA_VERSION (an older gigo-mail
# reads the file as before; SQLite keeps the indexes up to date whoever writes).
# Columns added after a table first shipped (added in place when missing, so an older
# gigo-mail can still read the file: it ignores them).
ADDED_COLUMNS = (("runs", "segment", "TEXT NOT NULL DEFAULT ''"), ("deliveries", "verp_tag", "INTEGER"))
# Indexes on such columns: made after the columns are there (``CREATE INDEX IF NOT EXISTS`` likewise).
# ``verp_tag`` finds the delivery a VERP return address was made for (``send.verp``): a 64-bit
# number from SHA-256 of the address's MAC, never the MAC itself (a leaked journal forges no
# bounce); NULL for a delivery marked without one (no VERP, or before the column existed).
ADDED_INDEXES = ("CREATE INDEX IF NOT EXISTS deliveries_by_verp_tag ON deliveries (issue_key, verp_tag)",)

UPSERT = """
INSERT INTO deliveries (issue_key, key, email, status, attempts, code, text, message_id, permanent,
                        run_id, first_at, updated_at, verp_tag)
VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (issue_key, key) DO UPDATE SET
    email = excluded.email,
    status = excluded.status,
    attempts = attempts + {attempts},
    code = {code},
    text = {text},
    message_id = CASE WHEN excluded.message_id = '' THEN message_id ELSE excluded.message_id END,
    permanent = excluded.permanent,
    run_id = excluded.run_id,
    updated_at = excluded.updated_at{tag}
"""
# Issues with deliveries or runs. The distinct issues of deliveries are found by skipping from one
# to the next along the primary key (one search per issue), not by reading every delivery.
ISSUE_KEYS = """
WITH RECURSIVE issues (issue_key) AS (
    SELECT MIN(issue_key) FROM deliveries
    UNION ALL
    SELECT (SELECT MIN(issue_key) FROM deliveries WHERE issue_key > issues.issue_key) FROM issues
    WHERE issues.issue_key IS NOT NULL
)
SELECT issue_key FROM issues WHERE issue_key IS NOT NULL UNION SELECT issue_key FROM runs ORDER BY 1
"""
# Adding an address to the suppression list (key, email, reason, at, the key's hashed form): never
# again in plain once it was erased (its hashed key is on the list): a pull of the page's list, an
# old export imported again or a late bounce would otherwise write back what ``subscribers forget``
# erased; the hashed suppression refuses the address all the same.
ADD_SUPPRESSION = ("INSERT OR IGNORE INTO suppressed (key, email, reason, at) SELECT ?, ?, ?, ? "
                   "WHERE NOT EXISTS (SELECT 1 FROM suppressed WHERE key = ?)")
# An attempt is counted once: at mark_sending, or at its outcome if it was never marked sending.
# The VERP tag comes with the ``sending`` mark (a re-send without VERP keeps the one the first
# message's address had); an outcome leaves it as it is (no index entry rewritten per outcome).
MARK_SENDING = UPSERT.format(attempts="1", code="code", text="text",
                             tag=",\n    verp_tag = COALESCE(excluded.verp_tag, verp_tag)")
MARK_OUTCOME = UPSERT.format(attempts="(status != 'sending')", code="excluded.code", text="excluded.text",
                             tag="")


def now() -> str:
    """A UTC timestamp with milliseconds, sortable as text."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass(frozen=True, slots=True)
class Record:
    """One recipient of one issue, as the journal has it."""

    issue_key: str
    key: str
    email: str
    status: str
    attempts: int
    code: int | None
    text: str
    message_id: str
    permanent: bool
    first_at: str
    updated_at: str


@dataclass(frozen=True, slots=True)
class Run:
    """One send of an issue; ``counts`` are the statuses its recipients ended in."""

    id: int
    issue_key: str
    started: str
    ended: str | None
    outcome: str | None  # None while it runs
    total: int | None
    counts: dict[str, int] = field(default_factory=dict)
    segment: str = ""  # the run's --tag/--where segment, "" for the whole list

    @property
    def duration(self) -> float | None:
        """Seconds from start to end (or to its last mark, for an unfinished run)."""
        start, end = parse_time(self.started), parse_time(self.ended)
        if start is None or end is None:
            return None
        return max(0.0, (end - start).total_seconds())

    @property
    def rate(self) -> float | None:
        """Messages accepted per second during this run."""
        seconds = self.duration
        if not seconds:
            return None
        return self.counts.get("sent", 0) / seconds


@dataclass(frozen=True, slots=True)
class Suppression:
    key: str
    email: str
    reason: str
    at: str


RECORD_COLUMNS = ("issue_key, key, email, status, attempts, code, text, message_id, permanent, "
                   "first_at, updated_at")


def record_from_row(row: tuple[Any, ...]) -> Record:
    return Record(issue_key=row[0], key=row[1], email=row[2], status=row[3], attempts=row[4], code=row[5],
                  text=row[6], message_id=row[7], permanent=bool(row[8]), first_at=row[9], updated_at=row[10])
