"""Grouped commits for a send run: the marks of a few event-loop turns go into the file together.

Part of :class:`gigo_mail.journal.deliveries.Journal` (same file, connection and lock). While a
run groups (:meth:`GroupedMarks.group_commits`), a mark is kept in memory, and the marks made until
``GROUP_TURNS`` loop turns later are written in one transaction: one ``BEGIN IMMEDIATE``, an
``executemany`` per run of marks of one kind (in the order they were made), one ``COMMIT``, all
stamped with the time of the group's first mark. Whoever has a final dot to write awaits
:meth:`committed`: its ``sending`` mark is then in the file before the dot leaves, and the
connections whose replies came meanwhile share that one commit. A ``sent`` mark is not waited for:
it is counted once its commit lands (:meth:`when_committed`). A crash loses only marks not yet
committed, which is what ``sending`` is for: such a recipient stays uncertain, never silently
delivered or lost.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gigo_mail.errors import JournalError
from gigo_mail.journal.schema import now
from gigo_mail.journal.store import JournalStore, immediate

if TYPE_CHECKING:  # only a send run groups commits; status and friends need no event loop
    import asyncio

# Loop turns from a group's first mark to its commit. Into smtp-sink (20,000 messages, medians of 6
# alternating runs): 1 turn, about 1.8 messages a commit; 3 turns, 11 % less CPU per message and
# 14 % more messages a second; 6 turns no better than 3.
GROUP_TURNS = 3


class GroupedMarks(JournalStore):
    """Marks written at once, or grouped per event-loop turn during a send run."""

    def __init__(self, path: Path) -> None:
        self._group_loop: asyncio.AbstractEventLoop | None = None  # set by group_commits
        self._group_open = False  # marks are waiting, their commit scheduled for the end of the turn
        self._group_marks: list[tuple[str, tuple[Any, ...], str]] = []  # (statement, values, action)
        self._group_at = ""  # the turn's timestamp
        self._group_callbacks: list[Callable[[JournalError | None], None]] = []  # when_committed
        self._group_error: JournalError | None = None  # a grouped commit failed: no more marks
        super().__init__(path)

    def _flush_group(self) -> None:
        while self._group_open:  # a when_committed callback may mark again, opening the next group
            self._commit_group()

    def group_commits(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """From now on, commit the marks of each event-loop turn of ``loop`` together (one
        commit instead of one per mark); ``None`` commits what is open and goes back to
        committing every mark at once."""
        self._group_loop = loop  # first: a failed commit below must not leave grouping on
        if loop is None:
            self._flush_group()

    def _stamp(self) -> str:
        """The time a mark records: the turn's, while marks are grouped (one clock read a turn)."""
        if self._group_loop is None:
            return now()
        if not self._group_open:
            self._group_at = now()
        return self._group_at

    async def committed(self) -> None:
        """Wait until every mark made so far is in the file; JournalError if the commit failed.

        The commit comes at the end of this event-loop turn, shared by every connection that
        marked in it (N final dots, one commit); none of their dots leaves before it."""
        if self._group_error is not None:
            raise self._group_error
        if not self._group_open or self._group_loop is None:
            return
        done = self._group_loop.create_future()

        def settle(error: JournalError | None) -> None:
            if done.done():
                return
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)

        self._group_callbacks.append(settle)
        await done

    def when_committed(self, done: Callable[[JournalError | None], None]) -> None:
        """Call ``done(None)`` once every mark made so far is in the file (at once if it is),
        or ``done(error)`` if the commit failed. Unlike awaiting ``committed``, the caller goes
        on at once: a sender starts its next message, and that message's "sending" mark rides
        in the same commit as this one's "sent" (one commit per message, not two)."""
        if self._group_error is not None:
            done(self._group_error)
        elif not self._group_open:
            done(None)
        else:
            self._group_callbacks.append(done)

    def _commit_after(self, turns: int) -> None:
        """Commit the group ``turns`` loop turns after its first mark: the replies read meanwhile
        join it, so a busy send writes several messages' marks per commit (the commit's cost is
        mostly per commit, not per mark), while an idle loop gets there within microseconds."""
        if turns > 1 and self._group_loop is not None:
            self._group_loop.call_soon(self._commit_after, turns - 1)
        else:
            self._commit_group_soon()

    def _commit_group_soon(self) -> None:
        """Commit the open marks (at the end of an event-loop turn). A failure reaches
        ``when_committed``'s callbacks, ``committed`` and every later mark."""
        try:
            self._commit_group()
        except JournalError as exc:
            self._group_error = exc

    def _commit_group(self) -> None:
        if not self._group_open:
            return
        self._group_open = False
        marks, self._group_marks = self._group_marks, []
        action = marks[0][2] if marks else "record a send"  # what the error says was being done
        try:
            with self._lock, immediate(self._db):
                for sql, rows in groupby(_in_order(marks), key=lambda mark: mark[0]):
                    self._db.executemany(sql, [values for _, values, _ in rows])
        except sqlite3.Error as exc:
            error = self._fail(action, exc)
            self._group_error = error  # these marks are not in the file: this is what everyone hears
            self._tell_group(error)
            raise error from None
        self._tell_group(None)

    def _tell_group(self, error: JournalError | None) -> None:
        callbacks, self._group_callbacks = self._group_callbacks, []
        for done in callbacks:
            done(error)

    def _mark(self, sql: str, params: tuple[Any, ...], action: str) -> None:
        """Write one mark: at once (committed before this returns), or into this turn's group."""
        if self._group_error is not None:
            raise self._group_error
        if self._group_loop is None:
            with self._failing(action), self._lock:
                self._db.execute(sql, params)
            return
        if not self._group_open:
            self._group_open = True
            self._group_loop.call_soon(self._commit_after, GROUP_TURNS)
        self._group_marks.append((sql, params, action))


def _in_order(marks: list[tuple[str, tuple[Any, ...], str]]) -> list[tuple[str, tuple[Any, ...], str]]:
    """The marks in an order that writes them as they were made: by kind (one ``executemany`` each)
    when every mark is of a different recipient, so no two of them depend on each other's order;
    else exactly as made."""
    recipients = {(values[0], values[1]) for _, values, _ in marks}  # (issue, key)
    if len(recipients) < len(marks):
        return marks
    return sorted(marks, key=lambda mark: mark[0])  # stable: the order of each kind's marks is kept
