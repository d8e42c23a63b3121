"""What proves a reader: MAC'd Message-IDs, checked return addresses, mail-system senders, the old
IDs of messages sent before, and tokenised unsubscribe addresses."""

from __future__ import annotations

import base64
import mailbox
import quopri
import re
from email import message_from_bytes, policy
from email.message import Message
from pathlib import Path
from urllib.parse import quote

import pytest
from forgery import (
    ATTACKER,
    READERS,
    SECRET,
    dsn,
    forgery_newsletter,
    genuine_dsn,
    sent_list,
    token_address,
)
from typer.testing import CliRunner

from gigo_mail.address import address_key
from gigo_mail.answers.classify import HARD, UNSUBSCRIBE
from gigo_mail.answers.process import process_answers
from gigo_mail.answers.proof import (
    BAD_TOKEN,
    LEGACY_OTHER_RECIPIENT,
    LEGACY_SPRAYED,
    LEGACY_TOO_OLD,
    NOT_A_MAIL_SYSTEM,
    PROOFS_DISAGREE,
    from_mail_system,
)
from gigo_mail.answers.source import MaildirSource
from gigo_mail.cli.app import app
from gigo_mail.compose.compile import compile_issue
from gigo_mail.compose.issue import find_issue
from gigo_mail.config import load_config
from gigo_mail.journal.deliveries import Journal
from gigo_mail.lists.reader import sample_subscriber
from gigo_mail.send.message import MessageFactory
from gigo_mail.send.msgid import MessageIds
from gigo_mail.send.verp import UNSUBSCRIBE_CONTEXT, VerpIndex

ANSWERS = Path(__file__).resolve().parents[1] / "data" / "answers"
runner = CliRunner()


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return forgery_newsletter(tmp_path, monkeypatch)


def run(root: Path, folder: Path, messages: list[bytes]):  # type: ignore[no-untyped-def]
    box = mailbox.Maildir(folder, create=True)
    for data in messages:
        box.add(data)
    box.close()
    return process_answers(load_config(root), MaildirSource(folder))


def suppressed(root: Path) -> dict[str, str]:
    with Journal.for_root(root) as journal:
        return {row.email.lower(): row.reason for row in journal.suppressions()}


# --- Message-IDs ------------------------------------------------------------------------------

def test_message_ids_are_unique_stable_and_prove_only_their_recipient() -> None:
    ids = MessageIds(b"s", "011", "gigo.dev")
    made = [ids.make(f"reader{n}@example.org") for n in range(2000)]
    assert len(set(made)) == 2000 and all(re.fullmatch(r"<[0-9a-f]{30}@gigo\.dev>", m) for m in made)
    assert ids.make("reader7@example.org") == made[7]  # the same message when re-sent
    assert ids.proves(made[7], "reader7@example.org") and ids.proves(made[7].upper(), "reader7@example.org")
    assert not ids.proves(made[7], "reader8@example.org")
    assert not MessageIds(b"s", "012").proves(made[7], "reader7@example.org")  # another issue's
    assert not MessageIds(b"other", "011").proves(made[7], "reader7@example.org")  # another secret's
    other_domain = MessageIds(b"s", "011", "other.example").make("a@b.c")
    assert other_domain.split("@")[0] == ids.make("a@b.c").split("@")[0]


def test_the_factory_gives_each_reader_a_macd_id_and_test_copies_a_random_one(root: Path) -> None:
    compiled = compile_issue(load_config(root), find_issue(root, "011"))
    factory = MessageFactory(compiled, secret=SECRET.encode())
    reader = sample_subscriber("Ann@Example.org")
    first = factory.build(reader).message_id
    assert MessageIds(SECRET.encode(), "011").proves(first, address_key("ann@example.org"))
    assert factory.build(reader).message_id == first  # stable: --resend-uncertain sends the same message
    assert factory.build(reader, "<old.1@gigo.dev>").message_id == "<old.1@gigo.dev>"  # the journal's wins
    assert "ann" not in first.lower()
    test = MessageFactory(compiled, secret=SECRET.encode(), test=True)
    copies = {test.build(reader).message_id for _ in range(3)}
    assert len(copies) == 3 and first not in copies  # a test copy is never folded into the real one


def test_the_journal_finds_a_message_id_by_index(root: Path) -> None:
    sent_list(root)
    with Journal.for_root(root) as journal:
        plan = " ".join(str(row) for row in journal._db.execute(  # noqa: SLF001 - the query plan is the point
            "EXPLAIN QUERY PLAN SELECT * FROM deliveries WHERE message_id = ?", ("<x@y>",)))
    assert "deliveries_by_message_id" in plan, plan


