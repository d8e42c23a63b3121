"""The page and old, readable tokens (mail sent before tokens became opaque): honoured until the
configured date, refused after it, over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from gigo_mail.config import load_config
from gigo_mail.journal.deliveries import Journal
from gigo_mail.send.tokens import make_token
from gigo_mail.web.public import ServeLimits
from servers import running_page
from support import make_newsletter

SECRET = "old-token-secret"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def old_token(email: str) -> str:
    address = email.encode()
    mac = hmac.new(SECRET.encode(), b"gigo-mail unsubscribe v1\x00" + address, hashlib.sha256).digest()[:16]
    return f"{_b64(address)}.{_b64(mac)}"


def post(url: str) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=b"List-Unsubscribe=One-Click"),
                                    timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.slow
@pytest.mark.parametrize(("until", "honoured"), [("", True), ("2099-12-31", True), ("2020-01-01", False)])
def test_old_tokens_on_the_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, until: str,
                                honoured: bool) -> None:
    monkeypatch.setenv("GIGO_UNSUBSCRIBE_SECRET", SECRET)
    root = make_newsletter(tmp_path)
    if until:
        with (root / "gigo-mail.toml").open("a") as handle:
            handle.write(f'\n[unsubscribe]\nold_tokens_until = "{until}"\n')
    with running_page(load_config(root), ServeLimits(loop_timeout=0.05)) as base:
        assert post(f"{base}/unsubscribe?token={old_token('old@example.org')}") == (200 if honoured else 400)
        assert post(f"{base}/unsubscribe?token={make_token(SECRET.encode(), 'new@example.org')}") == 200
    with Journal.for_root(root) as journal:
        assert journal.is_suppressed("old@example.org") is honoured
        assert journal.is_suppressed("new@example.org")
