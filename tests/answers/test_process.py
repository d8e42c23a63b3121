"""`gigo-mail bounces` over Maildir and mbox: attribution, suppression, idempotence, --dry-run, --move-to."""

from __future__ import annotations

import mailbox
import re
import time
from email.utils import formatdate
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import SmtpServer
from gigo_mail.address import address_key
from gigo_mail.answers.classify import COMPLAINT, HARD, SOFT
from gigo_mail.answers.process import AnswerStore, process_answers
from gigo_mail.answers.source import MaildirSource, MboxSource
from gigo_mail.cli.app import app
from gigo_mail.config import load_config
from gigo_mail.journal.deliveries import Journal
from gigo_mail.send.verp import VerpAddresses, VerpIndex, parse_verp
from support import make_newsletter, write_issue

SECRET = "answers-secret"
ANSWERS = Path(__file__).resolve().parents[1] / "data" / "answers"
runner = CliRunner()

# who issue 011 went to, with the Message-IDs the corpus quotes
SENT = {"gone@example.net": 7, "slow@example.org": 8, "closed@exim.example.com": 10,
        "old-user@qmail.example.org": 11, "annoyed@yahoo.example": 13, "hidden@hotmail.example": 14,
        "bjorn@example.org": 2, "dev@example.org": 4, "chen@example.org": 3, "ana@example.org": 1}


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_newsletter(tmp_path / "nl")
    monkeypatch.chdir(root)
    monkeypatch.setenv("GIGO_UNSUBSCRIBE_SECRET", SECRET)
    with Journal.for_root(root) as journal:
        for email, number in SENT.items():
            journal.mark_sent("011", address_key(email), email, f"<672f1a2b.a1b2c3d4e5f6.{number}@gigo.dev>",
                              250, "ok")
    return root


def maildir_with(path: Path, names: list[str], extra: list[bytes] = ()) -> Path:  # type: ignore[assignment]
    box = mailbox.Maildir(path, create=True)
    for name in names:
        box.add((ANSWERS / name).read_bytes())
    for data in extra:
        box.add(data)
    box.close()
    return path


def suppressions(root: Path) -> dict[str, str]:
    with Journal.for_root(root) as journal:
        return {row.email.lower(): row.reason for row in journal.suppressions()}


def test_the_corpus_suppresses_exactly_who_it_should(root: Path, tmp_path: Path) -> None:
    folder = maildir_with(tmp_path / "Maildir", sorted(p.name for p in ANSWERS.glob("*.eml")))
    code = runner.invoke(app, ["bounces", "--maildir", str(folder)])
    assert code.exit_code == 0, code.output
    assert suppressions(root) == {
        "gone@example.net": "hard bounce", "closed@exim.example.com": "hard bounce",
        "old-user@qmail.example.org": "hard bounce",
        "annoyed@yahoo.example": "complaint",
        # not hidden@hotmail.example: Microsoft redacts the recipient, and the quoted Message-ID is an
        # old, guessable one (no MAC), believed only with its own recipient named
        "bjorn@example.org": "unsubscribe by mail", "dev@example.org": "unsubscribe by mail"}
    out = code.output
    for label, count in (("hard bounces", 3), ("soft bounces", 1), ("complaints", 1), ("unsubscribes", 2),
                         ("ignored", 3), ("unattributed", 4)):
        assert re.search(rf"^\s*{label}\s+{count}\b", out, re.M), (label, out)
    # Gmail's, Exchange's and old Postfix's bounces quote Message-IDs this list never sent
    assert out.count("unattributed:") == 4
    # Gmail's and old Postfix's quote IDs the journal does not have; Exchange's quotes nothing
    assert re.search(r"^\s*2\s+quotes no Message-ID with a valid MAC of ours", out, re.M), out
    assert re.search(r"^\s*1\s+proves no message of ours", out, re.M), out
    assert re.search(r"^\s*unsubscribes\s+2\s+suppressed: 0 proven \(token or reply\), 2 by From only", out,
                     re.M), out
    assert re.search(r"^\s*1\s+quotes an old Message-ID but does not name the reader", out, re.M), out
    with AnswerStore.for_root(root) as store:
        counts = store.counts("011")
    assert (counts[HARD], counts[SOFT], counts[COMPLAINT]) == (3, 1, 1)


