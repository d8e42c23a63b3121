"""The list cases of issue 19 besides languages and platforms: opt_in_values and an empty cell, a
refusal that names the status column (not a column of dates), a missing optional column, --tag
and --where agreeing, an empty plan, and a big import that streams."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from gigo_mail.cli.app import app
from gigo_mail.config import ListSettings
from gigo_mail.errors import SubscriberListError
from gigo_mail.journal.deliveries import Journal
from gigo_mail.lists.importing import iter_suppressions
from gigo_mail.lists.reader import SkippedRow, Subscriber, read_subscribers
from support import export_newsletter

EXPORTS = Path(__file__).resolve().parents[1] / "data" / "exports"
runner = CliRunner()


@pytest.fixture
def newsletter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return export_newsletter(tmp_path, monkeypatch)


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


CONSENT_LIST = "email,name,Zustimmung\nann@example.org,Ann,ja\nbob@example.org,Bob,\ncy@example.org,Cy,nein\n"


def test_opt_in_values_make_an_empty_cell_stop_the_send(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text(CONSENT_LIST, encoding="utf-8")
    settings = ListSettings(opt_out_column="Zustimmung", opt_in_values=("ja",), opt_out_values=("nein",))
    rows = list(read_subscribers(path, settings=settings))
    assert [r.email for r in rows if isinstance(r, Subscriber)] == ["ann@example.org"]
    assert [(r.email, r.kind) for r in rows if isinstance(r, SkippedRow)] == [
        ("bob@example.org", "unclear"), ("cy@example.org", "unsubscribed")]


def test_an_empty_cell_named_among_the_opt_out_values_is_skipped_not_mailed(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text(CONSENT_LIST, encoding="utf-8")
    settings = ListSettings(opt_out_column="Zustimmung", opt_in_values=("ja",), opt_out_values=("nein", ""))
    rows = list(read_subscribers(path, settings=settings))
    assert [r.email for r in rows if isinstance(r, Subscriber)] == ["ann@example.org"]
    assert [(r.email, r.kind) for r in rows if isinstance(r, SkippedRow)] == [
        ("bob@example.org", "unsubscribed"), ("cy@example.org", "unsubscribed")]
    only_out = ListSettings(opt_out_column="Zustimmung", opt_out_values=("nein",))  # no opt-in values:
    mailed = [r.email for r in read_subscribers(path, settings=only_out) if isinstance(r, Subscriber)]
    assert mailed == ["ann@example.org", "bob@example.org"]  # everything but the opt-out values is mailed


def test_a_refusal_names_the_status_column_not_a_column_of_dates(newsletter: Path) -> None:
    code, _, err = invoke("send", "060", "--list", str(EXPORTS / "unknown_status_dates.csv"), "--dry-run",
                          "--out", "outbox")
    assert code == 1
    assert "'status' ('paused')" in err and "subscribed_on" not in err
    rows = list(read_subscribers(EXPORTS / "unknown_status_dates.csv"))  # the status decides the rest
    assert [r.email for r in rows if isinstance(r, Subscriber)] == ["tom@example.net", "wen@example.net"]


def test_a_column_of_subscription_dates_with_an_odd_value_still_stops(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text("email,Date Subscribed\nann@example.org,2024-03-02\nbob@example.org,never\n"
                    "cy@example.org,\n", encoding="utf-8")
    rows = list(read_subscribers(path))
    assert [r.email for r in rows if isinstance(r, Subscriber)] == ["ann@example.org"]
    assert [(r.email, r.kind, r.value) for r in rows if isinstance(r, SkippedRow)] == [
        ("bob@example.org", "unclear", "never"), ("cy@example.org", "unclear", "")]


def test_a_mailchimp_export_without_tags_works_everywhere(newsletter: Path) -> None:
    path = str(EXPORTS / "mailchimp_no_tags.csv")
    assert invoke("subscribers", "check", path)[0] == 0
    assert invoke("send", "060", "--list", path, "--dry-run", "--no-write")[0] == 0
    code, out, err = invoke("unsubscribe", "--from", path)
    assert code == 0 and "Added 2 new addresses" in out, err
    code, _, err = invoke("send", "060", "--list", path, "--dry-run", "--no-write", "--tag", "vip")
    assert code == 1 and "has no tag column" in err and "Traceback" not in err


def test_tag_and_where_on_a_column_the_list_lacks_are_both_errors_naming_its_columns(
        newsletter: Path) -> None:
    path = newsletter / "plain.csv"
    path.write_text("email,name,city\nann@example.org,Ann,Oslo\n", encoding="utf-8")
    for segment in (["--tag", "vip"], ["--where", "plan == 'paid'"]):
        code, out, err = invoke("send", "060", "--list", str(path), "--dry-run", "--no-write", *segment)
        assert code == 1, out
        assert "(columns: " in err and "city" in err
    code, _, _ = invoke("send", "060", "--list", str(path), "--dry-run", "--no-write", "--where",
                        "city == 'Oslo'")
    assert code == 0


@pytest.mark.parametrize(("text", "why"), [
    ("email,name\n", "has no rows under its header"),
    ("email,name\nnot-an-address,Ann\n@example.org,Bob\n,Cy\n", "of the 3 rows"),
    ("email,status\nann@example.org,unsubscribed\nbob@,active\n", "1 invalid, 1 unsubscribed")])
def test_an_empty_plan_says_nobody_to_send_to_and_why_with_exit_1_everywhere(
        newsletter: Path, text: str, why: str) -> None:
    path = newsletter / "empty.csv"
    path.write_text(text, encoding="utf-8")
    for args in (["send", "060", "--list", str(path), "--yes", "--smtp", "smtp://127.0.0.1:9"],
                 ["send", "060", "--list", str(path), "--dry-run", "--out", "outbox"],
                 ["subscribers", "check", str(path)]):
        code, out, err = invoke(*args)
        assert code == 1, out + err
        assert "nobody to send to" in err and why in err
        assert "every listed subscriber has issue" not in out
    assert not (newsletter / "outbox").exists()


def test_a_segment_that_matches_nobody_is_an_empty_plan_too(newsletter: Path) -> None:
    path = newsletter / "plain.csv"
    path.write_text("email,city\nann@example.org,Oslo\nbob@example.org,Rome\n", encoding="utf-8")
    code, _, err = invoke("send", "060", "--list", str(path), "--dry-run", "--no-write",
                          "--where", "city == 'Pune'")
    assert code == 1 and "nobody to send to: of the 2 rows" in err and "2 not in segment" in err


def test_an_import_streams_with_progress_and_a_bad_last_row_keeps_nothing(newsletter: Path) -> None:
    path = newsletter / "optouts.csv"
    rows = [f"reader{i}@example.org,Reader {i}" for i in range(20_000)]
    path.write_text("email,name\n" + "\n".join(rows) + "\n", encoding="utf-8")
    seen: list[int] = []
    stream = iter_suppressions(path, progress=seen.append)
    first = next(stream)
    assert first == ("reader0@example.org", "unsubscribed") and not seen  # lazily: one row read so far
    assert sum(1 for _ in stream) == 19_999
    assert seen == sorted(seen) and len(seen) >= 2 and 0 < seen[-1] <= path.stat().st_size
    path.write_text("email,name\n" + "\n".join(rows) + "\nbroken@,Nobody\n", encoding="utf-8")
    bad_row = pytest.raises(SubscriberListError, match="optouts.csv:20002")
    with Journal.for_root(newsletter) as journal, bad_row:
        journal.suppress_each(iter_suppressions(path))
    with Journal.for_root(newsletter) as journal:
        assert journal.suppressions() == []
    code, _, err = invoke("unsubscribe", "--from", str(path))
    assert code == 1 and "optouts.csv:20002" in err and "nothing was imported" in err
    with Journal.for_root(newsletter) as journal:
        assert journal.suppressions() == []


def test_an_import_of_a_bare_file_reports_progress_too(tmp_path: Path) -> None:
    path = tmp_path / "gone.txt"
    path.write_text("".join(f"gone{i}@example.org\n" for i in range(10_000)), encoding="utf-8")
    seen: list[int] = []
    assert sum(1 for _ in iter_suppressions(path, progress=seen.append)) == 10_000
    assert seen and seen[-1] <= path.stat().st_size
