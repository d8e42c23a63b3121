"""gigo-mail.toml: which way a language is written, and the one schema the file is checked against
when it is read (every wrong value named with its line and column, by every command alike)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gigo_mail.cli.app import app
from gigo_mail.config import CONFIG_NAME, SECTIONS, Newsletter, known_keys, load_config, text_direction
from gigo_mail.config_schema import SCHEMA
from gigo_mail.errors import ConfigError


@pytest.mark.parametrize(("lang", "direction"), [
    ("en", "ltr"), ("pt-BR", "ltr"), ("zh-Hant", "ltr"), ("ja", "ltr"), ("sr-Cyrl", "ltr"),
    ("ar", "rtl"), ("AR-eg", "rtl"), ("he", "rtl"), ("he-IL", "rtl"), ("iw", "rtl"), ("fa-IR", "rtl"),
    ("ur", "rtl"), ("yi", "rtl"), ("ckb", "rtl"),
    ("az-Arab", "rtl"), ("pa-Arab-PK", "rtl"),  # a right-to-left script for a language that is not always
    ("ku-Latn", "ltr"), ("ar-Latn", "ltr"),  # a left-to-right script for a language that often is not
])
def test_text_direction_follows_the_language_and_its_script(lang: str, direction: str) -> None:
    assert text_direction(lang) == direction
    assert Newsletter(lang=lang).dir == direction


def test_smtp_defaults_are_written_once() -> None:
    """The engine's options and the endpoint take their defaults from config.Smtp and [suppression]."""
    from gigo_mail.config import Smtp, SuppressionSettings
    from gigo_mail.send.options import SendOptions
    from gigo_mail.transport.url import SmtpEndpoint, parse_smtp_url

    smtp, options = Smtp(), SendOptions()
    endpoint = SmtpEndpoint(parse_smtp_url("smtp://127.0.0.1:1025"))
    for name in ("concurrency", "rate", "max_per_connection", "attempts", "max_errors", "refusal_breaker"):
        assert getattr(options, name) == getattr(smtp, name), name
    assert (endpoint.timeout, endpoint.data_timeout, endpoint.in_flight) == (smtp.timeout, smtp.data_timeout,
                                                                             smtp.in_flight)
    assert options.soft_bounce_limit == SuppressionSettings().soft_bounces


# -- the schema: gigo-mail.toml checked whole when it is read -------------------------------------


runner = CliRunner()
GOOD = '[newsletter]\nname = "N"\nfrom = "N <n@example.org>"\n\n[smtp]\nurl = "smtp://127.0.0.1:1025"\n'


def _newsletter(tmp_path: Path, toml: str | bytes) -> Path:
    root = tmp_path / "nl"
    (root / "issues").mkdir(parents=True)
    issue = "---\nsubject: Hi\ndate: 2024-02-20\n---\nHello.\n"
    (root / "issues" / "001.md").write_text(issue, encoding="utf-8")
    (root / "list.csv").write_text("email\nann@example.org\n", encoding="utf-8")
    path = root / CONFIG_NAME
    path.write_bytes(toml.encode() if isinstance(toml, str) else toml)
    return root


def _errors(root: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> list[str]:
    monkeypatch.chdir(root)
    result = runner.invoke(app, list(args))
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[0].startswith("error: ")
    return [line.removeprefix("error: ") for line in lines]


def test_the_schema_has_every_key_the_config_reads() -> None:
    """One schema: every dataclass field of every section is in it, and nothing else."""
    assert set(SCHEMA) - {""} == set(SECTIONS)
    assert {section: set(keys) for section, keys in known_keys().items()} == \
        {section: set(rules) for section, rules in SCHEMA.items()}


@pytest.mark.parametrize(("replace", "line", "expected"), [
    (("[smtp]\n", '[smtp]\nconcurrency = "eight"\n'), "6:15",
     "[smtp] concurrency is 'eight', not a whole number"),
    (('url = "smtp://127.0.0.1:1025"', "url = 5"), "6:7", "[smtp] url is a number, not a string"),
    (("[smtp]\n", "[smtp]\nrate = -3\n"), "6:8", "[smtp] rate is -3, below 0"),
    (("[smtp]\n", "[smtp]\nmax_per_connection = 0\n"), "6:22", "[smtp] max_per_connection is 0, below 1"),
    (("[smtp]\n", "[smtp]\ntimeout = 0\n"), "6:11", "[smtp] timeout is 0"),
    (("[smtp]\n", "[smtp]\nconcurrency = 1000\n"), "6:15", "[smtp] concurrency is 1000, above 100"),
    (("[smtp]\n", "[smtp]\nurl2 = 1\n"), "6:8", "unknown setting 'url2' in [smtp] — did you mean 'url'?"),
    (('[newsletter]\nname = "N"\nfrom = "N <n@example.org>"\n', 'newsletter = "x"\n'), "1:14",
     "newsletter is a string, not a table"),
    (('name = "N"', 'name = "N"\nimages = "inline"'), "3:10", "[newsletter] images is 'inline'"),
    (('name = "N"', 'name = "N"\nlang = "Portuguese"'), "3:8",
     "[newsletter] lang 'Portuguese' is not a language tag"),
    (("[smtp]\n", "[smpt]\nx = 1\n[smtp]\n"), "5:1", "unknown section 'smpt' — did you mean 'smtp'?"),
    (("[smtp]\n", "[site]\nper_page = 0\n[smtp]\n"), "6:12", "[site] per_page is 0, below 1"),
    (("[smtp]\n", "[bounces]\nverp = \"yes\"\n[smtp]\n"), "6:8",
     "[bounces] verp is 'yes', not true or false"),
    (("[smtp]\n", "[bounces]\nsource = \"jsno:notes.json\"\n[smtp]\n"), "6:10",
     "[bounces] source 'jsno:notes.json' is not imaps://user@host/FOLDER, maildir:PATH, mbox:PATH or "
     "json:PATH"),
    (("[smtp]\n", "[newsletter.social]\nX = 3\n[smtp]\n"), "6:5",
     "[newsletter.social] X is a number, not a string"),
])
@pytest.mark.parametrize("command", [["build", "1"], ["send", "1", "--list", "list.csv", "--yes"],
                                     ["send", "1", "--to", "me@example.org"]])
def test_a_wrong_value_is_named_with_its_line_and_column_by_every_command(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, replace: tuple[str, str], line: str, expected: str,
        command: list[str]) -> None:
    """build and send read the same schema: what one refuses, the other refuses the same way."""
    root = _newsletter(tmp_path, GOOD.replace(*replace, 1))
    errors = _errors(root, monkeypatch, *command)
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"gigo-mail.toml:{line}: {expected}")
    assert " — " in errors[0]  # and what to do


