"""A newsletter sent to a small list, and answers forged against it, of many shapes.

``sent_list`` builds every reader's real message with ``MessageFactory`` (the Message-ID,
the VERP return address and the List-Unsubscribe the send path makes) and records each
delivery in the journal as the sender does (the return address's lookup tag with its
``sending`` mark). One reader, the attacker, keeps their own copy and forges answers from
what it shows: its Message-ID (guessing the others' by counting from it), its return
address, the list's plain bounce address.

``forgeries`` yields (shape, bytes) for every attack; ``genuine_dsn`` is what a real mail
system sends back to a reader's own return address.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from gigo_mail.compose.compile import compile_issue
from gigo_mail.compose.issue import find_issue
from gigo_mail.config import load_config
from gigo_mail.journal.deliveries import Journal
from gigo_mail.lists.reader import sample_subscriber
from gigo_mail.send.message import MessageFactory
from support import make_newsletter, write_issue

SECRET = "forgery-secret"
BASE = "bounce@gigo.dev"
ATTACKER = "mallory@attacker.example"
READERS = [f"reader{n:02d}@readers.example" for n in range(1, 29)]  # 28 readers, as in the report
STRANGERS = [f"stranger{n:02d}@elsewhere.example" for n in range(1, 73)]
CONFIG_EXTRA = f'\n[bounces]\nreturn_path = "{BASE}"\nverp = true\n'


@dataclass(frozen=True)
class Copy:
    """One reader's message, as their mailbox shows it."""

    email: str
    message_id: str
    return_path: str
    list_unsubscribe: str


def sent_list(root: Path, issue: str = "011", emails: list[str] | None = None) -> dict[str, Copy]:
    """Build and journal issue ``issue`` for ``emails``, by default the attacker and every reader
    (in list order)."""
    if issue != "011":
        write_issue(root, f"{issue}.md", f"number: {int(issue)}\nsubject: Issue {issue}\npreheader: p",
                    "Hi.\n")
    compiled = compile_issue(load_config(root), find_issue(root, issue))
    factory = MessageFactory(compiled, secret=SECRET.encode())
    copies = {}
    with Journal.for_root(root) as journal:
        for email in emails or [*READERS[:14], ATTACKER, *READERS[14:]]:
            subscriber = sample_subscriber(email)
            built = factory.build(subscriber)
            msg = message_from_bytes(built.data, policy=policy.compat32)
            return_path = factory.envelope_for(subscriber)
            copies[email] = Copy(email, built.message_id, return_path,
                                 " ".join(str(msg["List-Unsubscribe"]).split()))
            journal.mark_sending(issue, subscriber.key, email, built.message_id,
                                 factory.verp_tag(return_path))
            journal.mark_sent(issue, subscriber.key, email, built.message_id, 250, "2.0.0 ok")
    return copies


