"""Suppression sync: the page on one machine, `send` on another (two folders, real HTTP and SMTP)."""

from __future__ import annotations

import json
import re
import ssl
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import SmtpServer, TlsFiles
from gigo_mail.cli.app import app
from gigo_mail.config import load_config
from gigo_mail.errors import ConfigError, SyncError
from gigo_mail.journal.deliveries import Journal
from gigo_mail.journal.sync import STATE_NAME, pull_suppressions
from gigo_mail.send.tokens import make_token
from gigo_mail.web.public import ServeLimits
from servers import running_page, tls_front
from support import make_newsletter, write_issue

SECRET = "shared-secret"
runner = CliRunner()


@pytest.fixture
def page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    """The server's folder, with the page running on it."""
    monkeypatch.setenv("GIGO_UNSUBSCRIBE_SECRET", SECRET)
    root = make_newsletter(tmp_path / "server")
    with running_page(load_config(root), ServeLimits(loop_timeout=0.05)) as base:
        yield root, base


def laptop(tmp_path: Path, sync_url: str) -> Path:
    """The sending machine's folder: the same newsletter, pointed at the page's sync URL."""
    root = make_newsletter(tmp_path / "laptop")
    with (root / "gigo-mail.toml").open("a") as handle:
        handle.write(f'\n[unsubscribe]\nsync_url = "{sync_url}"\n')
    return root


def one_click(base: str, email: str) -> None:
    url = f"{base}/unsubscribe?token={make_token(SECRET.encode(), email)}"
    with urllib.request.urlopen(urllib.request.Request(url, data=b"List-Unsubscribe=One-Click"),
                                timeout=5) as response:
        assert response.status == 200


def test_pull_adds_what_the_page_has_once(page: tuple[Path, str], tmp_path: Path) -> None:
    server, base = page
    one_click(base, "ana@example.org")
    one_click(base, "Dev@Example.org")
    config = load_config(laptop(tmp_path, f"{base}/suppressions"))
    with Journal.for_root(config.root) as journal:
        first = pull_suppressions(config, journal)
        assert (first.received, first.added) == (2, 2)
        assert journal.is_suppressed("dev@example.org") and journal.is_suppressed("ana@example.org")
        assert journal.suppressions()[0].reason == "one-click unsubscribe"
        again = pull_suppressions(config, journal)
        assert again.added == 0
    assert json.loads((config.state_dir / STATE_NAME).read_text())["url"] == f"{base}/suppressions"


def test_pull_pages_through_a_long_list(page: tuple[Path, str], tmp_path: Path) -> None:
    server, base = page
    with Journal.for_root(server) as journal:
        journal.suppress([f"r{i}@example.org" for i in range(2500)], "imported")
    config = load_config(laptop(tmp_path, f"{base}/suppressions"))
    with Journal.for_root(config.root) as journal:
        result = pull_suppressions(config, journal)
        assert result.added == 2500 and len(journal.suppressed_keys()) == 2500


