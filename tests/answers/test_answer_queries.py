"""Every lookup `gigo-mail bounces` makes is served by an index: no answer reads the whole journal.

The SQL is not listed by hand: each statement the answers path runs (the whole corpus, VERP on,
a dry run and a real one) is captured from SQLite itself and its query plan asked for.
"""

from __future__ import annotations

import mailbox
import sqlite3
from pathlib import Path

import pytest

from gigo_mail.address import address_key
from gigo_mail.answers.classify import COMPLAINT, HARD, SOFT, UNSUBSCRIBE
from gigo_mail.answers.process import process_answers
from gigo_mail.answers.source import MaildirSource
from gigo_mail.config import load_config
from gigo_mail.journal.deliveries import Journal
from gigo_mail.send.verp import VerpAddresses
from support import make_newsletter

SECRET = "answers-secret"
ANSWERS = Path(__file__).resolve().parents[1] / "data" / "answers"
SENT = {"gone@example.net": 7, "slow@example.org": 8, "closed@exim.example.com": 10,
        "old-user@qmail.example.org": 11, "annoyed@yahoo.example": 13, "hidden@hotmail.example": 14,
        "bjorn@example.org": 2, "dev@example.org": 4, "chen@example.org": 3, "ana@example.org": 1}
BY_MESSAGE_ID = "EXPLAIN QUERY PLAN SELECT * FROM deliveries WHERE message_id = 'x'"
LOOKED_UP = ("deliveries", "soft_bounces", "suppressed", "answers")  # tables that grow with the mail


