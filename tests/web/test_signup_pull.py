"""Confirmed readers into the list: `subscribers pull` (from the store here and over HTTP), the
consent evidence, erasure, the welcome issue, and a list send taking new readers in."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from signup_support import (
    Page,
    confirm_all,
    form,
    http,
    laptop_for,
    list_rows,
    newsletter,
    serving,
    sign_up,
    signup_site,
    token_of,
)
from typer.testing import CliRunner

from conftest import SmtpServer
from gigo_mail.cli.app import app
from gigo_mail.config import load_config
from gigo_mail.errors import SyncError
from gigo_mail.journal.deliveries import Journal
from gigo_mail.journal.signups import SignupStore
from gigo_mail.send.signups import consent_evidence, pull_signups
from support import write_issue

pytestmark = pytest.mark.slow


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp_server: SmtpServer) -> Iterator[Page]:
    yield from signup_site(tmp_path, monkeypatch, smtp_server)


def test_pull_from_the_store_here_adds_each_reader_once_with_consent_at_and_source(site: Page) -> None:
    before = list_rows(site.root)
    for email in ("new1@example.org", "ana@example.org"):  # ana is on the list already
        sign_up(site.base, email)
    confirm_all(site)
    config = load_config(site.root)
    with Journal.for_root(site.root) as journal:
        first = pull_signups(config, journal)
        again = pull_signups(config, journal)
    assert (first.added, first.already, again.added) == (1, 1, 0)
    rows = list_rows(site.root)
    assert len(rows) == len(before) + 1
    added = rows[-1]
    assert added["email"] == "new1@example.org" and added["name"] == "Ann Reader"
    assert added["source"] == "signup page" and datetime.fromisoformat(added["consent_at"]).tzinfo is not None
    assert all(row["consent_at"] == "" for row in rows[:-1])  # the old rows got the columns, empty
    assert (site.root / "subscribers.csv").stat().st_mode & 0o777 == 0o644  # its mode kept


def test_pull_over_http_with_the_sync_key_keeps_the_evidence_here(site: Page, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    sign_up(site.base, "remote@example.org")
    confirm_all(site)
    laptop = laptop_for(site, tmp_path / "laptop")
    config = load_config(laptop)
    with Journal.for_root(laptop) as journal:
        result = pull_signups(config, journal)
        assert (result.fetched, result.added) == (1, 1)
        assert pull_signups(config, journal).fetched == 0
    assert list_rows(laptop)[-1]["email"] == "remote@example.org"
    [(record, text)] = consent_evidence(config, "Remote@example.org")
    assert record.consent_version == "2026-12" and "GIGO Tech Trends" in text
    assert hashlib.sha256(text.encode()).hexdigest() == record.consent_hash
    monkeypatch.setenv("GIGO_UNSUBSCRIBE_SECRET", "another secret")  # this machine's secret is not the page's
    with Journal.for_root(laptop) as journal, pytest.raises(SyncError, match="401"):
        pull_signups(load_config(laptop), journal)


def test_pull_lifts_an_older_unsubscribe_and_keeps_a_bounce(site: Page, tmp_path: Path) -> None:
    laptop = laptop_for(site, tmp_path / "laptop")
    with Journal.for_root(laptop) as journal:
        journal.suppress(["back@example.org"], "unsubscribe link")
        journal.suppress(["gone@example.org"], "hard bounce: 550 5.1.1 no such user")
    for email in ("back@example.org", "gone@example.org"):
        sign_up(site.base, email)
    confirm_all(site)
    with Journal.for_root(laptop) as journal:
        result = pull_signups(load_config(laptop), journal)
        assert (result.added, result.rejoined, result.kept_suppressed) == (2, 1, 1)
        assert not journal.is_suppressed("back@example.org")
        assert journal.is_suppressed("gone@example.org")


def test_consent_command_prints_the_evidence(site: Page, monkeypatch: pytest.MonkeyPatch) -> None:
    sign_up(site.base, "ann@example.org", page="https://gigo.dev/issues/011/")
    confirm_all(site)
    monkeypatch.chdir(site.root)
    result = CliRunner().invoke(app, ["subscribers", "consent", "ann@example.org"])
    assert result.exit_code == 0, result.output
    for expected in ("2026-12", "https://gigo.dev/issues/011/", "Send me GIGO Tech Trends", "confirmed"):
        assert expected in result.output
    missing = CliRunner().invoke(app, ["subscribers", "consent", "nobody@example.org"])
    assert missing.exit_code == 0 and "No consent is recorded here for nobody@example.org" in missing.output


def test_forget_erases_the_reader_and_a_hashed_suppression_keeps_them_out(
        site: Page, monkeypatch: pytest.MonkeyPatch) -> None:
    sign_up(site.base, "erase.me@example.org")
    confirm_all(site)
    config = load_config(site.root)
    with Journal.for_root(site.root) as journal:
        pull_signups(config, journal)
        journal.record_soft_bounce("011", "erase.me@example.org", "451 try later", 3)
    monkeypatch.chdir(site.root)
    result = CliRunner().invoke(app, ["subscribers", "forget", "Erase.Me@example.org", "--yes"])
    assert result.exit_code == 0, result.output
    assert "1 list row" in result.output and "1 signup record" in result.output
    assert all(row["email"] != "erase.me@example.org" for row in list_rows(site.root))
    with SignupStore.for_state(site.root / ".gigo") as store:
        assert store.evidence("erase.me@example.org") == []
    files = b"".join(p.read_bytes() for p in (site.root / ".gigo").glob("*.sqlite3*"))
    assert b"erase.me" not in files.lower()  # no address left in the journal or the store
    with Journal.for_root(site.root) as journal:
        assert journal.is_suppressed("erase.me@example.org")  # an old export cannot bring them back
        assert journal.suppressions_since("", "") == []  # and the page's feed never shows the hash


def test_serve_is_the_public_page_and_unsubscribe_serve_its_alias() -> None:
    for args in (["serve", "--help"], ["unsubscribe", "--help"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0 and "--port" in result.output


def test_the_welcome_issue_goes_once_to_each_new_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        smtp_server: SmtpServer) -> None:
    root = newsletter(tmp_path, monkeypatch, smtp_server)
    (root / "gigo-mail.toml").write_text((root / "gigo-mail.toml").read_text().replace(
        "get_confirms = false", 'get_confirms = false\nwelcome = "welcome"'))
    write_issue(root, "welcome.md", 'subject: "Welcome to GIGO Tech Trends"\npreheader: "Glad you are here"',
                "## Welcome\n\nHello {{ subscriber.first_name | default('there') }}.\n")
    monkeypatch.chdir(root)
    with serving(root, smtp_server) as site:
        sign_up(site.base, "first@example.org")
        confirm_all(site)
        result = CliRunner().invoke(app, ["subscribers", "pull"])
        assert result.exit_code == 0, result.output
        sign_up(site.base, "second@example.org")
        site.page.mailer.join()
        confirmations = [m for m in site.smtp.messages if m.parse()["Subject"].startswith("Confirm")]
        http(f"{site.base}/confirm", form(token=token_of(confirmations[-1].data)))
        for _ in range(2):
            result = CliRunner().invoke(app, ["subscribers", "pull"])
            assert result.exit_code == 0, result.output
    welcomes = [m.rcpt_tos[0] for m in smtp_server.messages
                if "Welcome to GIGO" in m.parse()["Subject"]]
    assert welcomes == ["first@example.org", "second@example.org"]
    with Journal.for_root(root) as journal:
        assert journal.counts("welcome")["sent"] == 2


def test_a_list_send_takes_in_new_readers_before_it_counts(
        site: Page, monkeypatch: pytest.MonkeyPatch) -> None:
    sign_up(site.base, "joined@example.org")
    confirm_all(site)
    monkeypatch.chdir(site.root)
    dry = CliRunner().invoke(app, ["send", "011", "--list", "subscribers.csv", "--dry-run", "--no-write"])
    assert dry.exit_code == 0 and "took in" not in dry.output  # a dry run writes nothing
    result = CliRunner().invoke(app, ["send", "011", "--list", "subscribers.csv", "--yes"])
    assert result.exit_code == 0, result.output
    assert "took in 1 new reader" in result.output
    issue = [m.rcpt_tos[0] for m in site.smtp.messages if "Confirm" not in m.parse()["Subject"]]
    assert "joined@example.org" in issue and len(issue) == len(set(issue))
    again = CliRunner().invoke(app, ["send", "011", "--list", "subscribers.csv", "--yes"])
    assert again.exit_code == 0 and "took in 0 new readers" in again.output


def test_pull_counts_an_erased_reader_who_signs_up_again_as_kept_suppressed(site: Page,
                                                                            tmp_path: Path) -> None:
    """An erased address stays refused by its hashed suppression (its old reason is gone with it, so
    a new signup cannot tell an unsubscribe from a complaint): the pull must say it stays unmailed,
    not count it among the readers added as if the next send would reach them."""
    laptop = laptop_for(site, tmp_path / "laptop")
    with Journal.for_root(laptop) as journal:
        journal.suppress(["erased@example.org"], "unsubscribe link")
        journal.forget("erased@example.org")
    sign_up(site.base, "erased@example.org")
    confirm_all(site)
    with Journal.for_root(laptop) as journal:
        result = pull_signups(load_config(laptop), journal)
        assert journal.is_suppressed("erased@example.org")
    assert (result.added, result.rejoined, result.kept_suppressed) == (1, 0, 1)


def test_forget_on_the_sending_machine_says_the_page_elsewhere_keeps_its_copy(
        site: Page, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the page on another machine (sync_url), its signup store and suppression list still hold
    the address after a forget here: the command must say where to erase it too, not "everywhere"."""
    laptop = laptop_for(site, tmp_path / "laptop")
    monkeypatch.chdir(laptop)
    result = CliRunner().invoke(app, ["subscribers", "forget", "someone@example.org", "--yes"])
    assert result.exit_code == 0, result.output
    assert site.base.split("//", 1)[1] in result.output and "subscribers forget" in result.output
    monkeypatch.chdir(site.root)  # the page's own folder: nothing elsewhere to mention
    here = CliRunner().invoke(app, ["subscribers", "forget", "someone@example.org", "--yes"])
    assert here.exit_code == 0 and "run `gigo-mail subscribers forget`" not in here.output
