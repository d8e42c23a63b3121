"""Mail sources against real servers: `gigo-mail bounces --imap` on a private Dovecot (TLS)."""

from __future__ import annotations

import imaplib
import ssl
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gigo_mail.address import address_key
from gigo_mail.answers.source import ImapSource, MboxSource, parse_imap_url
from gigo_mail.cli.app import app
from gigo_mail.errors import ConfigError, MailSourceError
from gigo_mail.journal.deliveries import Journal
from servers import Dovecot
from support import make_newsletter

ANSWERS = Path(__file__).resolve().parents[1] / "data" / "answers"
SECRET = "imap-secret"
runner = CliRunner()


def imap(server: Dovecot) -> imaplib.IMAP4_SSL:
    client = imaplib.IMAP4_SSL("127.0.0.1", server.port,
                               ssl_context=ssl.create_default_context(cafile=str(server.cafile)))
    client.login(server.user, server.password)
    return client


def append(server: Dovecot, names: list[str]) -> None:
    client = imap(server)
    for name in names:
        status, _ = client.append("INBOX", "", imaplib.Time2Internaldate(time.time()),
                                  (ANSWERS / name).read_bytes())
        assert status == "OK"
    client.logout()


def count(server: Dovecot, folder: str) -> int:
    client = imap(server)
    status, data = client.select(f'"{folder}"', readonly=True)
    client.logout()
    return int(data[0]) if status == "OK" else -1  # type: ignore[arg-type]


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dovecot: Dovecot) -> Path:
    root = make_newsletter(tmp_path / "nl")
    monkeypatch.chdir(root)
    monkeypatch.setenv("GIGO_UNSUBSCRIBE_SECRET", SECRET)
    monkeypatch.setenv("GIGO_IMAP_PASSWORD", dovecot.password)
    monkeypatch.setenv("GIGO_IMAP_CAFILE", str(dovecot.cafile))
    with Journal.for_root(root) as journal:
        for email, number in (("gone@example.net", 7), ("annoyed@yahoo.example", 13)):
            journal.mark_sent("011", address_key(email), email, f"<672f1a2b.a1b2c3d4e5f6.{number}@gigo.dev>",
                              250, "ok")
    return root


def test_bounces_over_imap_suppress_move_and_run_twice(root: Path, dovecot: Dovecot) -> None:
    append(dovecot, ["postfix-dsn-user-unknown.eml", "yahoo-arf-complaint.eml", "out-of-office-rfc3834.eml",
                     "exchange-ndr.eml"])
    result = runner.invoke(app, ["bounces", "--imap", dovecot.url, "--move-to", "Processed"])
    assert result.exit_code == 0, result.output + result.stderr
    with Journal.for_root(root) as journal:
        assert {s.email: s.reason for s in journal.suppressions()} == {
            "gone@example.net": "hard bounce", "annoyed@yahoo.example": "complaint"}
    assert count(dovecot, "Processed") == 3 and count(dovecot, "INBOX") == 1  # the unattributed one stays
    again = runner.invoke(app, ["bounces", "--imap", dovecot.url, "--move-to", "Processed"])
    assert again.exit_code == 0 and "already processed" in again.output
    assert count(dovecot, "Processed") == 3 and count(dovecot, "INBOX") == 1


def test_reading_marks_nothing_seen_without_move(root: Path, dovecot: Dovecot) -> None:
    append(dovecot, ["postfix-dsn-user-unknown.eml"])
    assert runner.invoke(app, ["bounces", "--imap", dovecot.url]).exit_code == 0
    client = imap(dovecot)
    client.select("INBOX", readonly=True)
    assert client.search(None, "UNSEEN")[1][0] == b"1"  # BODY.PEEK: the mailbox looks untouched
    client.logout()


def test_a_wrong_password_is_one_line(root: Path, server_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    own = Dovecot(server_root).start()  # failed logins slow Dovecot down later: not the shared one
    monkeypatch.setenv("GIGO_IMAP_PASSWORD", "wrong")
    monkeypatch.setenv("GIGO_IMAP_CAFILE", str(own.cafile))
    try:
        result = runner.invoke(app, ["bounces", "--imap", own.url])
    finally:
        own.stop()
    assert result.exit_code == 1
    assert "refused the login for gigo" in result.stderr and "wrong" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_untrusted_certificate_is_refused(root: Path, dovecot: Dovecot,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GIGO_IMAP_CAFILE")
    result = runner.invoke(app, ["bounces", "--imap", dovecot.url])
    assert result.exit_code == 1 and "certificate does not verify" in result.stderr


def test_a_missing_folder(dovecot: Dovecot) -> None:
    url = parse_imap_url(dovecot.url.replace("/INBOX", "/Nowhere"))
    with pytest.raises(MailSourceError, match="has no folder 'Nowhere'"):
        ImapSource(url, dovecot.password, cafile=str(dovecot.cafile))


@pytest.mark.parametrize(("url", "message"), [
    ("imap://u@host/INBOX", "must start with imaps://"), ("imaps://host/INBOX", "needs a user"),
    ("imaps://u:pw@host/INBOX", "put no password in the URL")])
def test_imap_urls(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_imap_url(url)
    assert parse_imap_url("imaps://bounce%40gigo.dev@mail.example:1993/Bounces").user == "bounce@gigo.dev"


# -- inputs that are not what they claim ----------------------------------------------------------

def _one_line_error(root: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    monkeypatch.chdir(root)
    result = runner.invoke(app, ["bounces", *args])
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("list.csv", b"email,name\nann@example.org,Ann\n", "list.csv is not an mbox file"),
    ("noise.bin", bytes(range(256)) * 4, "noise.bin is not an mbox file"),
    ("one.eml", b"From: a@example.org\r\nSubject: hi\r\n\r\nbody\r\n", "one.eml is not an mbox file"),
])
def test_an_mbox_that_is_not_one_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str,
                                          content: bytes, expected: str) -> None:
    (tmp_path / "gigo-mail.toml").write_text('[newsletter]\nname = "N"\n', encoding="utf-8")
    (tmp_path / name).write_bytes(content)
    line = _one_line_error(tmp_path, monkeypatch, "--mbox", name)
    assert expected in line and "--maildir" in line
    with pytest.raises(MailSourceError, match=expected):
        MboxSource(tmp_path / name)


@pytest.mark.parametrize("option", ["--mbox", "--maildir"])
def test_a_missing_path_is_no_such_file_or_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  option: str) -> None:
    (tmp_path / "gigo-mail.toml").write_text('[newsletter]\nname = "N"\n', encoding="utf-8")
    assert _one_line_error(tmp_path, monkeypatch, option, "gone") == "error: gone: no such file or folder; " \
        "check the path"


def test_the_wrong_kind_of_mailbox_says_which_option_fits(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "gigo-mail.toml").write_text('[newsletter]\nname = "N"\n', encoding="utf-8")
    (tmp_path / "folder").mkdir()
    (tmp_path / "box.mbox").write_bytes(b"")
    assert "folder is a folder, not an mbox file; for a Maildir use --maildir" in \
        _one_line_error(tmp_path, monkeypatch, "--mbox", "folder")
    assert "folder is not a Maildir (it needs cur/ and new/ folders); for an mbox file use --mbox" in \
        _one_line_error(tmp_path, monkeypatch, "--maildir", "folder")
    assert "box.mbox is not a Maildir" in _one_line_error(tmp_path, monkeypatch, "--maildir", "box.mbox")
    source = MboxSource(tmp_path / "box.mbox")  # an empty file is an empty mbox
    try:
        assert list(source.messages()) == []
    finally:
        source.close()
