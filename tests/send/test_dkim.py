"""DKIM: issue 011 sent with signing to a real aiosmtpd server verifies with dkimpy for every
recipient (non-ASCII names, SMTPUTF8 addresses), and tampering breaks it."""

from __future__ import annotations

import csv
import os
import stat
from collections.abc import Callable
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from typer.testing import CliRunner

from conftest import SmtpServer
from gigo_mail.cli.app import app
from gigo_mail.compose.compile import compile_issue
from gigo_mail.compose.issue import find_issue
from gigo_mail.config import load_config
from gigo_mail.errors import ConfigError, DkimError
from gigo_mail.lists.reader import sample_subscriber
from gigo_mail.send.dkim import (
    DkimKey,
    DkimSigner,
    canonical_body_piece,
    canonical_header,
    generate_key,
    public_record,
    signer_for,
)
from gigo_mail.send.message import MessageFactory
from support import make_newsletter

runner = CliRunner()
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ED_KEY = ed25519.Ed25519PrivateKey.generate()
RECIPIENTS = [
    ("ana@example.org", "Ana Souza"),
    ("bjorn@exämple.org", "Björn Åström"),
    ("zoë@example.org", "Zoë Ünal"),
    ("李@例え.jp", "李小龍"),
    ("o'brien@example.org", 'Pat "Q" O\'Brien, Jr.'),
    ("plain@example.org", ""),
]


