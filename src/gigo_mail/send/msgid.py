"""Per-recipient Message-IDs that prove which message an answer is about.

A bounce or a complaint names the message it answers by quoting its Message-ID. IDs that
count up per message let anyone who received one copy guess everyone else's, so each ID
is ``<mac@domain>``: 120 bits of HMAC-SHA256 over (issue, recipient key) under the
newsletter's secret, in lower-case base32 (24 characters; some systems change case).
Nobody without the secret can make the ID of another reader's message, every recipient
of an issue gets a different one, and the same recipient of the same issue always gets
the same one, so a re-sent uncertain message is the same message.

A test copy (``send --to``) gets a random ID instead: it is not in the journal, and a
mailbox that folds messages by Message-ID must not drop the real issue as its duplicate.

Messages sent before these IDs carry ``<time.random.N@domain>``; the journal still holds
them, and ``answers.proof`` decides when an answer quoting one is believed.
"""

from __future__ import annotations

import base64
import hmac
import os

_CONTEXT = b"gigo-mail message-id v1\x00"  # keeps these MACs apart from every other use of the secret
MAC_BYTES = 15  # 120 bits: exactly 24 base32 characters, no padding


def _encode(digest: bytes) -> str:
    return base64.b32encode(digest[:MAC_BYTES]).decode("ascii").lower()


class MessageIds:
    """The Message-IDs of one issue's recipients (one HMAC copy and update each)."""

    def __init__(self, secret: bytes, issue_key: str, domain: str = "") -> None:
        self.domain = domain
        self._state = hmac.new(secret, _CONTEXT + issue_key.lower().encode() + b"\x00", "sha256")

    def make(self, key: str) -> str:
        """The Message-ID of the message to the recipient with this (normalized) key."""
        mac = self._state.copy()
        mac.update(key.encode("utf-8"))
        return f"<{_encode(mac.digest())}@{self.domain}>"

    def proves(self, message_id: str, key: str) -> bool:
        """Whether ``message_id`` is the one this issue's message to ``key`` carries (its domain,
        which an issue may change with its own ``from``, is not part of the proof)."""
        local = message_id.strip().strip("<>").rpartition("@")[0].lower()
        mac = self._state.copy()
        mac.update(key.encode("utf-8"))
        return hmac.compare_digest(local.encode("utf-8", "replace"), _encode(mac.digest()).encode("ascii"))


def random_message_id(domain: str) -> str:
    """A random ID for a test copy (recorded nowhere, so it proves nothing)."""
    return f"<test.{_encode(os.urandom(MAC_BYTES))}@{domain}>"
