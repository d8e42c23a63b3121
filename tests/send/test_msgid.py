"""The per-recipient MACs: the same bytes as the standard library's HMAC, so the return
addresses of mail already sent still resolve, and Message-IDs that prove one message each."""

from __future__ import annotations

import hmac

import pytest

from gigo_mail.send.msgid import MessageIds, random_message_id
from gigo_mail.send.verp import IssueMac, VerpAddresses, verp_mac


@pytest.mark.parametrize("secret", [b"", b"short", b"k" * 64, b"k" * 65, bytes(range(256))])
def test_issue_mac_is_hmac_sha256(secret: bytes) -> None:
    for key in ("ann@example.org", "zoë@bücher.example", ""):
        expected = hmac.new(secret, b"ctx\x00011\x00" + key.encode(), "sha256").digest()
        assert IssueMac(secret, b"ctx\x00", "011").digest(key) == expected


def test_return_addresses_of_mail_already_sent_are_unchanged() -> None:
    state = hmac.new(b"secret", b"gigo-mail verp v1\x00011\x00", "sha256")
    state.update(b"ann@example.org")
    before = state.digest()[:10].hex()  # what verp.py computed with hmac.HMAC.copy
    assert verp_mac(b"secret", "011", "ann@example.org") == before
    assert VerpAddresses("bounce@gigo.dev", b"secret", "011").address("ann@example.org") == \
        f"bounce+011.{before}@gigo.dev"


def test_message_ids_differ_from_return_addresses_and_test_ids_are_random() -> None:
    ids = MessageIds(b"secret", "011", "gigo.dev")
    assert verp_mac(b"secret", "011", "ann@example.org") not in ids.make("ann@example.org")
    assert random_message_id("gigo.dev") != random_message_id("gigo.dev")
    assert not ids.proves(random_message_id("gigo.dev"), "ann@example.org")
