"""VERP return addresses: ``bounce+<issue>.<mac>@domain`` ties a bounce to its recipient.

A bounce goes to the envelope sender, and many bounces quote nothing of the original
message. With ``[bounces] verp = true`` each recipient gets its own envelope sender:
the issue key and an 80-bit HMAC of (issue, recipient key) under the newsletter's
secret, in lower-case hex (some mail servers change the case of local parts; hex is
also cheaper to make than base32). The MAC is
both the recipient's id and its signature: nobody without the secret can make an
address that maps to a subscriber. The local part stays under 64 octets (RFC 5321 4.5.3.1.1)
for any address length.

Finding the recipient (:class:`VerpIndex`) goes through the journal's index: the ``sending``
mark stores the address's lookup tag (:func:`lookup_tag`, 64 bits of SHA-256 of the MAC's
bytes; not the MAC, so a leaked journal lets nobody make an address that verifies), the tag
finds the row, and the MAC, recomputed under the secret, still decides whether it is that
row's. Deliveries marked without a tag (before the journal had the column) are found as
before: one HMAC per such recipient of the issue, once per run.

The same construction, under its own context, makes the tokenised unsubscribe address
of ``List-Unsubscribe`` (``unsubscribe+<issue>.<mac>@domain``, :data:`UNSUBSCRIBE_CONTEXT`):
a one-click mail client that writes to it proves which reader asked, and the token holds
no address in any encoding. Those tokens are not tagged (a second hash per message for
rare requests): they are found by one HMAC per recipient of the issue, once per run.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from gigo_mail.journal.deliveries import Journal, Record

_CONTEXT = b"gigo-mail verp v1\x00"
UNSUBSCRIBE_CONTEXT = b"gigo-mail unsubscribe-mailto v1\x00"
MAC_BYTES = 10
_ISSUE_RE = re.compile(r"^[a-z0-9_-]{1,24}$")
_MAC_RE = re.compile(f"^[0-9a-f]{{{MAC_BYTES * 2}}}$")


class IssueMac:
    """HMAC-SHA256 (RFC 2104) of ``context + issue + NUL + recipient key`` under the secret, with
    the inner and outer hash states after the fixed part kept: a recipient then costs two hash
    copies, 1.2 µs (``hmac.HMAC.copy`` costs 4.5 µs: it builds a new object in Python)."""

    BLOCK = 64  # SHA-256's block size

    def __init__(self, secret: bytes, context: bytes, issue_key: str) -> None:
        key = hashlib.sha256(secret).digest() if len(secret) > self.BLOCK else secret
        key = key.ljust(self.BLOCK, b"\x00")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._inner.update(context + issue_key.lower().encode() + b"\x00")
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def digest(self, key: str) -> bytes:
        inner = self._inner.copy()
        inner.update(key.encode("utf-8"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


def _issue_mac(secret: bytes, issue_key: str, context: bytes = _CONTEXT) -> IssueMac:
    return IssueMac(secret, context, issue_key)


def _mac(state: IssueMac, key: str) -> str:
    return state.digest(key)[:MAC_BYTES].hex()


def verp_mac(secret: bytes, issue_key: str, key: str) -> str:
    return _mac(_issue_mac(secret, issue_key), key)


def lookup_tag(mac: bytes) -> int:
    """The journal's tag for a return address's MAC: the first 64 bits of SHA-256 of its bytes, as
    a signed integer (an SQLite INTEGER). One way: the tags in a journal give nobody a MAC."""
    return int.from_bytes(hashlib.sha256(mac).digest()[:8], "big", signed=True)


class VerpAddresses:
    """Per-recipient envelope senders for one issue, from the base return address."""

    def __init__(self, base: str, secret: bytes, issue_key: str, context: bytes = _CONTEXT) -> None:
        self.local, _, self.domain = base.rpartition("@")
        self.secret = secret
        self.issue = issue_key.lower()
        self.enabled = bool(_ISSUE_RE.match(self.issue)) and "+" not in self.local
        self._prefix = f"{self.local}+{self.issue}."
        self._suffix = f"@{self.domain}"
        self._state = _issue_mac(secret, self.issue, context)

    def address(self, key: str) -> str:
        """The envelope sender for the recipient with this key; one HMAC."""
        if not self.enabled:
            return f"{self.local}@{self.domain}"
        return self._prefix + _mac(self._state, key) + self._suffix

    def tag(self, address: str) -> int | None:
        """The lookup tag of an address :meth:`address` made (one SHA-256 of its 10-byte MAC); None
        for any other address."""
        start = len(self._prefix)
        end = start + MAC_BYTES * 2
        if len(address) != end + len(self._suffix) or not (self.enabled and address.startswith(self._prefix)):
            return None
        try:
            return lookup_tag(bytes.fromhex(address[start:end]))
        except ValueError:
            return None


def parse_verp(address: str, base: str) -> tuple[str, str] | None:
    """(issue, mac) from a VERP address of ``base``'s mailbox and domain, else None."""
    local, _, domain = address.strip().strip("<>").rpartition("@")
    base_local, _, base_domain = base.rpartition("@")
    if domain.lower() != base_domain.lower():
        return None
    head, plus, tail = local.partition("+")
    if not plus or head.lower() != base_local.lower():
        return None
    issue, dot, mac = tail.lower().rpartition(".")
    if not dot or not _ISSUE_RE.match(issue) or not _MAC_RE.match(mac):
        return None
    return issue, mac


class VerpIndex:
    """Finds the journal record a VERP address was made for: by its tag (one indexed lookup), the
    MAC verified under the secret for the row found; for rows without a tag (and for unsubscribe
    tokens, which have none), one HMAC per such recipient of the issue, computed once per issue."""

    def __init__(self, journal: Journal, secret: bytes, base: str, context: bytes = _CONTEXT) -> None:
        self.journal = journal
        self.context = context
        self.secret = secret
        self.base = base
        self.tagged = context == _CONTEXT  # the journal tags return addresses, not unsubscribe tokens
        self._states: dict[str, IssueMac] = {}
        self._untagged: dict[str, dict[str, str]] = {}  # issue -> MAC -> key, of rows without a tag
        self._keys = {key.lower(): key for key in journal.issue_keys()}

    def is_ours(self, address: str) -> bool:
        """Whether ``address`` has the shape of one of these addresses (its MAC unchecked)."""
        return parse_verp(address, self.base) is not None

    def resolve(self, address: str) -> Record | None:
        """The record whose address this is; None when its MAC verifies for nobody of its issue."""
        parsed = parse_verp(address, self.base)
        if parsed is None:
            return None
        issue, mac = parsed
        issue_key = self._keys.get(issue)
        if issue_key is None:
            return None
        state = self._states.get(issue_key)
        if state is None:
            state = self._states[issue_key] = _issue_mac(self.secret, issue_key, self.context)
        if self.tagged:
            for tagged in self.journal.verp_tagged_keys(issue_key, lookup_tag(bytes.fromhex(mac))):
                if hmac.compare_digest(_mac(state, tagged), mac):  # the tag finds, the MAC proves
                    return self.journal.record(issue_key, tagged)
        table = self._untagged.get(issue_key)
        if table is None:
            keys = self.journal.recipient_keys(issue_key, untagged=self.tagged)
            table = self._untagged[issue_key] = {_mac(state, key): key for key in keys}
        key = table.get(mac)
        return self.journal.record(issue_key, key) if key is not None else None
