"""`gigo-mail init`, `new` and `issues`, through the real CLI."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import frontmatter
import pytest
from typer.testing import CliRunner

from conftest import SmtpServer
from gigo_mail.cli.app import app
from gigo_mail.compose.compile import compile_issue
from gigo_mail.compose.issue import find_issue, list_issues
from gigo_mail.compose.scaffold import create_issue, issue_text
from gigo_mail.config import load_config
from gigo_mail.journal.deliveries import Journal
from gigo_mail.lists.reader import Subscriber, read_subscribers

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def write_issue(root: Path, relative: str, number: int, subject: str, when: str = "2024-02-20") -> None:
    path = root / "issues" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if not (root / "gigo-mail.toml").exists():  # issues live in a newsletter
        (root / "gigo-mail.toml").write_text('[newsletter]\nname = "N"\n', encoding="utf-8")
    path.write_text(f"---\nnumber: {number}\nsubject: \"{subject}\"\ndate: {when}\n---\n\nBody.\n",
                    encoding="utf-8")


# -- init ------------------------------------------------------------------------------------

def test_init_scaffold_builds_and_previews_as_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["init", "weekly-notes"])
    assert result.exit_code == 0, result.output
    assert "Next steps" in result.output and "gigo-mail build 001" in result.output
    root = tmp_path / "weekly-notes"
    for name in ("gigo-mail.toml", "issues/001.md", "subscribers.csv", ".gitignore",
                 "templates/default/email.mjml.j2", "templates/default/email.txt.j2"):
        assert (root / name).is_file(), name
    ignored = (root / ".gitignore").read_text().split()
    assert "build/" in ignored and ".gigo/" in ignored

    config = load_config(root)
    assert config.newsletter.name == "Weekly Notes"
    assert config.smtp.url == "smtp://127.0.0.1:1025"
    assert config.newsletter.template == "default"

    # the copied layout is the package's built-in one, byte for byte
    builtin = Path(__import__("gigo_mail").__file__).parent / "templates" / "default"
    for source in builtin.iterdir():
        if source.is_file():
            assert (root / "templates" / "default" / source.name).read_bytes() == source.read_bytes()

    monkeypatch.chdir(root)
    built = runner.invoke(app, ["build", "001"])
    assert built.exit_code == 0, built.output
    html = (root / "build" / "001" / "email.html").read_text(encoding="utf-8")
    assert "Welcome to the first issue of" in html and "Weekly Notes" in html
    text = (root / "build" / "001" / "email.txt").read_text(encoding="utf-8")
    assert "Hello Ada Lovelace!" in text

    compiled = compile_issue(config, find_issue(root, "001"))
    assert compiled.report.errors == []
    assert compiled.report.warnings == []

    previewed = runner.invoke(app, ["preview", "001", "--no-open"])
    assert previewed.exit_code == 0, previewed.output
    assert (root / "build" / "001" / "preview.html").is_file()

    # the sample list is usable and covers every column the issue uses
    rows = list(read_subscribers(root / "subscribers.csv"))
    assert all(isinstance(row, Subscriber) for row in rows) and len(rows) == 3
    subscribers = [row for row in rows if isinstance(row, Subscriber)]
    assert all(s.email.endswith("@example.org") for s in subscribers)
    assert any(not s.name.isascii() for s in subscribers)
    assert compiled.required_columns <= set(subscribers[0].fields)
    assert len(subscribers[0].fields) >= 3


def test_init_into_an_empty_folder_and_with_a_name(tmp_path: Path) -> None:
    target = tmp_path / "empty"
    target.mkdir()
    result = runner.invoke(app, ["init", str(target), "--name", 'Ünï "Quoted" Letter'])
    assert result.exit_code == 0, result.output
    assert load_config(target).newsletter.name == 'Ünï "Quoted" Letter'
    assert find_issue(target, "1").subject == 'Welcome to Ünï "Quoted" Letter'


def test_init_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    target = tmp_path / "busy"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["init", str(target)])
    assert result.exit_code == 1
    assert "is not empty" in result.stderr and "notes.txt" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]


def test_init_refuses_a_file(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    result = runner.invoke(app, ["init", str(target)])
    assert result.exit_code == 1 and "not a folder" in result.stderr


# -- new -------------------------------------------------------------------------------------

def test_new_after_011_comes_012(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(REPO / "gigo-mail.toml", tmp_path / "gigo-mail.toml")
    write_issue(tmp_path, "009.md", 9, "Nine")
    write_issue(tmp_path, "011.md", 11, "Eleven")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")  # found from below the root too
    result = runner.invoke(app, ["new"])
    assert result.exit_code == 0, result.output
    assert "issues/012.md" in result.output
    issue = find_issue(tmp_path, "012")
    assert issue.path == tmp_path / "issues" / "012.md"
    assert issue.number == 12
    assert issue.date == date.today().isoformat()
    assert issue.title and issue.subject and issue.preheader
    assert issue.draft and "draft: true" in issue.path.read_text()
    assert "It is a draft (draft: true)" in result.output and "delete that line" in result.output


def test_a_new_issue_stays_off_the_site_until_undrafted(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """`new` then `publish` (the README's publish-on-push): the half-written issue is left out, and
    publish says so and why; without the draft line it is published."""
    root = tmp_path / "nl"
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["init", "nl"]).exit_code == 0
    monkeypatch.chdir(root)
    assert runner.invoke(app, ["new", "--title", "Half written"]).exit_code == 0
    result = runner.invoke(app, ["publish"])
    assert result.exit_code == 0, result.output
    assert "left out 002: draft (--drafts publishes it)" in result.output
    assert (root / "site" / "issues" / "001").is_dir() and not (root / "site" / "issues" / "002").exists()
    path = root / "issues" / "002.md"
    path.write_text(path.read_text().replace("draft: true\n", ""))
    result = runner.invoke(app, ["publish"])
    assert result.exit_code == 0 and "left out" not in result.output
    assert (root / "site" / "issues" / "002" / "index.html").is_file()


def test_new_in_an_empty_issues_folder_is_001(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "issues").mkdir()
    (tmp_path / "gigo-mail.toml").write_text('[newsletter]\nname = "N"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["new", "--title", "Hello: the \"first\" one"])
    assert result.exit_code == 0, result.output
    issue = find_issue(tmp_path, "1")
    assert issue.path.name == "001.md" and issue.number == 1
    assert issue.title == issue.subject == 'Hello: the "first" one'
    assert '## Hello: the "first" one' in issue.body


def test_new_counts_folder_issues(tmp_path: Path) -> None:
    write_issue(tmp_path, "012/index.md", 12, "Folder issue")
    write_issue(tmp_path, "003.md", 3, "Three")
    created = create_issue(tmp_path, today=date(2026, 1, 2))
    assert created.path == tmp_path / "issues" / "013.md" and created.number == 13
    assert [i.key for i in list_issues(tmp_path)] == ["003", "012", "013"]


def test_new_refuses_to_overwrite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_issue(tmp_path, "001.md", 5, "Says five")  # the highest number is 5, so next is 006...
    write_issue(tmp_path, "006.md", 1, "Says one")   # ...but 006.md exists, claiming number 1
    before = (tmp_path / "issues" / "006.md").read_text()
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["new"])
    assert result.exit_code == 1
    assert "006.md" in result.stderr and "already exists" in result.stderr
    assert (tmp_path / "issues" / "006.md").read_text() == before


def test_issue_text_front_matter_is_valid_yaml() -> None:
    text = issue_text(7, date(2026, 3, 4), "Colons: and 'quotes' and #hash")
    meta = frontmatter.loads(text).metadata
    assert meta["number"] == 7 and meta["title"] == "Colons: and 'quotes' and #hash"
    assert str(meta["date"]) == "2026-03-04"


# -- issues ----------------------------------------------------------------------------------

def test_issues_lists_numbers_dates_subjects_and_journal_counts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_issue(tmp_path, "010.md", 10, "Ten", "2024-02-13")
    write_issue(tmp_path, "011.md", 11, "Eleven", "2024-02-20")
    with Journal.for_root(tmp_path) as journal:
        run = journal.begin_run("011", 3)
        for name in ("ann", "bob"):
            journal.mark_sending("011", f"{name}@example.org", f"{name}@example.org", f"<{name}@x>")
            journal.mark_sent("011", f"{name}@example.org", f"{name}@example.org", f"<{name}@x>", 250, "OK")
        journal.mark_failed("011", "eve@example.org", "eve@example.org", 550, "no such user", True)
        journal.end_run(run, "complete")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["issues"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines() if line.strip()[:3].isdigit()}
    assert set(lines) == {"010", "011"}
    assert "2024-02-13" in lines["010"] and "Ten" in lines["010"] and "not sent" in lines["010"]
    cells = lines["011"].split()
    assert cells[:3] == ["011", "2024-02-20", "Eleven"]
    assert cells[3:5] == ["2", "1"]  # sent, failed
    assert "(complete)" in lines["011"]


def test_issues_does_not_create_a_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_issue(tmp_path, "001.md", 1, "One")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["issues"])
    assert result.exit_code == 0 and "not sent" in result.output
    assert not (tmp_path / ".gigo").exists()


def test_issues_with_none_says_how_to_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "gigo-mail.toml").write_text('[newsletter]\nname = "N"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["issues"])
    assert result.exit_code == 0 and "gigo-mail new" in result.output


def test_a_new_newsletters_preview_and_test_send_show_the_same_reader(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      smtp_server: SmtpServer) -> None:
    """Both take the first row a send would mail (Ada, London), not "[city]" in one and "London" in
    the other."""
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["init", "nl"]).exit_code == 0
    monkeypatch.chdir(tmp_path / "nl")
    preview = runner.invoke(app, ["preview", "001", "--text"])
    assert preview.exit_code == 0, preview.output
    assert "Ada Lovelace lives in London" in preview.stdout and "[city]" not in preview.stdout
    sent = runner.invoke(app, ["send", "001", "--to", "me@example.org", "--smtp", smtp_server.url],
                         env={"GIGO_UNSUBSCRIBE_SECRET": "s"})
    assert sent.exit_code == 0, sent.output
    body = smtp_server.messages[0].parse().get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Ada Lovelace lives in London" in " ".join(body.split())
