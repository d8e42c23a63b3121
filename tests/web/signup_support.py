"""What the signup tests share: a newsletter with [signup] on, its page under waitress with a real SMTP
server counting the mails, and a client that does what the widget does (a Python ALTCHA solver)."""

from __future__ import annotations

import csv
import json
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import altcha
import pytest
from cryptography.hazmat.primitives import serialization

from conftest import SmtpServer
from gigo_mail.config import load_config
from gigo_mail.journal.signups import SignupStore
from gigo_mail.send.dkim import generate_key, public_record
from gigo_mail.web.public import ServeLimits, make_app, make_server
from gigo_mail.web.signup import SignupPage
from support import make_newsletter

SECRET = "signup-secret"
FAST = ServeLimits(channel_timeout=2.0, cleanup_interval=0.5, loop_timeout=0.05)
DKIM_KEY = generate_key()
DNS = {b"s1._domainkey.gigo.dev.": public_record(DKIM_KEY).encode()}
SIGNUP = """
[signup]
enabled = true
consent_version = "2026-12"
pow_cost = 20
pow_max_counter = 8
per_ip_per_hour = {per_ip}
per_network_per_hour = 1000
confirm_delay = {delay}
get_confirms = {get_confirms}
"""



@dataclass
class Page:
    root: Path
    base: str
    page: SignupPage
    smtp: SmtpServer

    def mails(self) -> list[bytes]:
        self.page.mailer.join()
        return [m.data for m in self.smtp.messages]

    def confirmed(self) -> int:
        with SignupStore.for_state(self.root / ".gigo") as store:
            return len(store.confirmations_after(0, 100_000))


def newsletter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp: SmtpServer, *, per_ip: int = 1000,
               delay: int = 300, get_confirms: bool = False, extra: str = "") -> Path:
    root = make_newsletter(tmp_path / "nl")
    (root / "dkim.pem").write_bytes(DKIM_KEY.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    text = (root / "gigo-mail.toml").read_text()
    text = text.replace('url = "smtp://127.0.0.1:1025"', f'url = "{smtp.url}"')
    text += SIGNUP.format(per_ip=per_ip, delay=delay, get_confirms=str(get_confirms).lower()) + extra
    text += '\n[dkim]\nselector = "s1"\nkey_file = "dkim.pem"\n[list]\npath = "subscribers.csv"\n'
    (root / "gigo-mail.toml").write_text(text)
    monkeypatch.setenv("GIGO_UNSUBSCRIBE_SECRET", SECRET)
    for name in ("GIGO_SMTP_URL", "GIGO_DKIM_KEY"):
        monkeypatch.delenv(name, raising=False)
    return root


@contextmanager
def serving(root: Path, smtp: SmtpServer, limits: ServeLimits = FAST) -> Iterator[Page]:
    config = load_config(root)
    page = SignupPage(config)
    server: Any = make_server(config, "127.0.0.1", 0, limits, app=make_app(config, signup=page))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield Page(root, f"http://127.0.0.1:{server.effective_port}", page, smtp)
    finally:
        server.close()
        thread.join(timeout=5)
        page.mailer.close()


def signup_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp_server: SmtpServer) -> Iterator[Page]:
    """The ``site`` fixture of the signup tests: a newsletter with [signup] on, its page served."""
    with serving(newsletter(tmp_path, monkeypatch, smtp_server), smtp_server) as page:
        yield page


def http(url: str, data: bytes | None = None, headers: dict[str, str] | None = None,
         method: str | None = None) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def solve(base: str) -> str:
    """What the widget does: fetch a challenge, find the counter, send challenge and solution."""
    _, _, body = http(f"{base}/subscribe/challenge")
    challenge = altcha.Challenge.from_dict(json.loads(body))
    solution = altcha.solve_challenge(challenge)
    assert solution is not None
    return altcha.Payload(challenge, solution).to_base64()


def form(**fields: str) -> bytes:
    return urllib.parse.urlencode(fields).encode()


def sign_up(base: str, email: str, proof: str | None = None, **extra: str) -> tuple[int, dict[str, str], str]:
    fields = {"email": email, "name": "Ann Reader", "altcha": solve(base) if proof is None else proof,
              **extra}
    return http(f"{base}/subscribe", form(**fields))


def link_of(mail: bytes) -> str:
    text = message_from_bytes(mail, policy=policy.default).get_body(("plain",)).get_content()  # type: ignore[union-attr]
    links = re.findall(r"https?://\S+", text)
    assert len(links) == 1, links
    return links[0]


def local(page: Page, link: str) -> str:
    """The mail's link (at the public origin) as served by the test's page."""
    return page.base + link.removeprefix("https://gigo.dev")


def token_of(mail: bytes) -> str:
    return urllib.parse.unquote(link_of(mail).split("token=")[1])


def confirm_all(site: Page) -> None:
    for mail in site.mails():
        http(f"{site.base}/confirm", form(token=token_of(mail)))


def list_rows(root: Path) -> list[dict[str, str]]:
    with (root / "subscribers.csv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def laptop_for(site: Page, folder: Path) -> Path:
    """A sending machine's newsletter folder whose page is ``site`` (sync_url at its origin)."""
    laptop = make_newsletter(folder)
    (laptop / "gigo-mail.toml").write_text((laptop / "gigo-mail.toml").read_text()
                                           + f'\n[unsubscribe]\nsync_url = "{site.base}/suppressions"\n'
                                           + '[list]\npath = "subscribers.csv"\n')
    return laptop