def test_running_twice_changes_nothing(root: Path, tmp_path: Path) -> None:
    folder = maildir_with(tmp_path / "Maildir", ["postfix-dsn-user-unknown.eml", "postfix-dsn-delayed.eml"])
    config = load_config(root)
    first = process_answers(config, MaildirSource(folder))
    assert sorted(o.kind for o in first.outcomes) == [HARD, SOFT]
    before = suppressions(root)
    with Journal.for_root(root) as journal:
        journal.unsuppress(["gone@example.net"])  # re-subscribed by hand after the first run
    second = process_answers(config, MaildirSource(folder))
    assert second.outcomes == [] and second.already == 2
    assert "gone@example.net" in before and "gone@example.net" not in suppressions(root)


def test_dry_run_changes_nothing(root: Path, tmp_path: Path) -> None:
    folder = maildir_with(tmp_path / "Maildir", ["postfix-dsn-user-unknown.eml", "yahoo-arf-complaint.eml"])
    result = runner.invoke(app, ["bounces", "--maildir", str(folder), "--dry-run", "--move-to", "Done"])
    assert result.exit_code == 0, result.output
    assert "would suppress" in result.output and "gone@example.net" in result.output
    assert suppressions(root) == {}
    assert len(mailbox.Maildir(folder).keys()) == 2
    assert process_answers(load_config(root), MaildirSource(folder)).already == 0  # not remembered either


def test_move_to_moves_processed_and_leaves_unattributed(root: Path, tmp_path: Path) -> None:
    folder = maildir_with(tmp_path / "Maildir", ["postfix-dsn-user-unknown.eml", "exchange-ndr.eml",
                                                 "out-of-office-rfc3834.eml"])
    report = process_answers(load_config(root), MaildirSource(folder), move_to="Processed")
    assert report.moved == 2
    box = mailbox.Maildir(folder)
    assert [m["subject"] for m in box] == ["Undeliverable: GIGO Tech Trends 011"]  # unattributed: stays
    assert len(box.get_folder("Processed")) == 2


def test_verp_ties_a_bounce_that_quotes_nothing(root: Path, tmp_path: Path) -> None:
    verp = VerpAddresses("bounce@gigo.dev", SECRET.encode(), "011").address(address_key("ana@example.org"))
    assert parse_verp(verp, "bounce@gigo.dev") and len(verp.partition("@")[0]) <= 64

    def bounce(to: str, number: int) -> bytes:  # quotes nothing of the original
        return (b"Return-Path: <>\r\nDelivered-To: " + to.upper().encode() + b"\r\n"  # upper-cased
                b"From: MAILER-DAEMON@mx.example.org\r\nTo: " + to.encode() + b"\r\n"
                b"Subject: failure notice\r\nMessage-ID: <bare-%d@mx.example.org>\r\n\r\n" % number
                + b"Hi. This is the qmail-send program at mx.example.org.\r\n"
                b"I'm afraid I wasn't able to deliver your message to the following addresses.\r\n\r\n"
                b"<forwarded.elsewhere@other.example>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n")

    bare = bounce(verp, 1)
    forged = bounce("bounce+011." + "a" * 20 + "@gigo.dev", 2)
    (root / "gigo-mail.toml").write_text((root / "gigo-mail.toml").read_text()
                                         + '\n[bounces]\nreturn_path = "bounce@gigo.dev"\nverp = true\n')
    folder = maildir_with(tmp_path / "Maildir", [], [bare, forged])
    report = process_answers(load_config(root), MaildirSource(folder))
    kinds = sorted((o.kind, o.email) for o in report.outcomes)
    assert kinds == [(HARD, "ana@example.org"), ("unattributed", "forwarded.elsewhere@other.example")]
    assert suppressions(root) == {"ana@example.org": "hard bounce"}


def test_unsubscribe_mail_only_from_a_subscribed_address(root: Path, tmp_path: Path) -> None:
    stranger = (ANSWERS / "unsubscribe-mailto.eml").read_bytes().replace(b"bjorn@example.org",
                                                                         b"someone@else.example")
    folder = maildir_with(tmp_path / "Maildir", [], [stranger])
    report = process_answers(load_config(root), MaildirSource(folder))
    assert [o.kind for o in report.outcomes] == ["unattributed"] and suppressions(root) == {}


def dated_now(data: bytes) -> bytes:
    """The report dated after the test's deliveries (which the journal stamps now, to the
    millisecond; a Date has whole seconds), as a real one is."""
    later = formatdate(time.time() + 60, usegmt=True).encode()
    return re.sub(rb"(?m)^Date: .*$", b"Date: " + later, data, count=1)


