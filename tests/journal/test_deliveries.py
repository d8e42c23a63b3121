"""The delivery journal: resume semantics, crash safety, runs, the suppression list."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gigo_mail.errors import JournalError
from gigo_mail.journal.deliveries import UNFINISHED, Journal
from gigo_mail.send.selection import Selector

ISSUE = "011"


def _status(journal: Journal, key: str) -> str | None:
    record = journal.record(ISSUE, key)
    return record.status if record else None


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal.for_root(tmp_path) as opened:
        yield opened


def test_counts_failures_and_uncertain(journal: Journal) -> None:
    for i in range(3):
        journal.mark_sent(ISSUE, f"u{i}@x.org", f"U{i}@x.org", f"<{i}@x>", 250, "ok")
    journal.mark_failed(ISSUE, "a@x.org", "a@x.org", 550, "no such user", True)
    journal.mark_sending(ISSUE, "b@x.org", "B@x.org", "<b@x>")
    assert journal.counts(ISSUE) == {"pending": 0, "sending": 1, "sent": 3, "failed": 1}
    assert journal.counts("999") == {"pending": 0, "sending": 0, "sent": 0, "failed": 0}
    (failure,) = journal.failures(ISSUE)
    assert (failure.email, failure.code, failure.text) == ("a@x.org", 550, "no such user")
    assert failure.permanent is True
    (unsure,) = journal.uncertain(ISSUE)
    assert (unsure.email, unsure.message_id) == ("B@x.org", "<b@x>")
    assert journal.issue_keys() == [ISSUE]


def test_attempts_count_each_try_once(journal: Journal) -> None:
    key = "ann@example.com"
    journal.mark_sending(ISSUE, key, key, "<1@x>")
    journal.mark_failed(ISSUE, key, key, 451, "later", False)  # same attempt as the sending mark
    journal.mark_failed(ISSUE, key, key, 421, "closing", False)  # failed before DATA: a new attempt
    journal.mark_sending(ISSUE, key, key, "<2@x>")
    journal.mark_sent(ISSUE, key, key, "<2@x>", 250, "ok")
    record = journal.record(ISSUE, key)
    assert record is not None
    assert (record.status, record.attempts, record.code, record.message_id) == ("sent", 3, 250, "<2@x>")
    assert record.first_at <= record.updated_at


def test_mark_sent_without_sending_mark_counts_one_attempt(journal: Journal) -> None:
    journal.mark_sent(ISSUE, "a@x.org", "a@x.org", "<1@x>", 250, "ok")
    record = journal.record(ISSUE, "a@x.org")
    assert record is not None and record.attempts == 1


def test_marks_are_visible_to_another_connection_at_once(tmp_path: Path) -> None:
    with Journal.for_root(tmp_path) as writer, Journal.for_root(tmp_path) as reader:
        writer.mark_sent(ISSUE, "a@x.org", "a@x.org", "<1@x>", 250, "ok")
        assert _status(reader, "a@x.org") == "sent"


CHILD = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    from gigo_mail.journal.deliveries import Journal
    journal = Journal.for_root(Path(sys.argv[1]))
    journal.begin_run("011", None)
    journal.mark_sending("011", "unsure@example.com", "unsure@example.com", "<u@x>")
    i = 0
    while True:
        key = f"user{i}@example.com"
        journal.mark_sending("011", key, key, f"<{i}@x>")
        journal.mark_sent("011", key, key, f"<{i}@x>", 250, "ok")
        print(i, flush=True)
        if sys.argv[2] == "exit" and i == 99:
            os._exit(3)
        i += 1
""")


def _run_child(root: Path, mode: str) -> tuple[subprocess.Popen[str], int]:
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(root), mode], stdout=subprocess.PIPE,
                             text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert child.stdout is not None
    last = -1
    for line in child.stdout:
        last = int(line)
        if mode == "kill" and last >= 300:
            os.kill(child.pid, signal.SIGKILL)
            break
    child.wait(timeout=30)
    return child, last


