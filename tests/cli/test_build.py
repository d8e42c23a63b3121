"""`gigo-mail build` through the real CLI: files, report, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from gigo_mail.cli.app import app
from support import make_newsletter, write_issue

runner = CliRunner()


@pytest.fixture()
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    make_newsletter(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def one_line_error(result, needle: str) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ") and needle in lines[0], lines[0]


def test_build_writes_files_and_reports(root: Path) -> None:
    result = runner.invoke(app, ["build", "11"])
    assert result.exit_code == 0, result.output
    html = (root / "build" / "011" / "email.html").read_text(encoding="utf-8")
    text = (root / "build" / "011" / "email.txt").read_text(encoding="utf-8")
    assert "Text-to-video takes another massive leap forward" in html and "<html" in html
    assert "Sora" in text and "<p" not in text
    assert "of Gmail's 102 KB clipping limit" in result.output
    assert "compile" in result.output and " ms" in result.output


def test_build_warns_about_http_links_and_missing_alt(root: Path) -> None:
    write_issue(root, "040.md", "subject: s", "![](https://example.org/a.png) [x](http://example.org/)\n")
    result = runner.invoke(app, ["build", "40"])
    assert result.exit_code == 0, result.output
    assert "warning: image without alt text" in result.output
    assert "warning: insecure http: link: http://example.org/" in result.output
    assert "no 'preheader'" in result.output


def test_build_over_gmail_limit_fails(root: Path) -> None:
    write_issue(root, "041.md", "subject: s\npreheader: p", "word " * 30000 + "\n")
    result = runner.invoke(app, ["build", "41"])
    assert result.exit_code == 1
    assert "Gmail clips messages over 102 KB" in result.output


def test_unknown_issue(root: Path) -> None:
    one_line_error(runner.invoke(app, ["build", "99"]), "no issue '99'")
    assert "issues that exist: 011" in runner.invoke(app, ["build", "99"]).output


def test_front_matter_without_subject(root: Path) -> None:
    write_issue(root, "042.md", "title: t", "x\n")
    one_line_error(runner.invoke(app, ["build", "42"]), "issues/042.md: front matter has no 'subject'")


def test_broken_front_matter_yaml(root: Path) -> None:
    write_issue(root, "043.md", "subject: [unclosed", "x\n")
    one_line_error(runner.invoke(app, ["build", "43"]), "issues/043.md:")


def test_jinja_error(root: Path) -> None:
    write_issue(root, "044.md", "subject: s", "{{ oops(\n")
    one_line_error(runner.invoke(app, ["build", "44"]), "issues/044.md:4:")


def test_invalid_mjml(root: Path) -> None:
    (root / "templates" / "gigo" / "email.mjml.j2").write_text("<mjml><mj-body>")
    one_line_error(runner.invoke(app, ["build", "11"]), "invalid MJML")


def test_missing_config_value(root: Path) -> None:
    config = root / "gigo-mail.toml"
    config.write_text(config.read_text().replace('name = "GIGO Tech Trends"\n', ""))
    one_line_error(runner.invoke(app, ["build", "11"]), "[newsletter] has no 'name'")


def test_unknown_config_key(root: Path) -> None:
    config = root / "gigo-mail.toml"
    config.write_text(config.read_text().replace("[smtp]\n", "[smtp]\nspeed = 3\n"))
    one_line_error(runner.invoke(app, ["build", "11"]), "unknown setting 'speed'")


def test_usage_error_exit_code(root: Path) -> None:
    assert runner.invoke(app, ["build"]).exit_code == 2


def test_preview_warnings_keep_their_brackets(root: Path) -> None:
    config = root / "gigo-mail.toml"
    text = config.read_text()
    config.write_text(text.replace(next(x for x in text.splitlines() if x.startswith("postal_address")), ""))
    result = runner.invoke(app, ["preview", "11", "--no-open"])
    assert result.exit_code == 0, result.output
    assert "warning: [newsletter] has no 'postal_address'" in " ".join(result.output.split())
    result = runner.invoke(app, ["build", "11"])
    assert "warning: [newsletter] has no 'postal_address'" in " ".join(result.output.split())


def _use_list(root: Path, rows: str) -> None:
    (root / "subscribers.csv").write_text(rows, encoding="utf-8")
    config = root / "gigo-mail.toml"
    config.write_text(config.read_text(encoding="utf-8") + '\n[list]\npath = "subscribers.csv"\n',
                      encoding="utf-8")


def _damage_the_journal_with_a_list(root: Path) -> None:
    _use_list(root, "email,name,city\nann@example.org,Ann,Lisbon\n")
    (root / ".gigo").mkdir(exist_ok=True)
    (root / ".gigo" / "journal.sqlite3").write_bytes(b"this is not a database" * 100)


@pytest.mark.parametrize("command", [["build", "11"], ["check", "11", "--offline"], ["publish"]])
def test_compiling_reads_neither_list_nor_journal(root: Path, command: list[str]) -> None:
    """A damaged journal with [list] path set stops only what needs the journal: compiling does not."""
    _damage_the_journal_with_a_list(root)
    result = runner.invoke(app, command)
    assert "journal" not in result.output and "Traceback" not in result.output, result.output
    if command[0] == "build":
        assert result.exit_code == 0, result.output
        assert (root / "build" / "011" / "email.html").is_file()


def test_the_preview_still_shows_the_lists_first_reader_and_survives_a_damaged_journal(root: Path) -> None:
    _use_list(root, "email,name\nzelda@example.org,Zelda Fitzgerald\n")
    write_issue(root, "012.md", 'subject: "Hi"', "Hello {{ subscriber.first_name | default('there') }}!")
    result = runner.invoke(app, ["preview", "12", "--text"])
    assert result.exit_code == 0 and "Hello Zelda!" in result.output, result.output
    assert "Hello Zelda!" not in runner.invoke(app, ["build", "12"]).output  # build uses made-up values
    (root / ".gigo").mkdir(exist_ok=True)
    (root / ".gigo" / "journal.sqlite3").write_bytes(b"this is not a database" * 100)
    result = runner.invoke(app, ["preview", "12", "--text"])
    assert result.exit_code == 0 and "Traceback" not in result.output
    assert "Hello Ada!" in result.output  # made-up sample values
