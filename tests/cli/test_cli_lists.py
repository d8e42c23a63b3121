"""CLI: `subscribers check`, `status`, `unsubscribe`, run against real files in tmp_path."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gigo_mail.cli.app import app
from gigo_mail.cli.console import console
from gigo_mail.journal.deliveries import Journal
from gigo_mail.send.tokens import make_token

DATA = Path(__file__).resolve().parents[1] / "data"
SECRET = "cli-test-secret"


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A newsletter folder as the current directory, a fixed secret, a wide console."""
    (tmp_path / "gigo-mail.toml").write_text('[newsletter]\nname = "Test"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIGO_UNSUBSCRIBE_SECRET", SECRET)
    monkeypatch.setattr(console, "_width", 200)
    yield tmp_path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def count_of(output: str, label: str) -> int:
    """The number on the line that starts with ``label`` in a counts table."""
    for line in output.splitlines():
        text = line.strip()
        if text.startswith(label + " "):
            return int(text[len(label):].split()[0].replace(",", ""))
    raise AssertionError(f"no '{label}' line in:\n{output}")


def journal_with_history(root: Path, issue_key: str = "011") -> None:
    with Journal.for_root(root) as journal:
        run_id = journal.begin_run(issue_key, 60)
        for i in range(25):
            journal.mark_sent(issue_key, f"u{i}@example.com", f"u{i}@example.com", f"<{i}@x>", 250, "ok")
        for i in range(22):
            journal.mark_failed(issue_key, f"bad{i}@example.com", f"bad{i}@example.com", 550,
                                f"5.1.1 <bad{i}@example.com>: user unknown", True)
        journal.mark_failed(issue_key, "slow@example.com", "slow@example.com", 451, "4.7.1 try later", False)
        journal.mark_sending(issue_key, "unsure@example.com", "unsure@example.com", "<u@x>")
        journal.end_run(run_id, "interrupted")


def test_subscribers_check_reports_counts_and_lines(root: Path) -> None:
    code, out, err = run("subscribers", "check", str(DATA / "subscribers_sample.csv"))
    assert code == 0, err
    assert count_of(out, "valid") == 5
    assert count_of(out, "invalid") == 1
    assert count_of(out, "duplicate") == 1
    assert count_of(out, "unsubscribed") == 1
    assert count_of(out, "bounced") == 1
    assert count_of(out, "suppressed") == 0
    assert "delimiter ','" in out and "9 rows" in out and "plain CSV" in out
    assert "is a duplicate of line 3" in out
    table_lines = [line for line in out.splitlines() if "bob@" in line]
    assert table_lines and table_lines[0].split()[1] == "5"  # the invalid row, with its line number


def test_subscribers_check_counts_the_suppression_list(root: Path) -> None:
    assert run("unsubscribe", "fay@example.org")[0] == 0
    code, out, _ = run("subscribers", "check", str(DATA / "subscribers_sample.csv"))
    assert code == 0
    assert count_of(out, "suppressed") == 1 and count_of(out, "valid") == 4


def test_subscribers_check_says_how_many_more(root: Path) -> None:
    path = root / "many.csv"
    path.write_text("email\n" + "".join(f"bad{i}@\n" for i in range(60)), encoding="utf-8")
    code, out, err = run("subscribers", "check", str(path))
    assert code == 1 and "nobody to send to: of the 60 rows" in err and "60 invalid" in err
    assert "... and 10 more skipped rows" in out
    assert "bad49@" in out and "bad50@" not in out


def test_subscribers_check_unusable_file_is_one_line_exit_1(root: Path) -> None:
    code, out, err = run("subscribers", "check", str(DATA / "subscribers_no_email.csv"))
    assert code == 1
    assert "subscribers_no_email.csv" in err and "no 'email' column" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err + out
    code, _, err = run("subscribers", "check", str(root / "missing.csv"))
    assert code == 1 and "no such file" in err


def test_status_of_an_issue_known_only_to_the_journal(root: Path) -> None:
    journal_with_history(root)
    code, out, err = run("status", "11")
    assert code == 0, err
    assert count_of(out, "sent") == 25
    assert count_of(out, "failed") == 23
    assert count_of(out, "uncertain") == 1
    assert "22 permanent" in out and "1 transient" in out
    assert "unsure@example.com" in out
    assert "... and 3 more failures" in out  # the table shows the first 20 of 23
    assert "interrupted" in out  # the run
    assert count_of(out, "not tried") == 60 - 49  # the run's list had 60; 49 are in the journal


def test_status_of_an_issue_file_with_no_deliveries(root: Path) -> None:
    (root / "issues").mkdir()
    (root / "issues" / "012.md").write_text("---\ntitle: Twelve\n---\nHello\n", encoding="utf-8")
    code, out, err = run("status", "12")
    assert code == 0, err
    assert "Nothing has been sent for issue 012" in out


def test_status_of_an_unknown_issue(root: Path) -> None:
    code, _, err = run("status", "404")
    assert code == 1 and "no issue '404'" in err


def test_status_failed_writes_every_failure(root: Path) -> None:
    journal_with_history(root)
    target = root / "failures.csv"
    code, out, err = run("status", "011", "--failed", str(target))
    assert code == 0, err
    assert "Wrote 23 failures" in out
    with target.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["email", "code", "text", "attempts", "updated_at"]
    assert len(rows) == 23
    by_email = {row["email"]: row for row in rows}
    assert by_email["bad7@example.com"]["code"] == "550"
    assert by_email["bad7@example.com"]["text"] == "5.1.1 <bad7@example.com>: user unknown"
    assert by_email["slow@example.com"]["code"] == "451" and by_email["slow@example.com"]["attempts"] == "1"


def test_unsubscribe_addresses_counts_new_ones(root: Path) -> None:
    code, out, _ = run("unsubscribe", "ann@example.com", "Bob@Example.com")
    assert code == 0 and "Added 2 new addresses" in out
    code, out, _ = run("unsubscribe", "BOB@example.com", "cid@example.com", "--reason", "asked by phone")
    assert code == 0 and "Added 1 new address " in out and "(1 already on it)" in out
    with Journal.for_root(root) as journal:
        assert journal.suppressed_keys() == {"ann@example.com", "bob@example.com", "cid@example.com"}
        reasons = {s.key: s.reason for s in journal.suppressions()}
    assert reasons["cid@example.com"] == "asked by phone"
    code, out, _ = run("unsubscribe", "--list")
    assert code == 0 and "3 addresses" in out and "asked by phone" in out


def test_unsubscribe_invalid_address_changes_nothing(root: Path) -> None:
    code, _, err = run("unsubscribe", "ann@example.com", "bob@")
    assert code == 1
    assert "'bob@' is not a valid address" in err and "nothing was added" in err
    code, out, _ = run("unsubscribe", "--list")
    assert "empty" in out


def test_unsubscribe_remove(root: Path) -> None:
    run("unsubscribe", "ann@example.com")
    code, out, _ = run("unsubscribe", "--remove", "ANN@example.com")
    assert code == 0 and "Removed 1 of 1" in out
    with Journal.for_root(root) as journal:
        assert not journal.is_suppressed("ann@example.com")


def test_unsubscribe_token(root: Path) -> None:
    token = make_token(SECRET.encode(), "Zoë@Bücher.de")
    code, out, err = run("unsubscribe", "--token", token)
    assert code == 0, err
    assert "zoë@bücher.de" in out and "added to the suppression list" in out
    code, out, _ = run("unsubscribe", "--token", token)
    assert "already on the suppression list" in out
    with Journal.for_root(root) as journal:
        assert journal.is_suppressed("zoë@bücher.de")


def test_unsubscribe_bad_token_is_one_line_exit_1(root: Path) -> None:
    token = make_token(b"some other secret", "ann@example.com")
    code, out, err = run("unsubscribe", "--token", token)
    assert code == 1
    assert "not valid" in err and len(err.strip().splitlines()) == 1
    assert "ann" not in out
    assert not (root / ".gigo" / "journal.sqlite3").exists()


def test_unsubscribe_needs_exactly_one_mode(root: Path) -> None:
    assert run("unsubscribe")[0] == 2
    assert run("unsubscribe", "ann@example.com", "--list")[0] == 2


def test_read_only_commands_create_no_journal(root: Path) -> None:
    shutil.copy(DATA / "subscribers_sample.csv", root / "list.csv")
    run("subscribers", "check", "list.csv")
    run("unsubscribe", "--list")
    assert not (root / ".gigo" / "journal.sqlite3").exists()


def test_status_shows_a_run_in_progress(root: Path) -> None:
    with Journal.for_root(root) as journal:
        journal.begin_run("011", 5)
        journal.mark_sent("011", "a@example.com", "a@example.com", "<a@x>", 250, "ok")
        code, out, err = run("status", "011")
    assert code == 0, err
    assert "running" in out and count_of(out, "sent") == 1
    code, out, _ = run("status", "011")  # closed without end_run, as after a crash
    assert "unfinished" in out and "running" not in out


def test_status_failed_to_stdout(root: Path) -> None:
    journal_with_history(root)
    code, out, _ = run("status", "011", "--failed", "-")
    assert code == 0
    rows = list(csv.reader(out.splitlines()))
    assert rows[0] == ["email", "code", "text", "attempts", "updated_at"] and len(rows) == 24


# --- importing and exporting the suppression list, and what check says about it -------------------

EXPORTS = DATA / "exports"


def suppressed(root: Path) -> dict[str, str]:
    with Journal.for_root(root) as journal:
        return {row.email: row.reason for row in journal.suppressions()}


def test_unsubscribe_from_a_platform_export_imports_only_its_opted_out_rows(root: Path) -> None:
    code, out, err = run("unsubscribe", "--from", str(EXPORTS / "kit.csv"))
    assert code == 0, err
    assert suppressed(root) == {"cancelled@example.org": "unsubscribed: imported from kit.csv",
                                "pending@example.org": "unsubscribed: imported from kit.csv",
                                "bounced@example.org": "bounced: imported from kit.csv"}
    assert "Added 3 new addresses" in out
    code, _, _ = run("unsubscribe", "--from", str(EXPORTS / "mailchimp_unsubscribed.csv"))
    assert code == 0
    assert {"olga.petrova@example.org", "noor@example.org"} <= set(suppressed(root))
    assert "ingrid.berg@example.org" not in suppressed(root)


def test_unsubscribe_from_a_plain_file_or_csv_imports_every_address(root: Path) -> None:
    (root / "gone.txt").write_text("# people who asked by mail\nann@example.org\n\nBob@Example.org\n")
    (root / "gone.csv").write_text("email,name\ncy@example.org,Cy\n")
    assert run("unsubscribe", "--from", "gone.txt")[0] == 0
    assert run("unsubscribe", "--from", "gone.csv", "--reason", "asked at the conference")[0] == 0
    assert suppressed(root) == {"ann@example.org": "unsubscribed: imported from gone.txt",
                                "Bob@Example.org": "unsubscribed: imported from gone.txt",
                                "cy@example.org": "unsubscribed: asked at the conference"}


def test_unsubscribe_from_a_file_with_a_bad_address_imports_nothing(root: Path) -> None:
    (root / "gone.txt").write_text("ann@example.org\nnot an address@\n")
    code, _, err = run("unsubscribe", "--from", "gone.txt")
    assert code == 1 and "gone.txt:2:" in err and "nothing was imported" in err
    assert not (root / ".gigo" / "journal.sqlite3").exists() or suppressed(root) == {}


def test_unsubscribe_export_writes_the_list_with_reason_and_time(root: Path) -> None:
    assert run("unsubscribe", "ann@example.org", "--reason", "asked")[0] == 0
    assert run("unsubscribe", "--export", "out.csv")[0] == 0
    rows = list(csv.DictReader((root / "out.csv").open(encoding="utf-8")))
    assert [(r["email"], r["reason"]) for r in rows] == [("ann@example.org", "asked")]
    assert rows[0]["at"].startswith("20")
    code, out, _ = run("unsubscribe", "--export", "-")
    assert code == 0 and out.splitlines() == ["email,reason,at", f"ann@example.org,asked,{rows[0]['at']}"]


def test_subscribers_check_says_why_rows_are_suppressed(root: Path) -> None:
    with Journal.for_root(root) as journal:
        journal.suppress(["ann@example.com"], "bounced: 550 5.1.1 user unknown")
        journal.suppress(["fay@example.org"], "unsubscribe link")
    code, out, err = run("subscribers", "check", str(DATA / "subscribers_sample.csv"))
    assert code == 0, err
    line = next(line for line in out.splitlines() if line.strip().startswith("suppressed "))
    assert count_of(out, "suppressed") == 2 and "1 bounced" in line and "1 unsubscribe link" in line


def test_subscribers_check_names_the_format_and_refuses_unclear_values(root: Path) -> None:
    code, out, _ = run("subscribers", "check", str(EXPORTS / "ghost.csv"))
    assert code == 0 and "Ghost (members export)" in out and count_of(out, "unsubscribed") == 2
    (root / "odd.csv").write_text("email,status\nann@example.org,pending\nbob@example.org,active\n")
    code, out, err = run("subscribers", "check", "odd.csv")
    assert code == 1 and count_of(out, "unclear") == 1 and count_of(out, "valid") == 1
    assert "'status' ('pending')" in err and "a send would refuse to start" in err


def test_unsubscribe_from_a_big_file_shows_a_progress_bar_at_a_terminal(
        root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (root / "gone.csv").write_text("email\n" + "".join(f"gone{i}@example.org\n" for i in range(30_000)))
    monkeypatch.setattr(console, "_force_terminal", True)  # as at a terminal: gigo-mail's console
    monkeypatch.setattr(console, "is_interactive", True)
    code, out, err = run("unsubscribe", "--from", "gone.csv")
    assert code == 0, err
    assert "importing" in out and "/648.9 kB" in out and "Added 30,000 new addresses" in out
    monkeypatch.setattr(console, "_force_terminal", False)
    monkeypatch.setattr(console, "is_interactive", False)
    (root / "more.csv").write_text("email\nmore@example.org\n")
    code, out, _ = run("unsubscribe", "--from", "more.csv")
    assert code == 0 and "importing" not in out  # no terminal: no bar, only the result