@pytest.mark.parametrize("mode", ["kill", "exit"])
def test_survives_a_process_killed_mid_run(tmp_path: Path, mode: str) -> None:
    child, last = _run_child(tmp_path, mode)
    assert child.returncode == (-signal.SIGKILL if mode == "kill" else 3)
    assert last >= 99
    with Journal.for_root(tmp_path) as journal:
        # every row reported as marked before the kill is in the file, as sent
        for i in range(last + 1):
            assert _status(journal, f"user{i}@example.com") == "sent"
        assert [r.key for r in journal.uncertain(ISSUE)][:1] == ["unsure@example.com"]
        assert journal.counts(ISSUE)["sent"] >= last + 1
        (run,) = journal.runs(ISSUE)
        assert run.outcome == UNFINISHED and run.ended is not None
        # the dead process's run lock is gone: a new run may start, and closes the old one
        new_run = journal.begin_run(ISSUE, 10)
        runs = journal.runs(ISSUE)
        assert [(r.id, r.outcome) for r in runs] == [(run.id, UNFINISHED), (new_run, None)]
        assert runs[0].counts["sent"] >= last + 1


def test_a_second_run_of_the_same_issue_is_refused(tmp_path: Path) -> None:
    with Journal.for_root(tmp_path) as first, Journal.for_root(tmp_path) as second:
        run = first.begin_run(ISSUE, 2)
        assert second.run_active(ISSUE)
        with pytest.raises(JournalError, match="being sent by another gigo-mail process"):
            second.begin_run(ISSUE, 2)
        other = second.begin_run("012", 1)  # another issue is fine
        second.end_run(other, "complete")
        first.end_run(run, "complete")
        assert not second.run_active(ISSUE)
        second.end_run(second.begin_run(ISSUE, 2), "stopped")


def test_runs_record_counts_duration_and_rate(journal: Journal) -> None:
    run = journal.begin_run(ISSUE, 4)
    for i in range(3):
        journal.mark_sent(ISSUE, f"u{i}@x.org", f"u{i}@x.org", f"<{i}@x>", 250, "ok")
    journal.mark_failed(ISSUE, "bad@x.org", "bad@x.org", 550, "no", True)
    journal.end_run(run, "complete")
    second = journal.begin_run(ISSUE, 4)
    journal.mark_sent(ISSUE, "bad@x.org", "bad@x.org", "<b@x>", 250, "ok")
    journal.end_run(second, "interrupted")
    first, last = journal.runs(ISSUE)
    assert (first.outcome, first.total, first.counts) == ("complete", 4, {"sent": 3, "failed": 1})
    assert (last.outcome, last.counts) == ("interrupted", {"sent": 1})
    assert first.duration is not None and first.duration >= 0
    assert first.ended is not None and first.started <= first.ended
    with pytest.raises(ValueError):
        journal.end_run(second, "exploded")


def test_accept_uncertain_records_them_as_delivered(journal: Journal) -> None:
    journal.mark_sending(ISSUE, "a@example.com", "a@example.com", "<1@x>")
    journal.mark_sending(ISSUE, "b@example.com", "b@example.com", "<2@x>")
    assert journal.accept_uncertain(ISSUE) == 2
    record = journal.record(ISSUE, "a@example.com")
    assert record is not None and record.status == "sent" and record.message_id == "<1@x>"
    assert journal.counts(ISSUE)["sending"] == 0


def test_requeue_returns_only_the_named_refusal(journal: Journal) -> None:
    journal.mark_failed(ISSUE, "a@example.com", "a@example.com", 554, "5.7.1 <a@example.com>: Access denied",
                        True)
    journal.mark_failed(ISSUE, "b@example.com", "b@example.com", 550, "5.1.1 no such user", True)
    assert journal.requeue_failed(ISSUE, "5.7.1") == 1
    assert journal.requeue_failed(ISSUE, "554") == 0
    record = journal.record(ISSUE, "a@example.com")
    assert record is not None and record.status == "pending"
    selector = Selector(journal, ISSUE)
    assert selector.reason_to_skip("a@example.com") is None  # the next run sends it
    assert selector.reason_to_skip("b@example.com") == "failed"  # the real bounce stays


