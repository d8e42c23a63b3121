"""The inbox's Maildir storage: messages from a real InboxServer listed, parsed back and cleared."""

from __future__ import annotations

import smtplib
from pathlib import Path

import pytest

from gigo_mail.web.inbox import (
    CapturedMessage,
    InboxServer,
    clear,
    list_messages,
    load_message,
    message_parts,
    related_part,
)
from support import PNG, newsletter_mail


def test_messages_land_in_maildir_and_parse_back(inbox: tuple[InboxServer, list[CapturedMessage]]) -> None:
    server, seen = inbox
    sent = [newsletter_mail(f"Reader {i} <reader{i}@example.org>", f"Issue 011 [{i}]", i) for i in range(3)]
    with smtplib.SMTP("127.0.0.1", server.port) as client:
        for msg in sent:
            client.send_message(msg)

    listed = list_messages(server.maildir)
    assert len(listed) == 3 == len(seen) == server.received
    assert [m.subject for m in listed] == ["Issue 011 [2]", "Issue 011 [1]", "Issue 011 [0]"]  # newest first
    assert {m.id for m in listed} == {m.id for m in seen}
    for row in listed:
        assert row.mail_from == "news@example.org"
        assert row.from_header == "Zoë's Letter <news@example.org>"  # decoded from encoded words
        assert row.path is not None and row.path.stat().st_size == row.size
        stored = load_message(server.maildir, row.id)
        number = int(row.subject[-2])
        original = sent[number]
        for header in ("From", "To", "Subject", "Message-ID", "List-Unsubscribe"):
            assert stored[header] == original[header], header
        assert row.to == original["To"]
        assert row.recipients == (f"reader{number}@example.org",)
        html, text = message_parts(stored)
        assert text == f"Hello {number}, plain text part.\n"
        assert html is not None and f"<p>Hello {number}</p>" in html
        assert related_part(stored, "logo@example.org") == ("image/png", PNG)


def test_unknown_message_id_is_a_key_error(inbox: tuple[InboxServer, list[CapturedMessage]]) -> None:
    server, _ = inbox
    for bad in ("nope", "../new", "", ".probe"):
        with pytest.raises(KeyError):
            load_message(server.maildir, bad)


def test_clear_empties_the_inbox(inbox: tuple[InboxServer, list[CapturedMessage]], tmp_path: Path) -> None:
    server, _ = inbox
    with smtplib.SMTP("127.0.0.1", server.port) as client:
        for i in range(4):
            client.send_message(newsletter_mail("a@example.org", f"m{i}", i))
    assert clear(server.maildir) == 4
    assert list_messages(server.maildir) == []
    assert clear(tmp_path / "never-created") == 0
