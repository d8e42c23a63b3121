"""Unsubscribe tokens: round trip, tampering, URL filling; no address inside in any encoding;
the old readable kind honoured until its date and refused after it."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import string
from datetime import date
from pathlib import Path
from urllib.parse import quote

import pytest

from gigo_mail.config import load_config
from gigo_mail.errors import ConfigError, TokenError
from gigo_mail.send.tokens import (
    OLD_TOKENS_UNTIL,
    make_token,
    old_tokens_until,
    unsubscribe_url,
    verify_token,
)
from support import make_newsletter

SECRET = b"0123456789abcdef0123456789abcdef"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize("email", ["ann@example.com", "zoë@bücher.de", "用户@例子.广告",
                                   "a+tag@sub.example.org"])
def test_round_trip(email: str) -> None:
    token = make_token(SECRET, email)
    assert verify_token(SECRET, token) == email.lower()
    assert set(token) <= set(string.ascii_letters + string.digits + "-_.")


def test_same_address_in_any_spelling_gets_the_same_token() -> None:
    assert make_token(SECRET, "Ann@Example.COM ") == make_token(SECRET, "ann@example.com")
    assert make_token(SECRET, "eve@xn--bcher-kva.de") == make_token(SECRET, "Eve@bücher.de")
    assert verify_token(SECRET, make_token(SECRET, "eve@xn--bcher-kva.de")) == "eve@bücher.de"


ADDRESSES = ["ann@example.com", "ann.lovelace@example.org", "zoë@bücher.de", "a@b.co",
             "a-rather-long-local-part.with.dots+tag@mail.subdomain.example.co.uk"]


def _spellings(text: str) -> set[bytes]:
    """Every encoding an address could hide in: raw, base64 (three alignments, both alphabets,
    any case of the text), base32, hex, URL-quoted, reversed."""
    found: set[bytes] = set()
    for variant in {text, text.lower(), text.upper(), text.split("@")[0]}:
        raw = variant.encode("utf-8")
        found |= {raw, raw[::-1], raw.hex().encode(), raw.hex().upper().encode(), quote(variant).encode()}
        for shift in range(3):
            for encode in (base64.b64encode, base64.urlsafe_b64encode, base64.b32encode):
                encoded = encode(b"\0" * shift + raw).rstrip(b"=")
                found.add(encoded[(shift * 4 + 2) // 3 + 1:-2])  # the part no neighbour changes
    return {needle for needle in found if len(needle) >= 4}


@pytest.mark.parametrize("email", ADDRESSES)
def test_no_address_inside_a_token_in_any_encoding(email: str) -> None:
    token = make_token(SECRET, email)
    haystacks = [token.encode(), token.lower().encode()]
    padded = token + "=" * (-len(token) % 4)
    for decode in (base64.urlsafe_b64decode, base64.b64decode):
        with contextlib.suppress(ValueError, binascii.Error):
            haystacks.append(decode(padded.replace("-", "+").replace("_", "/")))
    for needle in _spellings(email) | _spellings(email.split("@")[1]):
        for haystack in haystacks:
            assert needle not in haystack and needle.lower() not in haystack.lower(), (email, needle)
    assert "." not in token and "@" not in token


def test_token_length_hides_the_address_length() -> None:
    """Padded to 16-byte blocks, at least 32: short addresses all look alike."""
    lengths = {len(make_token(SECRET, e)) for e in ["a@b.co", "ann@example.com", "bob.smith@example.org"]}
    assert lengths == {80}


def test_tokens_of_two_addresses_share_nothing_visible() -> None:
    one, two = make_token(SECRET, "ann@example.com"), make_token(SECRET, "ann@example.org")
    common = sum(a == b for a, b in zip(one, two, strict=True))
    assert common < 10  # about 80/64 by chance; a readable token would share the first 12


def test_every_single_character_change_is_rejected() -> None:
    token = make_token(SECRET, "ann@example.com")
    for index, original in enumerate(token):
        for replacement in "A_-.0z":
            if replacement == original:
                continue
            tampered = token[:index] + replacement + token[index + 1:]
            with pytest.raises(TokenError, match="not valid"):
                verify_token(SECRET, tampered)


def test_another_secret_or_another_address_does_not_verify() -> None:
    token = make_token(SECRET, "ann@example.com")
    with pytest.raises(TokenError, match="altered, or made with another secret"):
        verify_token(b"another secret", token)
    # Bob's token's nonce glued to Ann's ciphertext: a forgery attempt
    raw = base64.urlsafe_b64decode(token + "==")
    bob = base64.urlsafe_b64decode(make_token(SECRET, "bob@example.com") + "==")
    with pytest.raises(TokenError, match="altered, or made with another secret"):
        verify_token(SECRET, _b64(bob[:12] + raw[12:]))


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "....", "ann@example.com", "é.é", "x" * 5000 + ".y"])
def test_malformed_tokens(token: str) -> None:
    with pytest.raises(TokenError, match="not valid"):
        verify_token(SECRET, token)


def test_empty_secret_cannot_sign() -> None:
    with pytest.raises(TokenError):
        make_token(b"", "ann@example.com")


def test_unsubscribe_url_fills_and_quotes() -> None:
    token = make_token(SECRET, "zoë+news@bücher.de")
    url = unsubscribe_url("https://ex.org/u/{token}?e={email}&x={other}", token, "zoë+news@bücher.de")
    assert url == f"https://ex.org/u/{token}?e=zo%C3%AB%2Bnews@b%C3%BCcher.de&x={{other}}"
    assert url.isascii()
    mailto = unsubscribe_url("mailto:leave@ex.org?subject=unsubscribe%20{email}", token, "a&b@ex.org")
    assert mailto == "mailto:leave@ex.org?subject=unsubscribe%20a%26b@ex.org"


def old_token(secret: bytes, email: str) -> str:
    """A token as mail sent before opaque tokens carries it: the address, readable, and its MAC."""
    address = email.lower().encode()
    mac = hmac.new(secret, b"gigo-mail unsubscribe v1\x00" + address, hashlib.sha256).digest()[:16]
    return f"{_b64(address)}.{_b64(mac)}"


def test_old_tokens_work_until_their_date_and_not_after() -> None:
    token = old_token(SECRET, "ann@example.com")
    assert verify_token(SECRET, token, today=date(2026, 12, 7)) == "ann@example.com"
    assert verify_token(SECRET, token, today=OLD_TOKENS_UNTIL) == "ann@example.com"
    with pytest.raises(TokenError, match=f"old kind, honoured until {OLD_TOKENS_UNTIL.isoformat()}"):
        verify_token(SECRET, token, today=date(2027, 6, 6))
    later = date(2028, 1, 31)
    assert verify_token(SECRET, token, old_until=later, today=date(2028, 1, 1)) == "ann@example.com"
    with pytest.raises(TokenError, match="not valid"):  # forged old tokens are refused as before
        verify_token(SECRET, _b64(b"bob@example.com") + "." + token.split(".")[1], today=date(2026, 12, 7))


def test_old_tokens_until_is_180_days_after_the_change_unless_configured() -> None:
    assert (OLD_TOKENS_UNTIL - date(2026, 12, 7)).days == 180
    assert old_tokens_until("") == OLD_TOKENS_UNTIL
    assert old_tokens_until("2027-12-31") == date(2027, 12, 31)
    with pytest.raises(TokenError, match="not a date"):
        old_tokens_until("next summer")


def test_config_refuses_an_address_in_a_web_unsubscribe_url(tmp_path: Path) -> None:
    root = make_newsletter(tmp_path)
    config = root / "gigo-mail.toml"
    text = config.read_text()
    config.write_text(text.replace("unsubscribe?token={token}", "unsubscribe?token={token}&e={email}"))
    with pytest.raises(ConfigError, match=r"puts \{email\} in a web address.*use \{token\}"):
        load_config(root)
    config.write_text(text + '\n[unsubscribe]\nold_tokens_until = "soon"\n')
    with pytest.raises(ConfigError,
                       match=r"gigo-mail.toml:\d+:20: \[unsubscribe\] old_tokens_until 'soon' is not a date"):
        load_config(root)
