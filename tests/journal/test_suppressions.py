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