def test_grouped_marks_commit_once_per_event_loop_turn(journal: Journal) -> None:
    """In a send run, the marks of one loop turn share a commit at its end; every connection with
    a final dot waits for that commit (none leaves before its "sending" mark is in the file)."""
    other = sqlite3.connect(journal.path)
    commits: list[str] = []
    journal._db.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)

    def visible() -> int:
        return int(other.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0])

    async def connection(i: int, seen: list[int]) -> None:
        journal.mark_sending(ISSUE, f"r{i}@example.com", f"r{i}@example.com", f"<{i}@x>")
        await journal.committed()
        seen.append(visible())  # what the file holds when this final dot may leave

    async def go() -> tuple[int, list[int], int]:
        journal.group_commits(asyncio.get_running_loop())
        before = visible()
        seen: list[int] = []
        await asyncio.gather(*(connection(i, seen) for i in range(3)))
        journal.mark_sent(ISSUE, "r0@example.com", "r0@example.com", "<0@x>", 250, "ok")
        journal.group_commits(None)  # commits what is open
        return before, seen, visible()

    before, seen, last = asyncio.run(go())
    assert (before, seen, last) == (0, [3, 3, 3], 3)
    assert len(commits) == 2  # three final dots, one commit; then the last "sent"
    status = "SELECT status, updated_at FROM deliveries WHERE key = ?"
    assert other.execute(status, ("r0@example.com",)).fetchone()[0] == "sent"
    stamps = {other.execute(status, (f"r{i}@example.com",)).fetchone()[1] for i in (1, 2)}
    assert len(stamps) == 1  # one timestamp for the turn's marks
    journal.mark_failed(ISSUE, "r1@example.com", "r1@example.com", 550, "no", True)  # at once again
    assert other.execute(status, ("r1@example.com",)).fetchone()[0] == "failed"
    other.close()


def test_marks_of_the_next_loop_turns_join_the_group(journal: Journal) -> None:
    """The commit comes GROUP_TURNS turns after the group's first mark: replies read meanwhile join
    it (fewer commits on a busy send), and a dot waiting for it still leaves only after it."""
    commits: list[str] = []
    journal._db.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)

    async def go() -> int:
        journal.group_commits(asyncio.get_running_loop())
        for i in range(3):  # one mark a turn, as replies come in
            journal.mark_sending(ISSUE, f"r{i}@example.com", f"r{i}@example.com", f"<{i}@x>")
            await asyncio.sleep(0)
        await journal.committed()
        seen = len(journal.uncertain(ISSUE))
        journal.group_commits(None)
        return seen

    assert asyncio.run(go()) == 3
    assert len(commits) == 1


def test_a_grouped_commit_that_fails_reaches_every_waiter(journal: Journal) -> None:
    """A full disk, say: the marks are not in the file, so no final dot may leave."""
    journal.mark_sent(ISSUE, "a@example.com", "a@example.com", "<a@x>", 250, "ok")
    locker = sqlite3.connect(journal.path, isolation_level=None, timeout=0)
    locker.execute("BEGIN IMMEDIATE")  # another writer holds the file past the busy timeout
    journal._db.execute("PRAGMA busy_timeout = 50")
    heard: list[object] = []

    async def go() -> None:
        journal.group_commits(asyncio.get_running_loop())
        journal.mark_sending(ISSUE, "b@example.com", "b@example.com", "<b@x>")
        journal.when_committed(heard.append)
        with pytest.raises(JournalError):
            await journal.committed()
        with pytest.raises(JournalError):  # and no later mark is taken
            journal.mark_sending(ISSUE, "c@example.com", "c@example.com", "<c@x>")

    asyncio.run(go())
    locker.execute("ROLLBACK")
    locker.close()
    assert len(heard) == 1 and isinstance(heard[0], JournalError)
    assert journal.record(ISSUE, "b@example.com") is None


def test_when_committed_calls_back_after_the_commit_that_carries_the_mark(journal: Journal) -> None:
    """A "sent" mark is counted once it is in the file; the caller does not wait for that, and
    the next mark made in the meantime shares the commit."""
    other = sqlite3.connect(journal.path)
    statuses = "SELECT key, status FROM deliveries ORDER BY key"
    calls: list[tuple[str, object, list[tuple[str, str]]]] = []

    def done(name: str) -> Callable[[JournalError | None], None]:
        return lambda error: calls.append((name, error, other.execute(statuses).fetchall()))

    async def go() -> None:
        journal.when_committed(done("nothing open"))  # nothing to wait for: at once
        journal.group_commits(asyncio.get_running_loop())
        journal.mark_sent(ISSUE, "a@example.com", "a@example.com", "<a@x>", 250, "ok")
        journal.when_committed(done("a sent"))
        assert [c[0] for c in calls] == ["nothing open"]  # not yet: the mark is not in the file
        journal.mark_sending(ISSUE, "b@example.com", "b@example.com", "<b@x>")
        await journal.committed()  # b's final dot: one commit carries both marks
        journal.mark_sent(ISSUE, "c@example.com", "c@example.com", "<c@x>", 250, "ok")
        journal.when_committed(done("c sent"))
        await asyncio.sleep(0)  # nobody waits: the end of the loop turn commits it
        journal.group_commits(None)

    asyncio.run(go())
    both = [("a@example.com", "sent"), ("b@example.com", "sending")]
    assert calls == [("nothing open", None, []), ("a sent", None, both),
                     ("c sent", None, [*both, ("c@example.com", "sent")])]
    other.close()