def delayed_reports(root: Path, issues: tuple[str, ...]) -> list[bytes]:
    """postfix-dsn-delayed.eml for slow@example.org on each issue (each delivered with a 250 first)."""
    delayed = (ANSWERS / "postfix-dsn-delayed.eml").read_bytes()
    with Journal.for_root(root) as journal:
        for issue in issues:
            if issue != "011":
                journal.mark_sent(issue, "slow@example.org", "slow@example.org", f"<{issue}.slow@gigo.dev>",
                                  250, "")
    return [dated_now(delayed if issue == "011" else
                      delayed.replace(b"672f1a2b.a1b2c3d4e5f6.8", f"{issue}.slow".encode())
                      .replace(b"5Ab3R81Sz0z9tS@", f"{issue}@".encode())) for issue in issues]


def test_repeated_soft_bounces_suppress(root: Path, tmp_path: Path) -> None:
    messages = delayed_reports(root, ("011", "012", "013"))
    folder = maildir_with(tmp_path / "Maildir", [], messages[:2])
    process_answers(load_config(root), MaildirSource(folder))
    assert suppressions(root) == {}  # two soft bounces: counted only
    maildir_with(folder, [], messages[2:])
    report = process_answers(load_config(root), MaildirSource(folder))
    assert [(o.kind, o.suppressed) for o in report.outcomes] == [(SOFT, True)]
    # the journal's count, the send path's: same reason as a send that gave up three issues in a row
    assert suppressions(root)["slow@example.org"].startswith("soft bounces: 3 issues in a row (last: 4.4.1")
    assert list(suppressions(root)) == ["slow@example.org"]


def test_soft_bounce_limit_comes_from_the_config(root: Path, tmp_path: Path) -> None:
    (root / "gigo-mail.toml").write_text((root / "gigo-mail.toml").read_text()
                                         + "\n[suppression]\nsoft_bounces = 2\n")
    messages = delayed_reports(root, ("011", "012"))
    dry = process_answers(load_config(root), MaildirSource(maildir_with(tmp_path / "Dry", [], messages)),
                          dry_run=True)
    assert [(o.kind, o.suppressed) for o in dry.outcomes] == [(SOFT, False), (SOFT, False)]  # counts nothing
    process_answers(load_config(root), MaildirSource(maildir_with(tmp_path / "Maildir", [], messages)))
    assert suppressions(root)["slow@example.org"].startswith("soft bounces: 2 issues in a row")


def test_a_soft_bounce_at_send_time_and_one_by_mail_count_together(root: Path, tmp_path: Path) -> None:
    (root / "gigo-mail.toml").write_text((root / "gigo-mail.toml").read_text()
                                         + "\n[suppression]\nsoft_bounces = 2\n")
    with Journal.for_root(root) as journal:  # what the sender records when it gives up on 010
        journal.mark_failed("010", address_key("slow@example.org"), "slow@example.org", 452,
                            "4.2.2 mailbox full (gave up after 3 tries)", False)
        journal.record_soft_bounce("010", "slow@example.org", "4.2.2 mailbox full", 2,
                                   at="2000-01-01T00:00:00.000+00:00")
    process_answers(load_config(root), MaildirSource(maildir_with(tmp_path / "Maildir", [],
                                                                  delayed_reports(root, ("011",)))))
    assert suppressions(root)["slow@example.org"].startswith("soft bounces: 2 issues in a row")


def test_a_report_older_than_the_delivery_does_not_count(root: Path, tmp_path: Path) -> None:
    """The report's own Date is the bounce's time: one written before the issue was delivered
    again (here: the corpus's 2024 date) is not a soft bounce of that delivery."""
    (root / "gigo-mail.toml").write_text((root / "gigo-mail.toml").read_text()
                                         + "\n[suppression]\nsoft_bounces = 1\n")
    folder = maildir_with(tmp_path / "Maildir", ["postfix-dsn-delayed.eml"])
    process_answers(load_config(root), MaildirSource(folder))
    with Journal.for_root(root) as journal:
        assert journal.soft_bounces_in_a_row("slow@example.org") == 0
    assert suppressions(root) == {}


