"""Signup with double opt-in, over real HTTP (waitress) with a real SMTP server counting the mails:
the form, the proof of work, bots, floods, scanners and the confirm button."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from email import message_from_bytes, policy
from pathlib import Path

import altcha
import dkim
import pytest
from signup_support import (
    DNS,
    SECRET,
    Page,
    confirm_all,
    form,
    http,
    link_of,
    local,
    newsletter,
    serving,
    sign_up,
    signup_site,
    solve,
    token_of,
)

from conftest import SmtpServer
from gigo_mail.config import load_config
from gigo_mail.errors import ConfigError
from gigo_mail.journal.deliveries import Journal
from gigo_mail.journal.signups import SignupStore
from gigo_mail.journal.sync import sync_key
from gigo_mail.send.signups import signups_url
from gigo_mail.send.tokens import make_token
from gigo_mail.web.public import DEFAULT_LIMITS
from gigo_mail.web.signup import SignupPage

pytestmark = pytest.mark.slow


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp_server: SmtpServer) -> Iterator[Page]:
    yield from signup_site(tmp_path, monkeypatch, smtp_server)


def test_form_page_is_plain_and_accessible(site: Page) -> None:
    status, headers, body = http(f"{site.base}/subscribe")
    assert status == 200
    assert '<label for="gigo-email">' in body and 'type="email"' in body
    assert 'name="website"' in body and 'aria-hidden="true"' in body  # the honeypot, hidden from people
    assert "<altcha-widget" in body and 'src="/subscribe/altcha.js"' in body
    assert "<noscript>" in body
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    status, headers, widget = http(f"{site.base}/subscribe/altcha.js")
    assert status == 200 and "altcha" in widget and headers["Content-Type"].startswith("text/javascript")


def test_a_signup_sends_one_signed_confirmation_mail_with_one_opaque_link(site: Page) -> None:
    status, _, body = sign_up(site.base, "Reader@Example.org")
    assert status == 200 and "Check your inbox" in body
    mails = site.mails()
    assert len(mails) == 1
    assert site.smtp.messages[0].rcpt_tos == ["Reader@Example.org"]
    mail = mails[0]
    assert dkim.DKIM(mail).verify(dnsfunc=lambda name, timeout=5: DNS.get(name))
    parsed = message_from_bytes(mail, policy=policy.default)
    assert parsed["From"] == "GIGO Tech Trends <newsletter@gigo.dev>"
    link = link_of(mail)
    assert link.startswith("https://gigo.dev/confirm?token=")
    token = urllib.parse.unquote(link.split("token=")[1])
    decoded = base64.urlsafe_b64decode(token.split(".")[0] + "==")
    assert b"reader" not in token.lower().encode() and b"example" not in decoded.lower()


def test_the_answer_is_the_same_for_new_pending_and_existing_readers(site: Page) -> None:
    first = sign_up(site.base, "ann@example.org")  # new
    pending = sign_up(site.base, "ann@example.org")  # pending: not confirmed yet
    assert http(f"{site.base}/confirm", form(token=token_of(site.mails()[0])))[0] == 200
    assert site.confirmed() == 1
    existing = sign_up(site.base, "ann@example.org")  # a reader already
    new = sign_up(site.base, "bob@example.org")
    answers = [first, pending, existing, new]
    assert {status for status, _, _ in answers} == {200}
    assert len({body for _, _, body in answers}) == 1
    assert len(site.mails()) == 3
    assert [m.rcpt_tos for m in site.smtp.messages] == [["ann@example.org"]] * 2 + [["bob@example.org"]]


def test_an_address_gets_at_most_one_more_mail_an_hour(site: Page) -> None:
    for _ in range(5):
        assert sign_up(site.base, "victim@example.org")[0] == 200
    assert len(site.mails()) == 2


def test_bots_send_no_mail(site: Page) -> None:
    proof = solve(site.base)
    data = json.loads(base64.b64decode(proof))
    forged_key = dict(data, solution=dict(data["solution"], derivedKey="00" * 32))
    other = altcha.create_challenge("PBKDF2/SHA-256", 20, counter=3, hmac_secret=b"not ours",
                                    hmac_key_secret=b"not ours either", expires_at=int(time.time()) + 600)
    foreign = altcha.Payload(other, altcha.solve_challenge(other)).to_base64()  # type: ignore[arg-type]
    tampered = dict(data, challenge=dict(data["challenge"], parameters=dict(
        data["challenge"]["parameters"], cost=1)))
    corpus = {
        "no proof": "",
        "garbage": "bm90IGpzb24=",
        "forged key": base64.b64encode(json.dumps(forged_key).encode()).decode(),
        "foreign challenge": foreign,
        "tampered parameters": base64.b64encode(json.dumps(tampered).encode()).decode(),
    }
    for name, payload in corpus.items():
        status, _, body = sign_up(site.base, f"{name.replace(' ', '')}@example.org", payload)
        assert status == 400 and "spam check" in body, name
    # the honeypot filled: the answer looks like success, and no mail goes out
    assert sign_up(site.base, "trap@example.org", website="http://spam.example")[0] == 200
    assert site.mails() == []
    assert sign_up(site.base, "real@example.org", proof)[0] == 200
    assert sign_up(site.base, "replay@example.org", proof)[0] == 400  # the same proof again
    assert len(site.mails()) == 1 and [m.rcpt_tos for m in site.smtp.messages] == [["real@example.org"]]


def test_a_flood_from_one_address_is_cut_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             smtp_server: SmtpServer) -> None:
    with serving(newsletter(tmp_path, monkeypatch, smtp_server, per_ip=3), smtp_server) as site:
        answers = [sign_up(site.base, f"flood{i}@example.org")[0] for i in range(6)]
        assert answers == [200, 200, 200, 429, 429, 429]
        assert len(site.mails()) == 3


def test_scanners_never_confirm_and_the_button_does(site: Page) -> None:
    sign_up(site.base, "ann@example.org")
    link = local(site, link_of(site.mails()[0]))
    for trial in range(1000):
        method = ("GET", "HEAD")[trial % 2]
        status, _, body = http(link, method=method)
        assert status == 200
        if method == "GET":
            assert 'method="post"' in body and "Confirm my subscription" in body
    assert site.confirmed() == 0
    token = urllib.parse.unquote(link.split("token=")[1])
    status, _, body = http(f"{site.base}/confirm", form(token=token))
    assert status == 200 and "You are subscribed" in body
    assert site.confirmed() == 1
    assert http(f"{site.base}/confirm", form(token=token))[0] == 200 and site.confirmed() == 1


def test_with_get_confirms_a_late_get_confirms_and_an_early_one_does_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp_server: SmtpServer) -> None:
    root = newsletter(tmp_path, monkeypatch, smtp_server, delay=2, get_confirms=True)
    with serving(root, smtp_server) as site:
        sign_up(site.base, "ann@example.org")
        link = local(site, link_of(site.mails()[0]))
        for _ in range(20):
            http(link)
            http(link, method="HEAD")
        assert site.confirmed() == 0
        time.sleep(2.1)
        http(link, method="HEAD")
        assert site.confirmed() == 0
        status, _, body = http(link)
        assert status == 200 and "You are subscribed" in body and site.confirmed() == 1


def test_a_forged_or_expired_link_confirms_nothing(site: Page) -> None:
    from gigo_mail.send.confirmation import make_confirm_token, new_pending_id

    sign_up(site.base, "ann@example.org")
    token = urllib.parse.unquote(link_of(site.mails()[0]).split("token=")[1])
    body, mac = token.split(".")
    forged = f"{body}.{'A' * len(mac)}"
    expired = make_confirm_token(SECRET.encode(), new_pending_id(), int(time.time()) - 1)
    for bad in (forged, expired, "x", ""):
        status, _, text = http(f"{site.base}/confirm", form(token=bad))
        assert status == 400 and "does not work" in text
    assert site.confirmed() == 0


def test_json_signup_with_cors_for_the_site_only(site: Page) -> None:
    payload = json.dumps({"email": "js@example.org", "altcha": solve(site.base)}).encode()
    status, headers, body = http(f"{site.base}/subscribe", payload,
                                 {"Content-Type": "application/json", "Origin": "https://gigo.dev"})
    assert status == 200 and json.loads(body)["ok"] is True
    assert headers["Access-Control-Allow-Origin"] == "https://gigo.dev"
    status, headers, _ = http(f"{site.base}/subscribe", b"{}",
                              {"Content-Type": "application/json", "Origin": "https://evil.example"})
    assert status == 400 and "Access-Control-Allow-Origin" not in headers
    status, headers, _ = http(f"{site.base}/subscribe", method="OPTIONS",
                              headers={"Origin": "https://gigo.dev", "Access-Control-Request-Method": "POST"})
    assert status == 204 and headers["Access-Control-Allow-Origin"] == "https://gigo.dev"
    assert len(site.mails()) == 1


def test_signups_feed_needs_the_sync_key(site: Page) -> None:
    sign_up(site.base, "ann@example.org")
    token = urllib.parse.unquote(link_of(site.mails()[0]).split("token=")[1])
    http(f"{site.base}/confirm", form(token=token))
    assert http(f"{site.base}/signups")[0] == 401
    status, _, body = http(f"{site.base}/signups?after=0",
                           headers={"Authorization": f"Bearer {sync_key(SECRET.encode())}"})
    data = json.loads(body)
    assert status == 200 and [s["email"] for s in data["signups"]] == ["ann@example.org"]
    assert data["signups"][0]["consent_version"] == "2026-12"
    assert data["consent_texts"][data["signups"][0]["consent_hash"]]["version"] == "2026-12"


def test_confirming_again_after_an_unsubscribe_lifts_it_but_not_a_complaint(site: Page) -> None:
    with Journal.for_root(site.root) as journal:
        journal.suppress(["left@example.org"], "one-click unsubscribe")
        journal.suppress(["angry@example.org"], "complaint")
    for email in ("left@example.org", "angry@example.org"):
        sign_up(site.base, email)
    for mail in site.mails():
        token = urllib.parse.unquote(link_of(mail).split("token=")[1])
        http(f"{site.base}/confirm", form(token=token))
    with Journal.for_root(site.root) as journal:
        assert not journal.is_suppressed("left@example.org")
        assert journal.is_suppressed("angry@example.org")


@pytest.mark.parametrize("trusted", [True, False], ids=["behind-trusted-proxy", "no-proxy-trusted"])
def test_the_flood_limit_counts_clients_named_by_a_trusted_proxy_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp_server: SmtpServer, trusted: bool) -> None:
    extra = 'store_ip = true\ntrusted_proxy = "127.0.0.1"\n' if trusted else "store_ip = true\n"
    root = newsletter(tmp_path, monkeypatch, smtp_server, per_ip=2, extra=extra)
    with serving(root, smtp_server) as site:
        def from_client(ip: str, email: str) -> int:
            fields = {"email": email, "altcha": solve(site.base)}
            return http(f"{site.base}/subscribe", form(**fields), {"X-Forwarded-For": ip})[0]

        answers = [from_client("203.0.113.5", f"a{i}@example.org") for i in range(3)]
        answers.append(from_client("198.51.100.7", "b@example.org"))
        assert answers == ([200, 200, 429, 200] if trusted else [200, 200, 429, 429])
        confirm_all(site)
    with SignupStore.for_state(root / ".gigo") as store:
        kept = {c.ip for c in store.confirmations_after(0, 100)}
    assert kept == ({"203.0.113.0/24", "198.51.100.0/24"} if trusted else {"127.0.0.0/24"})


def test_with_signup_on_idle_and_oversized_clients_block_no_signup(site: Page) -> None:
    host, port = site.base.removeprefix("http://").split(":")
    idle = [socket.create_connection((host, int(port)), timeout=10) for _ in range(3)]
    half = socket.create_connection((host, int(port)), timeout=10)
    half.sendall(b"POST /subscribe HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nemail=")  # never ends
    try:
        started = time.monotonic()
        assert sign_up(site.base, "steady@example.org")[0] == 200
        assert time.monotonic() - started < 2.0
        with socket.create_connection((host, int(port)), timeout=10) as big:
            big.sendall(b"POST /subscribe HTTP/1.1\r\nHost: x\r\nContent-Length: 300000000\r\n\r\n")
            assert big.recv(200).split(b"\r\n")[0].split(b" ")[1] == b"413"  # refused before a byte is read
        for sock in [*idle, half]:  # cut off for making no progress
            assert sock.recv(1024) == b""
    finally:
        for sock in [*idle, half]:
            sock.close()
    assert len(site.mails()) == 1


def test_gigo_mail_serve_runs_signup_unsubscribe_and_health(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           smtp_server: SmtpServer) -> None:
    root = newsletter(tmp_path, monkeypatch, smtp_server)
    proc = subprocess.Popen([sys.executable, "-m", "gigo_mail", "serve", "--port", "0"], cwd=root,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+)/unsubscribe and signup at \1/subscribe", line)
        assert match, line
        base = match.group(1)
        assert http(f"{base}/healthz")[0] == 200
        assert sign_up(base, "served@example.org")[0] == 200
        token = make_token(SECRET.encode(), "leaver@example.org")
        assert http(f"{base}/unsubscribe?token={token}", b"List-Unsubscribe=One-Click")[0] == 200
        deadline = time.monotonic() + 10
        while not smtp_server.messages and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [m.rcpt_tos for m in smtp_server.messages] == [["served@example.org"]]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    with Journal.for_root(root) as journal:
        assert journal.is_suppressed("leaver@example.org")


def test_challenges_are_rationed_per_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            smtp_server: SmtpServer) -> None:
    with serving(newsletter(tmp_path, monkeypatch, smtp_server, per_ip=2), smtp_server) as site:
        statuses = [http(f"{site.base}/subscribe/challenge")[0] for _ in range(12)]
    assert statuses == [200] * 10 + [429] * 2  # five per signup the client may make


def test_an_unconfirmed_signup_is_forgotten_once_its_link_has_expired(site: Page) -> None:
    sign_up(site.base, "never@example.org")
    site.mails()
    with SignupStore.for_state(site.root / ".gigo") as store:
        store._db.execute("UPDATE pending SET mailed_at = mailed_at - 73 * 3600")  # 73 hours ago
    sign_up(site.base, "later@example.org")
    with SignupStore.for_state(site.root / ".gigo") as store:
        left = [row[0] for row in store._db.execute("SELECT email FROM pending")]
    assert left == ["later@example.org"]


def test_a_relay_that_needs_a_password_stops_the_page_at_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp_server: SmtpServer) -> None:
    root = newsletter(tmp_path, monkeypatch, smtp_server)
    monkeypatch.setenv("GIGO_SMTP_URL", "smtp://ann@127.0.0.1:2525")
    monkeypatch.delenv("GIGO_SMTP_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match="set GIGO_SMTP_PASSWORD"):
        SignupPage(load_config(root))


def test_a_page_under_a_folder_keeps_signup_beside_its_unsubscribe(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp_server: SmtpServer) -> None:
    root = newsletter(tmp_path, monkeypatch, smtp_server, extra='redirect_url = "https://gigo.dev/thanks"\n')
    config_file = root / "gigo-mail.toml"
    config_file.write_text(config_file.read_text().replace("https://gigo.dev/unsubscribe",
                                                           "https://gigo.dev/news/unsubscribe"))
    with serving(root, smtp_server) as site:
        status, _, body = http(f"{site.base}/news/subscribe")
        assert status == 200 and 'action="/news/subscribe"' in body
        assert 'src="/news/subscribe/altcha.js"' in body and 'challenge="/news/subscribe/challenge"' in body
        assert http(f"{site.base}/subscribe")[0] == 404  # nothing outside the page's folder
        status, headers, _ = sign_up(f"{site.base}/news", "folder@example.org")
        assert status == 303 and headers["Location"] == "https://gigo.dev/thanks"  # the trusted redirect
        [mail] = site.mails()
        link = link_of(mail)
        assert link.startswith("https://gigo.dev/news/confirm?token=")
        assert 'action="/news/confirm"' in http(local(site, link))[2]
        status, headers, _ = http(f"{site.base}/news/confirm", form(token=token_of(mail)))
        assert status == 303 and headers["Location"] == "https://gigo.dev/thanks" and site.confirmed() == 1
    laptop = load_config(root)
    laptop = dataclasses.replace(laptop, unsubscribe=dataclasses.replace(
        laptop.unsubscribe, sync_url="https://gigo.dev/news/suppressions"))
    assert signups_url(laptop) == "https://gigo.dev/news/signups"


def test_signup_is_served_under_the_slow_and_idle_client_probe(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp_server: SmtpServer) -> None:
    """The defence's probe (1,000 clients trickling header lines, 1,000 idle sockets) against the
    page with signup on: the form and five signups, each answered in under a second."""
    from test_public_load import IDLE, SLOW, slow_client_probe, still_open

    root = newsletter(tmp_path, monkeypatch, smtp_server)
    with serving(root, smtp_server, replace(DEFAULT_LIMITS, loop_timeout=0.05)) as site:
        proofs = [solve(site.base) for _ in range(5)]
        port = int(site.base.rsplit(":", 1)[1])
        with slow_client_probe(port, b"POST /subscribe HTTP/1.1\r\nHost: gigo.dev\r\n") as sockets:
            times = []
            for i, proof in enumerate(proofs):
                time.sleep(0.5)
                started = time.monotonic()
                assert http(f"{site.base}/subscribe")[0] == 200
                assert sign_up(site.base, f"steady{i}@example.org", proof)[0] == 200
                times.append(time.monotonic() - started)
            held = sum(still_open(sock) for sock in sockets)
        assert len(site.mails()) == 5
    assert held >= 0.98 * (SLOW + IDLE), f"only {held} of the probe's sockets were held"
    assert max(times) < 1.0, times
