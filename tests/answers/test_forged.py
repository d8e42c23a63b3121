"""Forged answers take nobody off the list; genuine ones to a reader's own return address still do.

The corpus (``forgery.py``) is built against a list really built by ``MessageFactory`` and
journaled as the sender does, by a reader who keeps their own copy. Each shape is a test
of its own; then the whole corpus at once, beside genuine bounces.
"""

from __future__ import annotations

import mailbox
from collections import Counter
from pathlib import Path

import pytest
from forgery import (
    ATTACKER,
    READERS,
    Copy,
    forgeries,
    forgery_newsletter,
    genuine_dsn,
    sent_list,
    shapes,
)

from gigo_mail.answers.process import process_answers
from gigo_mail.answers.source import MaildirSource
from gigo_mail.config import load_config
from gigo_mail.journal.deliveries import Journal


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return forgery_newsletter(tmp_path, monkeypatch)


@pytest.fixture
def copies(root: Path) -> dict[str, Copy]:
    return sent_list(root)


@pytest.fixture
def other_issue(root: Path, copies: dict[str, Copy]) -> dict[str, Copy]:
    return sent_list(root, "012")


def deliver(folder: Path, messages: list[bytes]) -> MaildirSource:
    box = mailbox.Maildir(folder, create=True)
    for data in messages:
        box.add(data)
    box.close()
    return MaildirSource(folder)


def suppressed(root: Path) -> set[str]:
    with Journal.for_root(root) as journal:
        return {row.email.lower() for row in journal.suppressions()}


@pytest.mark.parametrize("shape", shapes())
def test_each_forged_shape_takes_no_reader_off_the_list(shape: str, root: Path, tmp_path: Path,
                                                        copies: dict[str, Copy],
                                                        other_issue: dict[str, Copy]) -> None:
    messages = [data for name, data in forgeries(copies, other_issue) if name == shape]
    assert messages, shape
    report = process_answers(load_config(root), deliver(tmp_path / "Maildir", messages))
    assert suppressed(root) - {ATTACKER} == set(), shape  # at most the attacker, by their own proof
    with Journal.for_root(root) as journal:
        assert all(journal.soft_bounces_in_a_row(email) == 0 for email in READERS)
    believed = [o for o in report.outcomes if o.email.lower() in READERS and o.kind != "unattributed"]
    assert believed == [], shape


def test_the_whole_corpus_beside_genuine_bounces(root: Path, tmp_path: Path, copies: dict[str, Copy],
                                                 other_issue: dict[str, Copy]) -> None:
    corpus = list(forgeries(copies, other_issue))
    assert len(corpus) >= 200 and len({shape for shape, _ in corpus}) >= 20
    gone = READERS[3], READERS[20]
    genuine = [genuine_dsn(copies[email], number) for number, email in enumerate(gone)]
    source = deliver(tmp_path / "Maildir", [data for _, data in corpus] + genuine)
    report = process_answers(load_config(root), source)
    assert suppressed(root) - {ATTACKER} == set(gone)  # exactly the two genuine bounces
    # what was refused, and why, counted per reason: every forgery is accounted for
    refused = sum(report.refused.values())
    acted = Counter(o.email for o in report.outcomes if o.kind != "unattributed")
    assert set(acted) <= {ATTACKER, *gone} and acted[gone[0]] == acted[gone[1]] == 1
    assert refused + acted[ATTACKER] == len(corpus), report.refused
    from gigo_mail.answers import proof  # here: the shapes above also run against code without it

    reasons = {proof.BAD_MESSAGE_ID, proof.BAD_VERP, proof.NOT_A_MAIL_SYSTEM, proof.NO_PROOF}
    assert set(report.refused) == reasons
    assert report.ignored_addresses >= 99  # the 100-address DSNs' other names, ignored