# --- mail systems ----------------------------------------------------------------------------

def headers(text: str) -> Message:
    return message_from_bytes(text.encode() + b"\r\n\r\nbody", policy=policy.compat32)


@pytest.mark.parametrize(("head", "believed"), [
    ("Return-Path: <>\r\nFrom: Mail Delivery System <MAILER-DAEMON@mx.example>", True),
    ("Return-Path: <MAILER-DAEMON>\r\nFrom: MAILER-DAEMON", True),  # Sendmail's spelling of the null sender
    ("Return-Path: <postmaster@corp.example>\r\nFrom: postmaster@corp.example", True),
    ("From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>", True),  # no Return-Path written
    ("Return-Path: <bob@example.org>\r\nFrom: MAILER-DAEMON@example.org", False),  # a person's envelope
    ("From: Mail Delivery System <bob@example.org>", False),  # a display name proves nothing
    ("Return-Path: <mailer-daemon-fan@example.org>\r\nFrom: x", False),
])
def test_only_mail_systems_send_bounces(head: str, believed: bool) -> None:
    assert from_mail_system(headers(head)) is believed


# --- proofs ----------------------------------------------------------------------------------

def test_a_genuine_bounce_proves_by_its_message_id_without_verp(root: Path, tmp_path: Path) -> None:
    (root / "gigo-mail.toml").write_text((root / "gigo-mail.toml").read_text().replace("verp = true",
                                                                                       "verp = false"))
    copies = sent_list(root)
    ann = copies[READERS[0]]
    assert ann.return_path == "bounce@gigo.dev"  # one return address for all: only the ID proves
    forwarded = dsn(to="bounce@gigo.dev", failures=["ann.new@forwarded.example"], message_id=ann.message_id)
    report = run(root, tmp_path / "Maildir", [forwarded])
    # the forwarded address maps to the proven recipient, as Original-Recipient does
    assert [(o.kind, o.email, o.proof) for o in report.outcomes] == [(HARD, READERS[0], "Message-ID")]
    assert suppressed(root) == {READERS[0]: "hard bounce"}


# the real-world answers of tests/data/answers, as they would quote the MAC'd IDs of today's sends
FIXTURES = {"postfix-dsn-user-unknown.eml": ("gone@example.net", 7),
            "exim-bounce.eml": ("closed@exim.example.com", 10),
            "qmail-bounce.eml": ("old-user@qmail.example.org", 11),
            "yahoo-arf-complaint.eml": ("annoyed@yahoo.example", 13),
            "microsoft-jmrp-complaint.eml": ("hidden@hotmail.example", 14)}


def test_real_world_answers_quoting_macd_ids_prove_their_reader(root: Path, tmp_path: Path) -> None:
    copies = sent_list(root, emails=[email for email, _ in FIXTURES.values()])
    answers = []
    for name, (email, number) in FIXTURES.items():
        data = (ANSWERS / name).read_bytes()
        old = f"<672f1a2b.a1b2c3d4e5f6.{number}@gigo.dev>".encode()
        assert old in data, name
        answers.append(data.replace(old, copies[email].message_id.encode()))
    report = run(root, tmp_path / "Maildir", answers)
    assert suppressed(root) == {  # Microsoft redacts the To: the ID proves the reader all the same
        "gone@example.net": "hard bounce", "closed@exim.example.com": "hard bounce",
        "old-user@qmail.example.org": "hard bounce", "annoyed@yahoo.example": "complaint",
        "hidden@hotmail.example": "complaint"}
    assert {o.proof for o in report.outcomes} == {"Message-ID"} and not report.refused


def test_proofs_that_name_different_messages_are_not_believed(root: Path, tmp_path: Path) -> None:
    copies = sent_list(root)
    mixed = dsn(to=copies[READERS[1]].return_path, failures=[READERS[1]],
                message_id=copies[ATTACKER].message_id)
    report = run(root, tmp_path / "Maildir", [mixed])
    assert report.refused == {PROOFS_DISAGREE: 1} and suppressed(root) == {}


def test_genuine_dsns_suppress_their_reader_and_a_person_cannot_send_one(root: Path, tmp_path: Path) -> None:
    copies = sent_list(root)
    genuine = genuine_dsn(copies[READERS[2]])
    from_person = genuine.replace(b"Return-Path: <>", b"Return-Path: <" + ATTACKER.encode() + b">").replace(
        b"Message-ID: <dsn.", b"Message-ID: <forged.")
    report = run(root, tmp_path / "Maildir", [genuine, from_person])
    assert suppressed(root) == {READERS[2]: "hard bounce"}
    assert report.refused == {NOT_A_MAIL_SYSTEM: 1}