def test_every_wrong_value_is_reported_at_once_in_file_order(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    toml = GOOD.replace("[smtp]\n", '[smtp]\nconcurrency = "eight"\nrate = -3\nmax_per_connection = 0\n') \
        .replace('name = "N"', "name = 5")
    errors = _errors(_newsletter(tmp_path, toml), monkeypatch, "build", "1")
    positions = [re.match(r"gigo-mail.toml:(\d+):(\d+): ", e) for e in errors]
    assert all(positions), errors
    assert [m.group(1) for m in positions if m] == ["2", "6", "7", "8"]
    lines = toml.splitlines()
    for match in positions:  # the column points at the value in the file
        assert match is not None
        row, col = int(match.group(1)), int(match.group(2))
        assert lines[row - 1][col - 1:] in ("5", '"eight"', "-3", "0")


def test_a_file_that_is_not_utf8_is_named_with_where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    latin1 = GOOD.encode().replace(b'"N"', b'"N\xe9"', 1)
    errors = _errors(_newsletter(tmp_path, latin1), monkeypatch, "build", "1")
    assert errors == ["gigo-mail.toml:2:10: not UTF-8 text (byte 0xe9) — save the file as UTF-8"]


def test_a_toml_syntax_error_is_named_with_where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    errors = _errors(_newsletter(tmp_path, GOOD.replace("[smtp]", "[smtp")), monkeypatch, "build", "1")
    assert len(errors) == 1 and errors[0].startswith("gigo-mail.toml:5:6: not valid TOML (")


def test_a_utf8_bom_is_fine(tmp_path: Path) -> None:
    root = _newsletter(tmp_path, b"\xef\xbb\xbf" + GOOD.encode())
    assert load_config(root).newsletter.name == "N"


def test_a_missing_newsletter_table_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"gigo-mail.toml:1:1: no \[newsletter\] table — add "):
        load_config(_newsletter(tmp_path, "[smtp]\nrate = 1\n"))


@pytest.mark.parametrize("command", [
    ["build", "1"], ["send", "1", "--to", "a@example.org"], ["issues"], ["new"], ["publish"], ["status", "1"],
    ["preview", "1", "--no-open"], ["check", "1"], ["bounces"], ["unsubscribe", "--list"],
    ["dkim", "keygen"]])
def test_outside_a_newsletter_every_command_says_run_init(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          command: list[str]) -> None:
    errors = _errors(tmp_path, monkeypatch, *command)
    assert errors == ["no gigo-mail.toml here or above; run gigo-mail init DIR to make a newsletter "
                      "(or cd into one)"]
    assert not (tmp_path / ".gigo").exists()  # and nothing was made there


@pytest.mark.parametrize(("toml", "expected"), [
    (GOOD + "\n[smtp]\nrate = 1\n", "gigo-mail.toml:8:6: not valid TOML (Cannot declare ('smtp',) twice) "
     "— that section appears twice; merge the two into one"),
    (GOOD.replace('name = "N"', 'name = "N"\nname = "M"'), "gigo-mail.toml:3:11: not valid TOML (Cannot "
     "overwrite a value) — that key is set twice (or is also a section); keep one"),
])
def test_a_doubled_section_or_key_says_what_to_merge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     toml: str, expected: str) -> None:
    assert _errors(_newsletter(tmp_path, toml), monkeypatch, "build", "1") == [expected]
