"""The suppression list: keyed as subscribers are, the first reason kept."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gigo_mail.journal.deliveries import Journal


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal.for_root(tmp_path) as opened:
        yield opened


def test_suppression_list(journal: Journal) -> None:
    assert journal.suppress(["Ann@Example.com", "bob@example.com"], "manual") == 2
    assert journal.suppress(["ANN@example.COM", "cid@example.com"], "link") == 1
    assert journal.is_suppressed("ann@example.com")
    assert not journal.is_suppressed("dee@example.com")
    assert journal.suppressed_keys() == {"ann@example.com", "bob@example.com", "cid@example.com"}
    listed = {s.key: (s.email, s.reason) for s in journal.suppressions()}
    assert listed["ann@example.com"] == ("Ann@Example.com", "manual")  # first reason is kept
    assert journal.unsuppress(["BOB@example.com", "nobody@example.com"]) == 1
    assert not journal.is_suppressed("bob@example.com")


def test_suppression_uses_the_subscriber_key_for_idn(journal: Journal) -> None:
    journal.suppress(["Eve@xn--bcher-kva.de"], "manual")
    assert journal.is_suppressed("eve@bücher.de")


def test_a_pass_over_a_list_reads_the_suppression_list_once(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    with Journal(path) as journal:
        journal.suppress(["gone@example.org"], "hard bounce")
        statements: list[str] = []
        journal._db.set_trace_callback(statements.append)
        check = journal.suppression_check(every=3600)
        answers = [check(f"reader{i}@example.org") for i in range(1000)] + [check("gone@example.org")]
        assert answers == [False] * 1000 + [True]
        assert sum("FROM suppressed" in sql for sql in statements) == 1


def test_a_pass_over_a_list_sees_suppressions_made_meanwhile(tmp_path: Path) -> None:
    """By this journal (a hard bounce during the send) or by another process (the one-click page)."""
    path = tmp_path / "journal.sqlite3"
    with Journal(path) as journal, Journal(path) as page:
        check = journal.suppression_check(every=0)
        assert not check("ann@example.org") and not check("bob@example.org")
        page.suppress(["ann@example.org"], "one-click")
        assert check("ann@example.org")
        journal.suppress(["bob@example.org"], "hard bounce")
        assert check("bob@example.org")
        page.unsuppress(["ann@example.org"])
        assert not check("ann@example.org")
        assert journal.record_soft_bounce("011", "cat@example.org", "4.2.2 full", 1)
        assert check("cat@example.org")


def test_a_pass_over_a_list_refuses_an_erased_address(tmp_path: Path) -> None:
    """An erased address stays only as its hashed key: the set finds it all the same."""
    with Journal(tmp_path / "journal.sqlite3") as journal:
        journal.suppress(["gone@example.org"], "unsubscribe")
        check = journal.suppression_check(every=0)
        assert check("gone@example.org")
        journal.forget("gone@example.org")
        assert check("gone@example.org") and not check("stays@example.org")