# --- messages sent before MAC'd Message-IDs --------------------------------------------------

LEGACY = {email: f"<672f1a2b.a1b2c3d4e5f6.{n}@gigo.dev>" for n, email in enumerate(READERS, 1)}


@pytest.fixture
def legacy(root: Path) -> Path:
    (root / "gigo-mail.toml").write_text((root / "gigo-mail.toml").read_text().replace("verp = true",
                                                                                       "verp = false"))
    with Journal.for_root(root) as journal:
        for email, message_id in LEGACY.items():
            journal.mark_sent("011", address_key(email), email, message_id, 250, "ok")
    return root


def test_answers_to_old_messages_keep_working_with_their_recipient_named(legacy: Path,
                                                                         tmp_path: Path) -> None:
    genuine = dsn(to="bounce@gigo.dev", failures=[READERS[4]], message_id=LEGACY[READERS[4]])
    report = run(legacy, tmp_path / "Maildir", [genuine])
    assert [(o.email, o.proof) for o in report.outcomes] == [(READERS[4], "old Message-ID")]
    assert suppressed(legacy) == {READERS[4]: "hard bounce"}


def test_an_old_message_id_naming_another_address_is_not_believed(legacy: Path, tmp_path: Path) -> None:
    forged = [dsn(to="bounce@gigo.dev", failures=[READERS[(n + 1) % len(READERS)]], message_id=LEGACY[email],
                  number=n) for n, email in enumerate(READERS)]
    forged += [dsn(to="bounce@gigo.dev", failures=[ATTACKER], message_id=LEGACY[email], number=99 + n)
               for n, email in enumerate(READERS)]
    report = run(legacy, tmp_path / "Maildir", forged)
    assert suppressed(legacy) == {} and report.refused == {LEGACY_OTHER_RECIPIENT: 2 * len(READERS)}


def test_trying_addresses_against_old_message_ids_gives_itself_away(legacy: Path, tmp_path: Path) -> None:
    """Whoever knows some readers' addresses tries each against every guessed ID: the one right
    combination (here even the first one read) is not believed beside the wrong ones."""
    victims = READERS[:3]
    sprayed = [dsn(to="bounce@gigo.dev", failures=[victim], message_id=LEGACY[victim], number=n)
               for n, victim in enumerate(victims)]
    sprayed += [dsn(to="bounce@gigo.dev", failures=[victim], message_id=message_id, number=100 + n)
                for n, (victim, message_id) in enumerate((v, m) for v in victims for m in LEGACY.values())
                if LEGACY[victim] != message_id]
    report = run(legacy, tmp_path / "Maildir", sprayed)
    assert suppressed(legacy) == {}
    assert report.refused == {LEGACY_SPRAYED: 3, LEGACY_OTHER_RECIPIENT: len(sprayed) - 3}


def test_old_message_ids_are_believed_only_for_a_while(legacy: Path, tmp_path: Path) -> None:
    with Journal.for_root(legacy) as journal, journal._db:  # noqa: SLF001 - age the deliveries
        journal._db.execute("UPDATE deliveries SET updated_at = '2026-01-01T00:00:00.000+00:00'")  # noqa: SLF001
    report = run(legacy, tmp_path / "Maildir", [dsn(to="bounce@gigo.dev", failures=[READERS[4]],
                                                    message_id=LEGACY[READERS[4]])])
    assert suppressed(legacy) == {} and report.refused == {LEGACY_TOO_OLD: 1}


# --- mailed unsubscribe requests -------------------------------------------------------------

def test_the_unsubscribe_token_proves_the_reader_and_holds_no_address(root: Path, tmp_path: Path) -> None:
    copies = sent_list(root)
    for copy in copies.values():
        address = token_address(copy)
        assert re.fullmatch(r"unsubscribe\+011\.[0-9a-f]{20}@gigo\.dev", address), address
        assert copy.list_unsubscribe.startswith("<https://") and "=?" not in copy.list_unsubscribe
        email = copy.email.encode()
        local = copy.email.partition("@")[0].encode()
        for spelling in (email, local, base64.b64encode(email), base64.urlsafe_b64encode(local).rstrip(b"="),
                         base64.b32encode(local).rstrip(b"=").lower(), email.hex().encode(),
                         local.hex().encode(), quopri.encodestring(email), quote(copy.email).encode()):
            assert spelling.lower().decode() not in address.lower()
    with Journal.for_root(root) as journal:
        index = VerpIndex(journal, SECRET.encode(), "unsubscribe@gigo.dev", UNSUBSCRIBE_CONTEXT)
        record = index.resolve(token_address(copies[READERS[5]]))
        assert record is not None and record.email == READERS[5]
        # a return address is no unsubscribe token, nor the other way round
        assert VerpIndex(journal, SECRET.encode(), "bounce@gigo.dev").resolve(
            token_address(copies[READERS[5]]).replace("unsubscribe+", "bounce+")) is None