def pem(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def dns_for(records: dict[str, str]) -> Callable[..., bytes | None]:
    """dkimpy's dnsfunc: the published TXT records, by name."""
    table = {f"{name}.".encode(): value.encode() for name, value in records.items()}
    return lambda name, timeout=5: table.get(name)


DNS = dns_for({"s1._domainkey.gigo.dev": public_record(RSA_KEY),
               "e1._domainkey.gigo.dev": public_record(ED_KEY)})


@pytest.fixture
def newsletter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_newsletter(tmp_path / "nl")
    (root / "keys").mkdir()
    (root / "keys" / "rsa.pem").write_bytes(pem(RSA_KEY))
    (root / "keys" / "ed.pem").write_bytes(pem(ED_KEY))
    with (root / "gigo-mail.toml").open("a") as fh:
        fh.write('\n[dkim]\nselector = "s1"\nkey_file = "keys/rsa.pem"\n'
                 'ed25519_selector = "e1"\ned25519_key_file = "keys/ed.pem"\n')
    with (root / "list.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["email", "name"])
        writer.writerows(RECIPIENTS)
    monkeypatch.chdir(root)
    monkeypatch.setenv("GIGO_UNSUBSCRIBE_SECRET", "s")
    for name in ("GIGO_SMTP_URL", "GIGO_DKIM_KEY", "GIGO_DKIM_ED25519_KEY"):
        monkeypatch.delenv(name, raising=False)
    return root


def verifies(message: bytes, index: int = 0) -> bool:
    try:
        return bool(dkim.DKIM(message).verify(idx=index, dnsfunc=DNS))
    except dkim.ValidationError:  # dkimpy raises on a body hash mismatch
        return False


def test_a_signed_send_of_011_verifies_for_every_recipient(
        newsletter: Path, start_smtp: Callable[..., SmtpServer]) -> None:
    server = start_smtp(pipelining=True)
    result = runner.invoke(app, ["send", "011", "--list", "list.csv", "--yes", "--smtp", server.url])
    assert result.exit_code == 0, result.stderr
    received = {m.rcpt_tos[0]: m for m in server.messages}
    assert len(received) == len(RECIPIENTS)
    assert any("SMTPUTF8" in option for m in server.messages for option in m.mail_options)
    for message in received.values():
        data = message.data
        assert data.count(b"DKIM-Signature:") == 2
        assert verifies(data, 0), message.rcpt_tos  # RSA
        assert verifies(data, 1), message.rcpt_tos  # Ed25519 (RFC 8463)
        assert b" h=from:from:to:subject:date:message-id:reply-to:list-id:list-unsubscribe:" \
               b"list-unsubscribe-post:mime-version:content-type;" in data
        assert b"a=rsa-sha256; c=relaxed/relaxed; d=gigo.dev;" in data


def test_changing_list_unsubscribe_or_the_body_breaks_the_signature(
        newsletter: Path, start_smtp: Callable[..., SmtpServer]) -> None:
    server = start_smtp()
    result = runner.invoke(app, ["send", "011", "--list", "list.csv", "--yes", "--smtp", server.url])
    assert result.exit_code == 0, result.stderr
    data = server.messages[0].data
    assert verifies(data)
    head, _, body = data.partition(b"\r\n\r\n")
    swapped = head.replace(b"List-Unsubscribe: <https://gigo.dev/", b"List-Unsubscribe: <https://evil.test/")
    assert swapped != head
    assert not verifies(swapped + b"\r\n\r\n" + body)
    assert not verifies(head.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
                                     b"List-Unsubscribe-Post: nothing") + b"\r\n\r\n" + body)
    # a second From added above the first: over-signing From makes this fail too
    assert not verifies(b"From: someone@evil.test\r\n" + data)
    edited = body.replace(b"GIGO", b"G1GO", 1)
    assert edited != body
    assert not verifies(head + b"\r\n\r\n" + edited)
    # relaxed canonicalization: rewrapped whitespace is not tampering
    assert verifies(head.replace(b"MIME-Version: 1.0", b"MIME-Version:   1.0 ") + b"\r\n\r\n" + body)


def test_the_piecewise_body_hash_equals_whole_message_canonicalization(newsletter: Path) -> None:
    config = load_config(newsletter)
    compiled = compile_issue(config, find_issue(newsletter, "011"))
    signer = DkimSigner("gigo.dev", [DkimKey("s1", RSA_KEY)])
    factory = MessageFactory(compiled, secret=b"s", signer=signer)
    for email, name in RECIPIENTS:
        data = factory.build(sample_subscriber(email, "  spaced\tname  " + name)).data
        body = data.partition(b"\r\n\r\n")[2]
        unsigned = data[data.index(b"\r\nTo: ") + 2:]
        fresh = DkimSigner("gigo.dev", [DkimKey("s1", RSA_KEY)]).sign(unsigned)
        bh = [line for line in data.split(b"\r\n") if line.startswith(b" bh=")][0]
        assert bh in fresh  # the same bh from the slow path over the whole body
        assert b"  " in body  # the HTML has runs the canonicalization must squeeze
        assert verifies(data)


def test_canonicalization_rules() -> None:
    assert canonical_header(b"Subject:  Hello \r\n\t  World  \r\n") == b"subject:Hello World\r\n"
    assert canonical_header(b"SUBJECT \t: x\r\n") == b"subject:x\r\n"
    assert canonical_body_piece(b"a  \t b \r\nc\t\r\n") == b"a b\r\nc\r\n"
    assert canonical_body_piece(b"clean\r\n") == b"clean\r\n"


def test_unsigned_without_dkim_section(tmp_path: Path) -> None:
    root = make_newsletter(tmp_path / "nl")
    config = load_config(root)
    assert signer_for(config) is None
    data = MessageFactory(compile_issue(config, find_issue(root, "011")), secret=b"s").build(
        sample_subscriber("a@example.org")).data
    assert b"DKIM-Signature" not in data


def test_the_key_may_come_from_the_environment(newsletter: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = generate_key()
    assert isinstance(other, rsa.RSAPrivateKey)
    monkeypatch.setenv("GIGO_DKIM_KEY", pem(other).decode())
    signer = signer_for(load_config(newsletter))
    assert signer is not None
    assert signer.keys[0].key.public_key().public_numbers() == other.public_key().public_numbers()


@pytest.mark.parametrize(("setup", "expected"), [
    (lambda root: (root / "keys" / "rsa.pem").unlink(), "cannot read"),
    (lambda root: (root / "keys" / "rsa.pem").write_text("not a key"), "not an unencrypted PEM"),
    (lambda root: (root / "keys" / "rsa.pem").write_bytes(
        pem(rsa.generate_private_key(public_exponent=65537, key_size=1024))), "too short"),
    (lambda root: (root / "keys" / "rsa.pem").write_bytes(pem(ED_KEY)), "must be RSA"),
    (lambda root: (root / "keys" / "ed.pem").write_bytes(pem(RSA_KEY)), "not an Ed25519"),
])
def test_unusable_keys_are_one_clear_line(newsletter: Path, setup: Callable[[Path], None],
                                          expected: str) -> None:
    setup(newsletter)
    with pytest.raises((ConfigError, DkimError), match=expected):
        signer_for(load_config(newsletter))
    result = runner.invoke(app, ["send", "011", "--list", "list.csv", "--yes", "--smtp", "smtp://127.0.0.1:9"])
    assert result.exit_code == 1
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert "PRIVATE KEY" not in result.stderr + result.stdout


def test_keygen_writes_a_private_key_and_prints_only_the_public_record(newsletter: Path) -> None:
    result = runner.invoke(app, ["dkim", "keygen", "--selector", "k1"])
    assert result.exit_code == 0, result.stderr
    path = newsletter / ".gigo" / "dkim-k1.pem"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    public = serialization.load_pem_public_key((newsletter / ".gigo" / "dkim-k1.pub.pem").read_bytes())
    assert public.public_numbers() == key.public_key().public_numbers()  # type: ignore[union-attr]
    out = result.stdout.replace("\n", "")
    assert "k1._domainkey.gigo.dev" in out
    assert "".join(part.strip('"') for part in public_record(key).split()) in \
        out.replace('" "', "").replace(" ", "").replace('"', "")
    assert "PRIVATE" not in result.stdout
    again = runner.invoke(app, ["dkim", "keygen", "--selector", "k1"])
    assert again.exit_code == 1 and "already exists" in again.stderr
    ed = runner.invoke(app, ["dkim", "keygen", "--selector", "e2", "--ed25519"])
    assert ed.exit_code == 0 and "k=ed25519" in ed.stdout and 'ed25519_selector = "e2"' in ed.stdout