def dsn(*, to: str, failures: list[str], message_id: str = "", original_return_path: str = "",
        sender: str = "MAILER-DAEMON@mx.readers.example", return_path: str = "<>", status: str = "5.1.1",
        delivered_to: str = "", pasted_id: str = "", number: int = 0) -> bytes:
    """An RFC 3464 report of permanent failures for ``failures``, quoting the original's headers."""
    boundary = f"b{os.urandom(6).hex()}"
    head = f"Return-Path: {return_path}\r\n" if return_path is not None else ""
    head += f"Delivered-To: {delivered_to or to}\r\n"
    head += (f"From: Mail Delivery System <{sender}>\r\nTo: {to}\r\n"
             "Subject: Undelivered Mail Returned to Sender\r\nDate: Mon, 07 Dec 2026 10:00:00 +0000\r\n"
             f"Message-ID: <dsn.{number}.{boundary}@mx>\r\n"
             "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
             f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\r\n\r\n')
    text = "".join(f"<{a}>: host mx said: 550 {status} User unknown\r\n" for a in failures)
    if pasted_id:
        text += f"\r\nMessage-ID: {pasted_id}\r\n"
    blocks = "".join(f"Final-Recipient: rfc822; {a}\r\nAction: failed\r\nStatus: {status}\r\n"
                     f"Diagnostic-Code: smtp; 550 {status} <{a}>: User unknown\r\n\r\n" for a in failures)
    original = f"From: GIGO Tech Trends <newsletter@gigo.dev>\r\nTo: {failures[0] if failures else ''}\r\n"
    if original_return_path:
        original = f"Return-Path: <{original_return_path}>\r\n" + original
    if message_id:
        original += f"Message-ID: {message_id}\r\n"
    return (head + f"--{boundary}\r\nContent-Type: text/plain\r\n\r\n{text}\r\n"
            f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
            f"{blocks}--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n{original}\r\n"
            f"--{boundary}--\r\n").encode()


def arf(*, to: str, recipient: str, message_id: str = "", original_mail_from: str = "",
        number: int = 0) -> bytes:
    """An RFC 5965 abuse report about the message ``message_id`` to ``recipient``."""
    boundary = f"a{os.urandom(6).hex()}"
    fields = "Feedback-Type: abuse\r\nUser-Agent: FBL/1.0\r\nVersion: 1\r\n"
    fields += f"Original-Rcpt-To: {recipient}\r\n"
    if original_mail_from:
        fields += f"Original-Mail-From: {original_mail_from}\r\n"
    original = f"From: newsletter@gigo.dev\r\nTo: {recipient}\r\nSubject: 011\r\n"
    if message_id:
        original += f"Message-ID: {message_id}\r\n"
    return (f"Return-Path: <fbl@provider.example>\r\nDelivered-To: {to}\r\nFrom: fbl@provider.example\r\n"
            f"To: {to}\r\nSubject: Abuse report\r\nMessage-ID: <arf.{number}.{boundary}@provider>\r\n"
            f'MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report; '
            f'boundary="{boundary}"\r\n\r\n--{boundary}\r\nContent-Type: text/plain\r\n\r\nAbuse report.\r\n'
            f"--{boundary}\r\nContent-Type: message/feedback-report\r\n\r\n{fields}\r\n"
            f"--{boundary}\r\nContent-Type: message/rfc822\r\n\r\n{original}\r\nHello.\r\n"
            f"--{boundary}--\r\n").encode()


def plain_bounce(*, to: str, failures: list[str], message_id: str, sender: str, number: int = 0) -> bytes:
    """A qmail-style bounce (no report part), quoting the original's Message-ID in its text."""
    listed = "".join(f"<{a}>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n\r\n" for a in failures)
    return (f"Return-Path: <>\r\nDelivered-To: {to}\r\nFrom: {sender}\r\nTo: {to}\r\n"
            "Subject: failure notice\r\n"
            f"Message-ID: <qmail.{number}.{os.urandom(4).hex()}@mx>\r\n\r\n"
            "Hi. This is the qmail-send program at mx.readers.example.\r\n"
            "I'm afraid I wasn't able to deliver your message to the following addresses.\r\n\r\n"
            f"{listed}--- Below this line is a copy of the message.\r\n\r\nMessage-ID: {message_id}\r\n"
            "From: newsletter@gigo.dev\r\n\r\nHello.\r\n").encode()


def guessed_ids(own: str, count: int) -> list[str]:
    """Message-IDs near the attacker's own: counted up and down from a sequential one, or, from
    an opaque one, the same shape with its last characters changed and the old sequential shape."""
    local, _, domain = own.strip("<>").rpartition("@")
    head, dot, number = local.rpartition(".")
    if dot and number.isdigit():
        near = [int(number) + k for k in range(-count // 2, count // 2 + 1) if k]
        return [f"<{head}.{n}@{domain}>" for n in near if n > 0][:count]
    out = [f"<{local[:-2]}{k % 256:02x}@{domain}>" for k in range(count // 2)]
    out += [f"<{os.urandom(4).hex()}.{os.urandom(6).hex()}.{k}@{domain}>" for k in range(count - len(out))]
    return [guess for guess in out if guess.strip("<>") != own.strip("<>")]


def random_ids(count: int) -> list[str]:
    """IDs of today's shape (30 hex digits), half of them upper-cased."""
    ids = [os.urandom(15).hex() for _ in range(count)]
    return [f"<{mac if n % 2 else mac.upper()}@gigo.dev>" for n, mac in enumerate(ids)]


def other_issue_verp(own_other_issue: str, issue: str = "011") -> str:
    """The attacker's valid return address of another issue, relabelled as ``issue``'s."""
    local, _, domain = own_other_issue.rpartition("@")
    mac = local.rpartition(".")[2]
    return f"bounce+{issue}.{mac}@{domain}"


def forgeries(copies: dict[str, Copy], other_issue: dict[str, Copy] | None = None
              ) -> Iterator[tuple[str, bytes]]:
    """Every forged answer, by shape; see the module docs. Victims are the readers."""
    own = copies[ATTACKER]
    n = 0
    for guess, victim in zip(guessed_ids(own.message_id, 40), READERS * 2, strict=False):
        n += 1
        yield "dsn quoting a guessed Message-ID", dsn(to=BASE, failures=[victim], message_id=guess, number=n)
        yield "arf quoting a guessed Message-ID", arf(to="fbl@gigo.dev", recipient=victim, message_id=guess,
                                                       number=n)
    for guess in guessed_ids(own.message_id, 20):  # naming no one: the old code found the reader by the ID
        n += 1
        yield "dsn naming only a stranger", dsn(to=BASE, failures=["nobody@elsewhere.example"],
                                                message_id=guess, number=n)
    for random_id, victim in zip(random_ids(20), READERS, strict=False):
        n += 1
        yield "dsn quoting a random Message-ID", dsn(to=BASE, failures=[victim], message_id=random_id,
                                                     number=n)
        yield "arf quoting a random Message-ID", arf(to="fbl@gigo.dev", recipient=victim,
                                                     message_id=random_id, number=n)
        yield "message-id pasted in the text", dsn(to=BASE, failures=[victim], pasted_id=random_id, number=n)
    for victim in READERS:
        n += 1
        yield "dsn to the attacker's own return address naming another", dsn(
            to=own.return_path, failures=[victim], number=n)
        yield "bounce from a person's address", dsn(
            to=BASE, failures=[victim], sender=ATTACKER, return_path=f"<{ATTACKER}>", number=n)
        yield "bounce from a person without a return path", dsn(
            to=BASE, failures=[victim], sender=ATTACKER, return_path=None, number=n)  # type: ignore[arg-type]
        yield "daemon display name on a person's address", dsn(
            to=BASE, failures=[victim], sender="mailer.daemon.fan@attacker.example",
            return_path="<mailer.daemon.fan@attacker.example>", number=n)
        yield "bad-MAC return address", dsn(to=f"bounce+011.{os.urandom(10).hex()}@gigo.dev",
                                            failures=[victim], number=n)
        yield "bad-MAC return address in Delivered-To only", dsn(
            to=BASE, delivered_to=f"bounce+011.{os.urandom(10).hex()}@gigo.dev", failures=[victim], number=n)
        yield "bad-MAC return path quoted in the original", dsn(
            to=BASE, original_return_path=f"bounce+011.{os.urandom(10).hex()}@gigo.dev", failures=[victim],
            number=n)
        yield "arf with a bad-MAC original mail from", arf(
            to="fbl@gigo.dev", recipient=victim,
            original_mail_from=f"bounce+011.{os.urandom(10).hex()}@gigo.dev", number=n)
        yield "plain bounce from a daemon quoting a guessed ID", plain_bounce(
            to=BASE, failures=[victim], message_id=guessed_ids(own.message_id, 2)[0],
            sender="MAILER-DAEMON@mx.readers.example", number=n)
        yield "arf naming a reader with no proof", arf(to="fbl@gigo.dev", recipient=victim, number=n)
        if other_issue is not None:
            yield "return address MAC from another issue", dsn(
                to=other_issue_verp(other_issue[ATTACKER].return_path), failures=[victim], number=n)
    everyone = [*READERS, *STRANGERS]
    yield "one dsn listing 100 addresses", dsn(to=BASE, failures=everyone, number=n + 1)
    yield "one dsn listing 100 addresses with a guessed ID", dsn(
        to=BASE, failures=everyone, message_id=guessed_ids(own.message_id, 2)[0], number=n + 2)
    yield "one dsn listing 100 addresses to the attacker's return address", dsn(
        to=own.return_path, failures=everyone, number=n + 3)
    yield "attacker's own Message-ID naming 100 addresses", dsn(
        to=BASE, failures=everyone, message_id=own.message_id, number=n + 4)


def shapes() -> list[str]:
    """Every shape ``forgeries`` makes (from stand-in copies: the shapes do not depend on them)."""
    stand_in = {ATTACKER: Copy(ATTACKER, "<a.b.15@gigo.dev>", "bounce+011.0@gigo.dev", "")}
    return sorted({shape for shape, _ in forgeries(stand_in, stand_in)})


def genuine_dsn(copy: Copy, number: int = 0) -> bytes:
    """What a real mail system sends back to a reader's own return address about their message."""
    return dsn(to=copy.return_path, failures=[copy.email], message_id=copy.message_id,
               original_return_path=copy.return_path, number=number)


def token_address(copy: Copy) -> str:
    """The tokenised mailto address in a copy's List-Unsubscribe."""
    found = re.search(r"<mailto:([^?>]+)", copy.list_unsubscribe)
    assert found is not None, copy.list_unsubscribe
    return found.group(1)


def forgery_newsletter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A newsletter (cwd, secret set) with VERP on: what the forged answers are aimed at."""
    root = make_newsletter(tmp_path / "nl")
    (root / "gigo-mail.toml").write_text((root / "gigo-mail.toml").read_text() + CONFIG_EXTRA)
    monkeypatch.chdir(root)
    monkeypatch.setenv("GIGO_UNSUBSCRIBE_SECRET", SECRET)
    return root