def request(to: str, sender: str, number: int, replies_to: str = "") -> bytes:
    reply = f"In-Reply-To: {replies_to}\r\nReferences: {replies_to}\r\n" if replies_to else ""
    return (f"Return-Path: <{sender}>\r\nDelivered-To: {to}\r\nFrom: {sender}\r\nTo: {to}\r\n{reply}"
            f"Subject: unsubscribe\r\nMessage-ID: <unsub.{number}@client.example>\r\n\r\n\r\n").encode()


def test_mailed_unsubscribes_are_honoured_by_from_and_proven_by_token(root: Path, tmp_path: Path) -> None:
    copies = sent_list(root)
    messages = [
        request(token_address(copies[READERS[6]]), "reader6.other.account@else.example", 1),  # proven
        request(token_address(copies[READERS[7]]), READERS[7], 2),  # proven, from the reader too
        request("unsubscribe@gigo.dev", READERS[8], 3),  # by From only
        request(f"unsubscribe+011.{'0' * 20}@gigo.dev", "nobody@else.example", 4),  # a made-up token
        request("unsubscribe@gigo.dev", "reader9.forwarding@else.example", 5,
                replies_to=copies[READERS[9]].message_id),  # a reply to the reader's own message
        request("unsubscribe@gigo.dev", "nobody@else.example", 6,
                replies_to="<672f1a2b.a1b2c3d4e5f6.4@gigo.dev>"),  # an old, guessable ID proves nothing
    ]
    report = run(root, tmp_path / "Maildir", messages)
    assert suppressed(root) == {email: "unsubscribe by mail" for email in READERS[6:10]}
    proofs = {o.email: o.proof for o in report.outcomes if o.kind == UNSUBSCRIBE}
    assert proofs == {READERS[6]: "unsubscribe token", READERS[7]: "unsubscribe token", READERS[8]: "From",
                      READERS[9]: "reply to its Message-ID"}
    assert report.refused[BAD_TOKEN] == 1


def test_bounces_dry_run_says_what_it_did_not_believe_and_which_requests_were_proven(
        root: Path, tmp_path: Path) -> None:
    copies = sent_list(root)
    box = mailbox.Maildir(tmp_path / "Maildir", create=True)
    for data in (request(token_address(copies[READERS[6]]), READERS[6], 1), request("unsubscribe@gigo.dev",
                 READERS[8], 2), dsn(to="bounce@gigo.dev", failures=READERS[:3], sender=ATTACKER,
                                     return_path=f"<{ATTACKER}>"),
                 dsn(to=f"bounce+011.{'a' * 20}@gigo.dev", failures=[READERS[9]], number=1),
                 dsn(to=f"bounce+011.{'b' * 20}@gigo.dev", failures=[READERS[9]], number=2)):
        box.add(data)
    box.close()
    result = runner.invoke(app, ["bounces", "--maildir", str(tmp_path / "Maildir"), "--dry-run"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert re.search(r"^\s*unsubscribes\s+2\s+would suppress: 1 proven \(token or reply\), 1 by From", out,
                     re.M), out
    assert re.search(r"^\s*1\s+a bounce not from a mail system", out, re.M), out
    assert re.search(r"^\s*2\s+sent to a return address whose MAC does not verify", out, re.M), out
    assert suppressed(root) == {}


def test_a_genuine_bounce_quoting_the_message_id_in_another_case_still_proves(root: Path,
                                                                              tmp_path: Path) -> None:
    """Some mail systems change the case of what they quote (the MAC check ignores case for that):
    the journal's lookup of the quoted ID must find the delivery all the same, or the reader's
    genuine bounce is lost."""
    (root / "gigo-mail.toml").write_text((root / "gigo-mail.toml").read_text().replace("verp = true",
                                                                                       "verp = false"))
    copies = sent_list(root)
    ann = copies[READERS[0]]
    shouted = dsn(to="bounce@gigo.dev", failures=[READERS[0]], message_id=ann.message_id.upper())
    report = run(root, tmp_path / "Maildir", [shouted])
    assert [(o.kind, o.email, o.proof) for o in report.outcomes] == [(HARD, READERS[0], "Message-ID")]
    assert suppressed(root) == {READERS[0]: "hard bounce"}
