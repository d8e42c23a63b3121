"""Unsubscribe tokens: a link that proves which address asked to leave.

A token is ``<address>.<signature>``, both parts URL-safe base64 without padding:
the normalized address (``Subscriber.key``) and the first 16 bytes (128 bits) of
HMAC-SHA256 over it under the newsletter's secret (``Config.secret()``). A web
endpoint holding the same secret can verify a token and read the address without
any database; without the secret nobody can make a token for another address.
Tokens do not expire: an unsubscribe link in an old issue must keep working.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from urllib.parse import quote

from gigo_mail.address import address_key
from gigo_mail.errors import TokenError

_CONTEXT = b"gigo-mail unsubscribe v1\x00"  # keeps these MACs apart from any other use of the secret
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


def _signature(secret: bytes, address: bytes) -> bytes:
    return hmac.new(secret, _CONTEXT + address, hashlib.sha256).digest()[:MAC_BYTES]


def make_token(secret: bytes, email: str) -> str:
    """The unsubscribe token of ``email`` (case and IDN spelling do not matter)."""
    if not secret:
        raise TokenError("no unsubscribe secret: cannot sign tokens")
    address = address_key(email).encode("utf-8")
    return f"{_b64encode(address)}.{_b64encode(_signature(secret, address))}"


def verify_token(secret: bytes, token: str) -> str:
    """The address a token was made for; TokenError if it is malformed or not signed by ``secret``."""
    shown = token if len(token) <= 60 else token[:57] + "..."
    token = token.strip()
    if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
        raise TokenError(f"unsubscribe token '{shown}' is not valid: it is malformed")
    address_part, mac_part = token.split(".")
    try:
        address = _b64decode(address_part)
        mac = _b64decode(mac_part)
    except (ValueError, binascii.Error):
        raise TokenError(f"unsubscribe token '{shown}' is not valid: it is malformed") from None
    if not hmac.compare_digest(mac, _signature(secret, address)):
        raise TokenError(f"unsubscribe token '{shown}' is not valid: its signature does not match "
                         "(altered, or made with another secret)")
    try:
        return address.decode("utf-8")
    except UnicodeDecodeError:  # signed but not text: only possible with a leaked secret
        raise TokenError(f"unsubscribe token '{shown}' is not valid: it does not hold an address") from None


def unsubscribe_url(pattern: str, token: str, email: str) -> str:
    """Fill ``{token}`` and ``{email}`` in a URL pattern (or mailto:), URL-quoted, pure ASCII.

    Plain replacement, not ``str.format``: other braces in the pattern stay as they are."""
    filled = pattern.replace("{token}", quote(token, safe=""))
    return filled.replace("{email}", quote(email.strip(), safe="@"))
