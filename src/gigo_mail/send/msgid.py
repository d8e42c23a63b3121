"""Per-recipient Message-IDs that prove which message an answer is about.

A bounce or a complaint names the message it answers by quoting its Message-ID. IDs that
count up per message let anyone who received one copy guess everyone else's, so each ID
is ``<mac@domain>``: 120 bits of HMAC-SHA256 over (issue, recipient key) under the
newsletter's secret, in lower-case hex (30 characters; base32 would be shorter, but
Python's encoder costs 5 µs a message, hex 0.3 µs; some systems change case, so the
check ignores it).
Nobody without the secret can make the ID of another reader's message, every recipient
of an issue gets a different one, and the same recipient of the same issue always gets
the same one, so a re-sent uncertain message is the same message.

A test copy (``send --to``) gets a random ID instead: it is not in the journal, and a
mailbox that folds messages by Message-ID must not drop the real issue as its duplicate.

Messages sent before these IDs carry ``<time.random.N@domain>``; the journal still holds
them, and ``answers.proof`` decides when an answer quoting one is believed.
"""

from __future__ import annotations

import hmac
import os

from gigo_mail.send.verp import IssueMac

_CONTEXT = b"gigo-mail message-id v1\x00"  # keeps these MACs apart from every other use of the secret
MAC_BYTES = 15  # 120 bits


def _encode(digest: bytes) -> str:
    return digest[:MAC_BYTES].hex()


class MessageIds:
    """The Message-IDs of one issue's recipients (one HMAC copy and update each)."""

    def __init__(self, secret: bytes, issue_key: str, domain: str = "") -> None:
        self.domain = domain
        self._mac = IssueMac(secret, _CONTEXT, issue_key)

    def make(self, key: str) -> str:
        """The Message-ID of the message to the recipient with this (normalized) key."""
        return f"<{_encode(self._mac.digest(key))}@{self.domain}>"

    def proves(self, message_id: str, key: str) -> bool:
        """Whether ``message_id`` is the one this issue's message to ``key`` carries (its domain,
        which an issue may change with its own ``from``, is not part of the proof)."""
        local = message_id.strip().strip("<>").rpartition("@")[0].lower()
        return hmac.compare_digest(local.encode("utf-8", "replace"), _encode(self._mac.digest(key)).encode())


def random_message_id(domain: str) -> str:
    """A random ID for a test copy (recorded nowhere, so it proves nothing)."""
    return f"<test.{_encode(os.urandom(MAC_BYTES))}@{domain}>"
