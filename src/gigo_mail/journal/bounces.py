"""The journal's memory of bounces across issues: soft bounces counted per address, and
why each suppressed address is suppressed. Mixed into :class:`gigo_mail.journal.Journal`
(same file, connection and transactions, from ``journal_store``); kept here so the journal's delivery logic
reads on its own.
"""

from __future__ import annotations

from typing import Any

from gigo_mail.address import address_key
from gigo_mail.journal.schema import ADD_SUPPRESSION, now
from gigo_mail.journal.store import JournalStore
from gigo_mail.journal.suppressions import hashed_key


class BounceRecords(JournalStore):
    """Soft-bounce counting and suppression reasons over the journal's tables."""

    def suppression_reasons(self) -> dict[str, str]:
        """key -> reason for the whole suppression list (to say why rows of a list are suppressed)."""
        with self._failing("read the suppression list"):
            return {key: reason for key, reason in self._db.execute("SELECT key, reason FROM suppressed")}

    def record_soft_bounce(self, issue_key: str, email: str, text: str, limit: int, at: str | None = None
                           ) -> bool:
        """A transient failure (retries exhausted, or a delayed/failed DSN that is not permanent)
        for ``email`` in ``issue_key``. Counted once per issue; after ``limit`` issues in a row
        (no issue delivered in between) the address is suppressed. True if this suppressed it.

        The send path calls it when it gives up on a recipient; a bounce processor calls it for
        a transient DSN, even after the issue's 250 (a bounce later than the delivery counts);
        ``at`` (ISO 8601 UTC, as the journal writes times) is when it happened, default now."""
        key = address_key(email)
        at = at or now()
        with self._failing("record a soft bounce"), self._lock, self._transaction():
            self._db.execute(
                "INSERT INTO soft_bounces (key, issue_key, email, text, at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (key, issue_key) DO UPDATE SET text = excluded.text, at = excluded.at",
                (key, issue_key, email.strip(), text, at))
            count = self._soft_bounces_in_a_row(key)
            if count < limit:
                return False
            reason = f"soft bounces: {count} issues in a row (last: {' '.join(text.split())})"
            cursor = self._db.execute(ADD_SUPPRESSION, (key, email.strip(), reason, at, hashed_key(key)))
            self._suppressions_changed += 1
            return cursor.rowcount > 0

    def soft_bounces_in_a_row(self, email: str) -> int:
        """How many of the address's latest issues ended in a soft bounce, back to the last delivered one."""
        with self._failing("read the soft bounces"):
            return self._soft_bounces_in_a_row(address_key(email))

    def _soft_bounces_in_a_row(self, key: str) -> int:
        # issue -> [first seen, issue, delivered at or None, bounced at or None]
        issues: dict[str, list[Any]] = {}
        for issue, status, first_at, updated_at in self._db.execute(
                "SELECT issue_key, status, first_at, updated_at FROM deliveries WHERE key = ?", (key,)):
            issues[issue] = [first_at, issue, updated_at if status == "sent" else None, None]
        for issue, at in self._db.execute("SELECT issue_key, at FROM soft_bounces WHERE key = ?", (key,)):
            entry = issues.setdefault(issue, [at, issue, None, None])
            entry[3] = at
        count = 0
        for _, _, delivered, bounced in sorted(issues.values(), reverse=True):  # newest issue first
            if bounced is not None and (delivered is None or bounced > delivered):
                count += 1  # failed for good in that issue, or a bounce came after its delivery
            elif delivered is not None:
                break  # delivered and not bounced: the run of soft bounces ends here
        return count