def test_pull_with_another_secret_is_refused(page: tuple[Path, str], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _, base = page
    one_click(base, "ana@example.org")
    config = load_config(laptop(tmp_path, f"{base}/suppressions"))
    monkeypatch.setenv("GIGO_UNSUBSCRIBE_SECRET", "not the same")
    with Journal.for_root(config.root) as journal, pytest.raises(SyncError, match="HTTP 401.*same unsub"):
        pull_suppressions(config, journal)


def test_plain_http_only_on_loopback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIGO_UNSUBSCRIBE_SECRET", SECRET)
    config = load_config(laptop(tmp_path, "http://sync.example.org/suppressions"))
    with Journal.for_root(config.root) as journal, pytest.raises(SyncError, match="must be https"):
        pull_suppressions(config, journal)


def test_a_sync_url_that_is_not_http_is_refused_when_the_config_loads(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"gigo-mail.toml:\d+:\d+: \[unsubscribe\] sync_url "
                       "'ftp://127.0.0.1/x' is not an https or http URL"):
        load_config(laptop(tmp_path, "ftp://127.0.0.1/x"))


@pytest.mark.slow
def test_pull_over_https_verifies_the_certificate(page: tuple[Path, str], tmp_path: Path, tls_files: TlsFiles,
                                                 untrusted_tls_files: TlsFiles) -> None:
    """The page behind TLS (a trustme CA): pulled with the newsletter's CA; refused, with nothing
    added, for a certificate nobody trusts, for one this machine's store does not know, and for
    one issued to another name."""
    import trustme

    _, base = page
    one_click(base, "ana@example.org")
    port = int(base.rsplit(":", 1)[1])

    def pull(context: ssl.SSLContext, cafile: Path | None, folder: str) -> tuple[int, int]:
        with tls_front(context, port) as front:
            root = laptop(tmp_path / folder, f"https://127.0.0.1:{front}/suppressions")
            if cafile is not None:
                with (root / "gigo-mail.toml").open("a") as handle:
                    handle.write(f'cafile = "{cafile}"\n')
            config = load_config(root)
            with Journal.for_root(root) as journal:
                result = pull_suppressions(config, journal, timeout=10)
                return result.added, len(journal.suppressed_keys())

    assert pull(tls_files.server_context, tls_files.ca_file, "trusted") == (1, 1)
    rogue = (untrusted_tls_files.server_context, untrusted_tls_files.ca_file, "rogue")
    for context, cafile, folder in (rogue, (tls_files.server_context, None, "system-store")):
        with pytest.raises(SyncError, match="certificate verify failed"):
            pull(context, cafile, folder)
        laptop_root = tmp_path / folder / "laptop"
        assert not (laptop_root / ".gigo" / STATE_NAME).exists()
        with Journal.for_root(laptop_root) as journal:
            assert journal.suppressed_keys() == set()
    other = trustme.CA()
    elsewhere = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    other.issue_cert("sync.example.org").configure_cert(elsewhere)
    ca_file = tmp_path / "other-ca.pem"
    other.cert_pem.write_to_path(str(ca_file))
    with pytest.raises(SyncError, match="certificate verify failed.*(mismatch|match)"):
        pull(elsewhere, ca_file, "wrong-name")


def send(root: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str, str]:
    monkeypatch.chdir(root)
    result = runner.invoke(app, ["send", *args])
    return result.exit_code, result.stdout, result.stderr


def test_a_posted_unsubscribe_is_honoured_by_the_next_send(page: tuple[Path, str], tmp_path: Path,
                                                          smtp_server: SmtpServer,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    server, base = page
    root = laptop(tmp_path, f"{base}/suppressions")
    write_issue(root, "060.md", "number: 60\nsubject: Sixty\npreheader: p", "Hello.\n")
    write_issue(root, "061.md", "number: 61\nsubject: Sixty-one\npreheader: p", "Hello again.\n")
    code, _, err = send(root, monkeypatch, "060", "--list", "subscribers.csv", "--yes",
                        "--smtp", smtp_server.url)
    assert code == 0, err
    everyone = set(smtp_server.handler.delivered_to())
    assert "chen@example.org" in everyone
    one_click(base, "chen@example.org")  # the reader clicks, on the server
    assert not _suppressed(root, "chen@example.org")  # the laptop does not know yet
    smtp_server.handler.messages.clear()
    code, out, err = send(root, monkeypatch, "061", "--list", "subscribers.csv", "--yes",
                          "--smtp", smtp_server.url)
    assert code == 0, err
    assert "pulled 1 unsubscribes" in out
    assert set(smtp_server.handler.delivered_to()) == everyone - {"chen@example.org"}


def _suppressed(root: Path, email: str) -> bool:
    with Journal.for_root(root) as journal:
        return journal.is_suppressed(email)


def test_send_refuses_when_the_pull_fails_unless_offline(tmp_path: Path, smtp_server: SmtpServer,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIGO_UNSUBSCRIBE_SECRET", SECRET)
    root = laptop(tmp_path, "http://127.0.0.1:9/suppressions")  # nothing listens on the discard port
    write_issue(root, "060.md", "number: 60\nsubject: Sixty\npreheader: p", "Hello.\n")
    code, _, err = send(root, monkeypatch, "060", "--list", "subscribers.csv", "--yes",
                        "--smtp", smtp_server.url)
    assert code == 1
    assert "cannot pull unsubscribes from http://127.0.0.1:9/suppressions" in err and "--offline" in err
    assert len(err.strip().splitlines()) == 1
    assert smtp_server.handler.messages == []
    code, _, err = send(root, monkeypatch, "060", "--list", "subscribers.csv", "--yes", "--offline",
                        "--smtp", smtp_server.url)
    assert code == 0, err
    assert smtp_server.handler.messages


def test_a_dry_run_plans_with_the_pages_unsubscribes_and_writes_none(
        page: tuple[Path, str], tmp_path: Path, smtp_server: SmtpServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The dry run shows the plan the send will follow: it reads the page's suppression list as
    the send would pull it, but keeps it in memory (no journal, no cursor); the send agrees."""
    _, base = page
    root = laptop(tmp_path, f"{base}/suppressions")
    write_issue(root, "060.md", "number: 60\nsubject: Sixty\npreheader: p", "Hello.\n")
    one_click(base, "chen@example.org")
    code, out, err = send(root, monkeypatch, "060", "--list", "subscribers.csv", "--dry-run", "--no-write")
    assert code == 0, err
    text = " ".join(out.split())
    assert "read 1 unsubscribes" in text and "(1 new; a dry run writes none of them)" in text
    match = re.search(r"rendered\s*│?\s*(\d+)", out)
    assert match is not None, out
    rendered = int(match.group(1))
    assert not (root / ".gigo" / "journal.sqlite3").exists() and not (root / ".gigo" / STATE_NAME).exists()
    code, out, err = send(root, monkeypatch, "060", "--list", "subscribers.csv", "--yes",
                          "--smtp", smtp_server.url)
    assert code == 0, err
    delivered = set(smtp_server.handler.delivered_to())
    assert "chen@example.org" not in delivered and len(delivered) == rendered
    code, out, err = send(root, monkeypatch, "060", "--list", "subscribers.csv", "--dry-run", "--no-write")
    assert code == 0 and "read 1 unsubscribes" in " ".join(out.split()) and "(0 new;" in out, err


def test_a_dry_run_refuses_when_the_pull_fails_unless_offline(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIGO_UNSUBSCRIBE_SECRET", SECRET)
    root = laptop(tmp_path, "http://127.0.0.1:9/suppressions")
    write_issue(root, "060.md", "number: 60\nsubject: Sixty\npreheader: p", "Hello.\n")
    code, _, err = send(root, monkeypatch, "060", "--list", "subscribers.csv", "--dry-run", "--no-write")
    assert code == 1 and "cannot pull unsubscribes" in err and len(err.strip().splitlines()) == 1
    code, _, err = send(root, monkeypatch, "060", "--list", "subscribers.csv", "--dry-run", "--no-write",
                        "--offline")
    assert code == 0 and "offline:" in err, err


def test_a_pull_never_brings_back_an_erased_address(page: tuple[Path, str], tmp_path: Path) -> None:
    """A reader unsubscribes on the page, then asks to be erased and `subscribers forget` runs here
    before the next pull: the page still has the address, but the pull must not write it back into
    this journal (only the hashed suppression of the erasure stays, and it still refuses them)."""
    server, base = page
    one_click(base, "Erin@Example.org")
    one_click(base, "finn@example.org")
    config = load_config(laptop(tmp_path, f"{base}/suppressions"))
    with Journal.for_root(config.root) as journal:
        journal.forget("erin@example.org")
        result = pull_suppressions(config, journal)
        assert result.added == 1  # finn only
        assert all("erin" not in row.email.lower() for row in journal.suppressions())
        assert journal.is_suppressed("erin@example.org") and journal.is_suppressed("finn@example.org")
        journal.suppress_each([("ERIN@example.org", "imported")])  # an old export, imported again
        assert all("erin" not in row.email.lower() for row in journal.suppressions())
    assert b"rin@example.org" not in (config.root / ".gigo" / "journal.sqlite3").read_bytes().lower()
