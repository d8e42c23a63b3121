"""Unsubscribe tokens: a link that proves which address asked to leave, and shows none.

A token is the normalized address (``address_key``) sealed with AES-256-GCM under a key
derived from the newsletter's secret (``Config.secret()``), as URL-safe base64 without
padding: a 12-byte nonce, the ciphertext of the address padded with NULs to a multiple of
16 bytes (at least 32, so a token's length says little about its address), and the
16-byte tag. The page holding the same secret opens it without any database (it runs on
a server that has no list); a proxy or access log in front of it sees only noise, and
without the secret nobody can make a token, or change one into another's.

The nonce is an HMAC of the padded address under a second derived key (the synthetic-IV
construction): one address always gets the same token, so a dry run and the send, or a
re-send, carry the same link, and a nonce repeats only with its own plaintext, which
gives nothing away. Tokens do not expire.

Mail sent before this format (``<address in base64>.<MAC>``, the address readable by
anyone) carries the old kind; those keep working until ``OLD_TOKENS_UNTIL`` (180 days
after the change), or the date in ``[unsubscribe] old_tokens_until``, and are refused
after it.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, date, datetime
from urllib.parse import quote

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gigo_mail.address import address_key
from gigo_mail.config import Config
from gigo_mail.errors import TokenError

OLD_TOKENS_UNTIL = date(2027, 6, 5)  # 180 days after 2026-12-07, when tokens became opaque
_KEY_CONTEXT = b"gigo-mail unsubscribe token key v2\x00"
_NONCE_CONTEXT = b"gigo-mail unsubscribe token nonce v2\x00"
_AAD = b"gigo-mail unsubscribe v2"
_OLD_CONTEXT = b"gigo-mail unsubscribe v1\x00"  # the MAC of the old, readable tokens
NONCE_BYTES = 12
TAG_BYTES = 16
BLOCK = 16
MIN_PLAINTEXT = 32
MAC_BYTES = 16
MAX_TOKEN_LENGTH = 1024


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    """Strict: only the one canonical spelling decodes (no stray characters, no spare bits)."""
    if not text or not text.isascii():
        raise ValueError("empty or not ASCII")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64encode(data) != text:
        raise ValueError("not canonical base64")
    return data


@functools.lru_cache(maxsize=8)  # derived once per secret, not once per message of a send
def _cipher(secret: bytes) -> AESGCM:
    return AESGCM(hmac.new(secret, _KEY_CONTEXT, hashlib.sha256).digest())


@functools.lru_cache(maxsize=8)
def _nonce_mac(secret: bytes) -> hmac.HMAC:
    return hmac.new(hmac.new(secret, _NONCE_CONTEXT, hashlib.sha256).digest(), digestmod=hashlib.sha256)


def _nonce(secret: bytes, plain: bytes) -> bytes:
    mac = _nonce_mac(secret).copy()
    mac.update(plain)
    return mac.digest()[:NONCE_BYTES]


def _padded(address: bytes) -> bytes:
    size = max(MIN_PLAINTEXT, -(-len(address) // BLOCK) * BLOCK)
    return address + b"\x00" * (size - len(address))


def make_token(secret: bytes, email: str) -> str:
    """The opaque token of ``email`` (case and IDN spelling do not matter)."""
    if not secret:
        raise TokenError("no unsubscribe secret: cannot sign tokens")
    plain = _padded(address_key(email).encode("utf-8"))
    nonce = _nonce(secret, plain)
    return _b64encode(nonce + _cipher(secret).encrypt(nonce, plain, _AAD))


def old_tokens_until(configured: str) -> date:
    """The last day old, readable tokens are honoured: ``configured`` (ISO date) or the default."""
    if not configured:
        return OLD_TOKENS_UNTIL
    try:
        return date.fromisoformat(configured)
    except ValueError:
        raise TokenError(f"[unsubscribe] old_tokens_until '{configured}' is not a date "
                         "(YYYY-MM-DD)") from None


def verify_token(secret: bytes, token: str, *, old_until: date = OLD_TOKENS_UNTIL,
                 today: date | None = None) -> str:
    """The address a token was made for; TokenError if it is malformed, not made with ``secret``,
    or of the old kind after ``old_until``."""
    token = token.strip()
    if len(token) > MAX_TOKEN_LENGTH:
        raise _malformed()
    if "." in token:
        return _verify_old(secret, token, old_until, today or datetime.now(UTC).date())
    try:
        data = _b64decode(token)
    except (ValueError, binascii.Error):
        raise _malformed() from None
    if len(data) < NONCE_BYTES + MIN_PLAINTEXT + TAG_BYTES or (len(data) - NONCE_BYTES - TAG_BYTES) % BLOCK:
        raise _malformed()
    nonce = data[:NONCE_BYTES]
    try:
        plain = _cipher(secret).decrypt(nonce, data[NONCE_BYTES:], _AAD)
    except InvalidTag:
        raise _not_ours() from None
    if not hmac.compare_digest(nonce, _nonce(secret, plain)):
        raise _not_ours()  # sealed by us, but not by make_token: only with a leaked secret
    return _address(plain.rstrip(b"\x00"))


def _malformed() -> TokenError:
    return TokenError("the unsubscribe token is not valid: it is malformed (cut short when copied?)")


def _not_ours() -> TokenError:
    return TokenError("the unsubscribe token is not valid: it was altered, or made with another secret")


def _address(raw: bytes) -> str:
    try:
        address = raw.decode("utf-8")
    except UnicodeDecodeError:  # made with our secret but not text: only with a leaked secret
        raise TokenError("the unsubscribe token is not valid: it does not hold an address") from None
    if not address or "\x00" in address:
        raise TokenError("the unsubscribe token is not valid: it does not hold an address")
    return address


def _verify_old(secret: bytes, token: str, old_until: date, today: date) -> str:
    """The old ``<address>.<MAC>`` kind, honoured until ``old_until`` (mail already sent holds it)."""
    if token.count(".") != 1:
        raise _malformed()
    address_part, mac_part = token.split(".")
    try:
        address = _b64decode(address_part)
        mac = _b64decode(mac_part)
    except (ValueError, binascii.Error):
        raise _malformed() from None
    expected = hmac.new(secret, _OLD_CONTEXT + address, hashlib.sha256).digest()[:MAC_BYTES]
    if not hmac.compare_digest(mac, expected):
        raise _not_ours()
    if today > old_until:
        raise TokenError(f"the unsubscribe token is of the old kind, honoured until {old_until.isoformat()}; "
                         "use the link in a newer issue, or reply and ask to be removed")
    return _address(address)


def verifier(config: Config) -> Callable[[str], str]:
    """``verify_token`` with ``config``'s secret and date for old tokens, read once."""
    secret = config.secret()
    until = old_tokens_until(config.unsubscribe.old_tokens_until)
    return lambda token: verify_token(secret, token, old_until=until)


def unsubscribe_url(pattern: str, token: str, email: str) -> str:
    """Fill ``{token}`` and ``{email}`` in a URL pattern (or mailto:), URL-quoted, pure ASCII.

    Plain replacement, not ``str.format``: other braces in the pattern stay as they are."""
    filled = pattern.replace("{token}", quote(token, safe=""))
    return filled.replace("{email}", quote(email.strip(), safe="@"))