def test_a_callback_that_marks_again_does_not_break_the_next_transaction(journal: Journal) -> None:
    """The sender's first 250 records the refusals it held back, from inside the callback; a
    transaction of the journal's own (a soft bounce, the end of the run) that flushed the group
    must then flush that new mark too, not start inside it."""
    async def go() -> None:
        journal.group_commits(asyncio.get_running_loop())
        journal.mark_sent(ISSUE, "a@example.com", "a@example.com", "<a@x>", 250, "ok")
        journal.when_committed(lambda error: journal.mark_failed(ISSUE, "held@example.com",
                                                                 "held@example.com", 550, "no", True))
        journal.suppress(["gone@example.com"], "manual")  # its own transaction, in the same turn
        journal.group_commits(None)

    asyncio.run(go())
    other = sqlite3.connect(journal.path)
    assert other.execute("SELECT key, status FROM deliveries ORDER BY key").fetchall() == [
        ("a@example.com", "sent"), ("held@example.com", "failed")]
    assert journal.is_suppressed("gone@example.com")
    other.close()


def test_when_committed_hears_a_failed_commit(tmp_path: Path) -> None:
    with Journal(tmp_path / "journal.sqlite3") as journal:
        pages = journal._db.execute("PRAGMA page_count").fetchone()[0]
        journal._db.execute(f"PRAGMA max_page_count = {pages + 1}")  # room for almost nothing
        heard: list[JournalError | None] = []

        async def go() -> None:
            journal.group_commits(asyncio.get_running_loop())
            with contextlib.suppress(JournalError):  # the mark itself may be the one that fails
                for i in range(200):
                    journal.mark_sent(ISSUE, f"r{i}@example.com", f"r{i}@example.com", "<x@x>" * 40,
                                      250, "ok" * 200)
                    journal.when_committed(heard.append)
                    await asyncio.sleep(0)
            journal.when_committed(heard.append)  # after the failure: told at once
            with contextlib.suppress(JournalError):
                journal.group_commits(None)

        asyncio.run(go())
    errors = [e for e in heard if e is not None]
    assert errors and all(isinstance(e, JournalError) and "full" in str(e) for e in errors)
    assert heard[-1] is not None


def test_a_turn_with_two_marks_of_one_recipient_writes_them_as_made(journal: Journal) -> None:
    """Marks of different recipients are written by kind; two of one recipient keep their order."""
    async def go() -> None:
        journal.group_commits(asyncio.get_running_loop())
        journal.mark_sending(ISSUE, "a@example.com", "a@example.com", "<a@x>")
        journal.mark_sent(ISSUE, "b@example.com", "b@example.com", "<b@x>", 250, "ok")
        journal.mark_sending(ISSUE, "c@example.com", "c@example.com", "<c@x>")
        await journal.committed()
        journal.mark_sending(ISSUE, "d@example.com", "d@example.com", "<d@x>")
        journal.mark_failed(ISSUE, "d@example.com", "d@example.com", 550, "5.1.1 no such user", True)
        await journal.committed()
        journal.group_commits(None)

    asyncio.run(go())
    statuses = {key: journal.record(ISSUE, key).status for key in  # type: ignore[union-attr]
                ("a@example.com", "b@example.com", "c@example.com", "d@example.com")}
    assert statuses == {"a@example.com": "sending", "b@example.com": "sent", "c@example.com": "sending",
                        "d@example.com": "failed"}
    assert journal.record(ISSUE, "d@example.com").attempts == 1  # type: ignore[union-attr]