def _verp_bounce(to: str, number: int = 1) -> bytes:
    return (b"Return-Path: <>\r\nDelivered-To: " + to.encode() + b"\r\nFrom: MAILER-DAEMON@mx.example.org\r\n"
            b"To: " + to.encode() + b"\r\nSubject: failure notice\r\n"
            b"Message-ID: <bare-" + str(number).encode() + b"@mx.example.org>\r\n\r\n"
            b"Hi. This is the qmail-send program at mx.example.org.\r\n"
            b"I'm afraid I wasn't able to deliver your message to the following addresses.\r\n\r\n"
            b"<forwarded.elsewhere@other.example>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n")


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement run on a connection opened from now on, with its parameters in place."""
    statements: list[str] = []
    connect = sqlite3.connect

    def tracing(*args: object, **kwargs: object) -> sqlite3.Connection:
        db = connect(*args, **kwargs)  # type: ignore[arg-type]
        db.set_trace_callback(statements.append)
        return db

    monkeypatch.setattr(sqlite3, "connect", tracing)
    return statements


def _plans(state: Path, statements: list[str]) -> dict[str, list[str]]:
    """statement -> the details of its query plan, for every statement that reads or changes rows
    (of the journal, or of the answers store beside it)."""
    db = sqlite3.connect(state / "journal.sqlite3")
    db.execute("ATTACH DATABASE ? AS answers_store", (str(state / "answers.sqlite3"),))
    try:
        return {sql: [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql)] for sql in set(statements)
                if sql.lstrip().split(None, 1)[0].upper() in ("SELECT", "WITH", "UPDATE", "DELETE", "INSERT")}
    finally:
        db.close()


def test_every_query_of_the_answers_path_is_served_by_an_index(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, traced: list[str]) -> None:
    root = make_newsletter(tmp_path / "nl")
    monkeypatch.chdir(root)
    monkeypatch.setenv("GIGO_UNSUBSCRIBE_SECRET", SECRET)
    (root / "gigo-mail.toml").write_text((root / "gigo-mail.toml").read_text()
                                         + '\n[bounces]\nreturn_path = "bounce@gigo.dev"\nverp = true\n')
    returns = {issue: VerpAddresses("bounce@gigo.dev", SECRET.encode(), issue) for issue in ("010", "011")}
    with Journal.for_root(root) as journal:
        for email, number in SENT.items():
            for issue in ("010", "011"):
                message_id = (f"<672f1a2b.a1b2c3d4e5f6.{number}@gigo.dev>" if issue == "011"
                              else f"<{issue}.{number}@gigo.dev>")
                # 011 as this version sends (the return address's tag kept), 010 as before the tag
                tag = returns[issue].tag(returns[issue].address(address_key(email)))
                tag = tag if issue == "011" else None
                journal.mark_sending(issue, address_key(email), email, message_id, tag)
                journal.mark_sent(issue, address_key(email), email, message_id, 250, "ok")
    box = mailbox.Maildir(tmp_path / "Maildir", create=True)
    for path in sorted(ANSWERS.glob("*.eml")):
        box.add(path.read_bytes())
    box.add(_verp_bounce(returns["011"].address(address_key("ana@example.org"))))  # found by its tag
    box.add(_verp_bounce(returns["010"].address(address_key("chen@example.org")), 2))  # by the untagged rows
    box.close()
    traced.clear()  # from here on: the answers path only
    config = load_config(root)
    dry = process_answers(config, MaildirSource(tmp_path / "Maildir"), dry_run=True)
    real = process_answers(config, MaildirSource(tmp_path / "Maildir"))
    # the run did look things up every way: by VERP (its tag, and the rows without one), by quoted
    # Message-ID, by address, soft bounces
    proven = {(o.kind, o.email, o.issue_key, o.proof) for o in real.outcomes}
    assert {(HARD, "ana@example.org", "011", "return address"),
            (HARD, "chen@example.org", "010", "return address")} <= proven
    assert {HARD, SOFT, COMPLAINT, UNSUBSCRIBE} <= {o.kind for o in dry.outcomes}
    assert any("message_id =" in sql for sql in traced) and any("WHERE key =" in sql for sql in traced)
    assert any("verp_tag = " in sql for sql in traced) and any("verp_tag IS NULL" in sql for sql in traced)

    plans = _plans(root / ".gigo", traced)
    assert plans, traced
    scans = {sql: [d for d in details if any(d.startswith(f"SCAN {table}") for table in LOOKED_UP)]
             for sql, details in plans.items()}
    assert {sql: found for sql, found in scans.items() if found} == {}
    by_tag = {detail for sql, details in plans.items() if "verp_tag" in sql for detail in details}
    assert by_tag and all("INDEX deliveries_by_verp_tag (" in detail for detail in by_tag), by_tag


def test_an_older_journal_gains_the_indexes_when_opened(tmp_path: Path) -> None:
    """A journal written before the indexes existed: opened as it is, it gets them, keeps every row
    and its schema version (an older gigo-mail can still read it), and answers by index."""
    path = tmp_path / ".gigo" / "journal.sqlite3"
    with Journal(path) as journal:
        journal.mark_sent("010", "ann@example.org", "Ann@example.org", "<010.1@gigo.dev>", 250, "ok")
        journal.mark_sent("011", "ann@example.org", "Ann@example.org", "<011.1@gigo.dev>", 250, "ok")
    db = sqlite3.connect(path)
    db.execute("DROP INDEX deliveries_by_key")  # as the file was before this version
    db.execute("DROP INDEX deliveries_by_message_id")
    db.execute("UPDATE deliveries SET updated_at = '2026-01-01T00:00:00.000+00:00' WHERE issue_key = '010'")
    db.commit()
    plan = [row[3] for row in db.execute(BY_MESSAGE_ID)]
    assert any(detail.startswith("SCAN deliveries") for detail in plan)  # the old file reads everything
    db.close()

    with Journal(path) as journal:
        assert journal.find_message("011.1@gigo.dev").issue_key == "011"  # type: ignore[union-attr]
        assert journal.latest_delivery("ann@example.org").issue_key == "011"  # type: ignore[union-attr]
        assert journal.issue_keys() == ["010", "011"]
    db = sqlite3.connect(path)
    try:
        names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"deliveries_by_key", "deliveries_by_message_id"} <= names
        assert db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == 1
        assert db.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0] == 2
        plan = [row[3] for row in db.execute(BY_MESSAGE_ID)]
        assert plan == ["SEARCH deliveries USING INDEX deliveries_by_message_id (message_id=?)"]
    finally:
        db.close()