def test_a_permanent_refusal_that_is_no_missing_mailbox_suppresses_nothing(root: Path,
                                                                          tmp_path: Path) -> None:
    gone = (ANSWERS / "postfix-dsn-user-unknown.eml").read_bytes()
    spam = gone.replace(b"5.1.1", b"5.7.1").replace(b"User unknown in virtual mailbox table",
                                                    b"Message rejected as spam")
    folder = maildir_with(tmp_path / "Maildir", [], [spam])
    result = runner.invoke(app, ["bounces", "--maildir", str(folder)])
    assert result.exit_code == 0, result.output
    assert re.search(r"^\s*other refusals\s+1\b", result.output, re.M), result.output
    assert suppressions(root) == {}  # as a 5.7.1 at RCPT: recorded, not suppressed
    assert re.search(r"^\s*other refusals\s+1\s+permanent, mailbox not gone",
                     runner.invoke(app, ["status", "011"]).output, re.M)
    with AnswerStore.for_root(root) as store:
        assert store.counts("011")[HARD] == 0


def test_mbox_source_and_move(root: Path, tmp_path: Path) -> None:
    path = tmp_path / "bounces.mbox"
    box = mailbox.mbox(path)
    for name in ("qmail-bounce.eml", "human-reply.eml"):
        box.add((ANSWERS / name).read_bytes())
    box.close()
    result = runner.invoke(app, ["bounces", "--mbox", str(path), "--move-to", "processed.mbox"])
    assert result.exit_code == 0, result.output
    assert suppressions(root) == {"old-user@qmail.example.org": "hard bounce"}
    assert len(mailbox.mbox(path)) == 0 and len(mailbox.mbox(tmp_path / "processed.mbox")) == 2
    source = MboxSource(path)
    try:
        assert list(source.messages()) == []
    finally:
        source.close()


def test_no_source_is_one_line(root: Path) -> None:
    result = runner.invoke(app, ["bounces"])
    assert result.exit_code == 1 and "no mailbox to read" in result.stderr
    result = runner.invoke(app, ["bounces", "--maildir", str(root / "nothing")])
    assert result.exit_code == 1 and "nothing: no such file or folder" in result.stderr


def test_a_send_with_verp_gives_each_recipient_its_own_return_path(root: Path,
                                                                   smtp_server: SmtpServer) -> None:
    (root / "gigo-mail.toml").write_text((root / "gigo-mail.toml").read_text()
                                         + '\n[bounces]\nreturn_path = "bounce@gigo.dev"\nverp = true\n')
    write_issue(root, "020.md", "number: 20\nsubject: Twenty\npreheader: p", "Hello.\n")
    result = runner.invoke(app, ["send", "020", "--list", "subscribers.csv", "--yes",
                                 "--smtp", smtp_server.url])
    assert result.exit_code == 0, result.output
    with Journal.for_root(root) as journal:
        assert journal.recipient_keys("020", untagged=False)  # every delivery keeps its return address's
        assert journal.recipient_keys("020", untagged=True) == []  # tag: found by index, not by a table
        index = VerpIndex(journal, SECRET.encode(), "bounce@gigo.dev")
        for received in smtp_server.messages:
            assert received.mail_from.startswith("bounce+020.") and received.mail_from.endswith("@gigo.dev")
            record = index.resolve(received.mail_from)
            assert record is not None and record.email.lower() == received.rcpt_tos[0].lower()
            assert received.parse()["From"].addresses[0].addr_spec == "newsletter@gigo.dev"
    assert len({m.mail_from for m in smtp_server.messages}) == len(smtp_server.messages) > 3, result.output


def test_status_shows_bounces_and_the_complaint_rate_against_gmails_line(root: Path, tmp_path: Path) -> None:
    folder = maildir_with(tmp_path / "Maildir", ["postfix-dsn-user-unknown.eml", "yahoo-arf-complaint.eml",
                                                 "postfix-dsn-delayed.eml"])
    process_answers(load_config(root), MaildirSource(folder))
    result = runner.invoke(app, ["status", "011"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert re.search(r"^\s*hard bounces\s+1\s+suppressed", out, re.M)
    assert re.search(r"^\s*soft bounces\s+1\b", out, re.M)
    over = r"10\.00% of sent: over Gmail's line is 0\.3%"  # 1 complaint in 10 sent
    assert re.search(rf"^\s*complaints\s+1\s+{over}", out, re.M)
    assert "gone@example.net" in out and "annoyed@yahoo.example" in out
