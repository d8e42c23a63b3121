"""Unsubscribe tokens: round trip, tampering, URL filling."""

from __future__ import annotations

import base64
import string

import pytest

from gigo_mail.errors import TokenError
from gigo_mail.send.tokens import make_token, unsubscribe_url, verify_token

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


def test_token_carries_the_address_and_a_128_bit_signature() -> None:
    address_part, mac_part = make_token(SECRET, "ann@example.com").split(".")
    assert base64.urlsafe_b64decode(address_part + "=" * (-len(address_part) % 4)) == b"ann@example.com"
    assert len(base64.urlsafe_b64decode(mac_part + "=" * (-len(mac_part) % 4))) * 8 >= 128


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
    with pytest.raises(TokenError, match="signature does not match"):
        verify_token(b"another secret", token)
    # Ann's signature glued to Bob's address: a forgery attempt
    forged = _b64(b"bob@example.com") + "." + token.split(".")[1]
    with pytest.raises(TokenError, match="signature does not match"):
        verify_token(SECRET, forged)


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
