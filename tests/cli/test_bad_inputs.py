"""The first hour, wrong on purpose: well over a hundred bad inputs across every command, every key of
gigo-mail.toml and an issue's front matter. Each must end with a non-zero exit and no traceback, and
name what is wrong: the file, and its line (and column) where there is one."""

from __future__ import annotations

import itertools
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gigo_mail.cli.app import app
from gigo_mail.config_schema import SCHEMA, Rule

runner = CliRunner()
COMMANDS = (["build", "001"], ["send", "001", "--to", "me@example.org"], ["publish"], ["issues"],
            ["status", "001"], ["send", "001", "--list", "subscribers.csv", "--dry-run"], ["check", "001"],
            ["preview", "001", "--no-open"], ["new"], ["unsubscribe", "--list"], ["bounces", "--mbox", "x"],
            ["dkim", "keygen"])


@dataclass
class Case:
    id: str
    argv: list[str]
    named: str  # must be in the output: the file, with line (and column) where there is one
    code: int = 1
    files: dict[str, bytes | str] = field(default_factory=dict)  # written into the newsletter first
    edit: Callable[[Path], None] | None = None


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("fresh")
    cwd = Path.cwd()
    try:
        os.chdir(base)
        assert runner.invoke(app, ["init", "news"]).exit_code == 0
    finally:
        os.chdir(cwd)
    return base / "news"


# -- every key of gigo-mail.toml, with a value of the wrong kind and one out of range --------------

_WRONG_KIND = {"text": "5", "date": "5", "whole": '"eight"', "number": '"fast"', "flag": '"yes"',
               "texts": '"no"', "table": '"x"'}


def _wrong_values(rule: Rule) -> list[tuple[str, str]]:
    values = [("kind", _WRONG_KIND[rule.kind])]
    if rule.low is not None:
        values.append(("low", str(int(rule.low) - 1) if rule.kind == "whole" else str(rule.low - 0.5)))
    if rule.high is not None:
        values.append(("high", str(int(rule.high) + 1)))
    if rule.above is not None:
        values.append(("zero", str(rule.above)))
    if rule.choices:
        values.append(("choice", '"bogus"'))
    if rule.check is not None:
        values.append(("check", '"ftp://x y"' if "url" in str(rule.example) or "://" in str(rule.example)
                       else '"  "' if rule.example in ('"default"', '"site"') else '"not it"'))
    return values


def _put(text: str, section: str, key: str, value: str) -> tuple[str, int]:
    """gigo-mail.toml with ``key = value`` in ``[section]`` (replacing the key's line), and its line."""
    lines = [line for line in text.splitlines()
             if not (re.match(rf"{re.escape(key)}\s*=", line) and _section_at(text, line) == section)]
    if not section:
        return "\n".join([f"{key} = {value}", *lines]) + "\n", 1
    header = f"[{section}]"
    if header in lines:
        at = lines.index(header) + 1
        lines.insert(at, f"{key} = {value}")
        return "\n".join(lines) + "\n", at + 1
    lines += ["", header, f"{key} = {value}"]
    return "\n".join(lines) + "\n", len(lines)


def _section_at(text: str, wanted: str) -> str:
    section = ""
    for line in text.splitlines():
        if line.startswith("["):
            section = line.strip("[] ")
        if line == wanted:
            return section
    return section


def _config_cases() -> list[Case]:
    cases = []
    for section, rules in SCHEMA.items():
        for key, rule in rules.items():
            for why, value in _wrong_values(rule):
                index = len(cases)

                def edit(root: Path, section: str = section, key: str = key, value: str = value) -> None:
                    path = root / "gigo-mail.toml"
                    text = path.read_text()
                    if f"[{section}.{key}]" in text:  # a sub-table of that name would clash: one or the other
                        text = re.sub(rf"\[{section}\.{key}\]\n[^\[]*", "", text)
                    path.write_text(_put(text, section, key, value)[0])

                cases.append(Case(f"toml-{section or 'top'}-{key}-{why}", COMMANDS[index % len(COMMANDS)],
                                  "gigo-mail.toml:LINE:", edit=edit))
                cases[-1].named = f"{section}\0{key}\0{value}"  # resolved to the line in the test
    return cases


def _toml(text: str, named: str) -> Case:
    def edit(root: Path) -> None:
        (root / "gigo-mail.toml").write_bytes(text.encode() if isinstance(text, str) else text)
    return Case(f"toml-{named}", ["build", "001"], named, edit=edit)


def _append(extra: str) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        path = root / "gigo-mail.toml"
        path.write_text(path.read_text() + extra)
    return edit


CONFIG_FILES = [
    _toml('[newsletter\nname = "x"\n', "gigo-mail.toml:1:12:"),
    _toml('[newsletter]\nname = "x\n', "gigo-mail.toml:2:"),
    _toml('[newsletter]\nname = "a"\nname = "b"\n', "gigo-mail.toml:3:"),
    _toml('newsletter = "x"\n', "gigo-mail.toml:1:14:"),
    _toml("[smtp]\nrate = 1\n", "gigo-mail.toml:1:1: no [newsletter] table"),
    _toml('[newsletter]\nname = "x"\n[smpt]\nurl = "x"\n', "gigo-mail.toml:3:1: unknown section 'smpt'"),
    _toml('[newsletter]\nnmae = "x"\n', "gigo-mail.toml:2:8: unknown setting 'nmae'"),
    Case("toml-latin1", ["build", "001"], "gigo-mail.toml:1:", edit=lambda root: (root / "gigo-mail.toml")
         .write_bytes(b"# caf\xe9\n" + (root / "gigo-mail.toml").read_bytes())),
    Case("toml-binary", ["send", "001", "--to", "a@example.org"], "gigo-mail.toml:2:118: not UTF-8",
         edit=lambda root: (root / "gigo-mail.toml").write_bytes(bytes(range(256)))),
    Case("toml-dkim-domain-without-selector", ["build", "001"], "gigo-mail.toml:", edit=_append(
        '\n[dkim]\ndomain = "example.org"\n')),
    Case("toml-verp-without-address", ["build", "001"], "gigo-mail.toml:", edit=lambda root: (
        root / "gigo-mail.toml").write_text('[newsletter]\nname = "N"\nfrom = "N"\n'
                                            '[bounces]\nverp = true\n')),
]


# -- an issue's front matter --------------------------------------------------------------------

_ISSUE_IDS = itertools.count(1)


def _issue(front: str, named: str, argv: list[str] | None = None) -> Case:
    first = "title: t" if front.startswith("number:") else "number: 1"
    text = f"---\n{first}\nsubject: Hi\n{front}\n---\n\nHello.\n"
    return Case(f"issue-{next(_ISSUE_IDS)}-{front.split(':')[0]}", argv or ["build", "001"], named,
                files={"issues/001.md": text})


ISSUES = [
    _issue("date: 2024-02-30", "issues/001.md:4: front matter date '2024-02-30' is not a date"),
    _issue("date: 2024-02-30", "issues/001.md:4:", ["issues"]),
    _issue("date: 2024-02-30", "issues/001.md:4:", ["publish"]),
    _issue("date: 2024-02-30", "issues/001.md:4:", ["new"]),
    _issue("date: 2024-02-30", "issues/001.md:4:", ["send", "001", "--list", "subscribers.csv", "--dry-run"]),
    _issue("date: 31/12/2024", "issues/001.md:4:"),
    _issue("date: yesterday", "issues/001.md:4:"),
    _issue("date: 2024-13-01", "issues/001.md:4:"),
    _issue("number: -1", "issues/001.md:4:"),
    _issue("draft: perhaps", "issues/001.md:4:"),
    _issue("title: [a, b]", "issues/001.md:4:"),
    _issue("subject2: x\nsubject: {a: b}", "issues/001.md:3:"),
    _issue("hero: banner.png", "issues/001.md:4:"),
    _issue("hero: {src: b.png, width: -5}", "issues/001.md:4:"),
    _issue("images: inline", "issues/001.md:4:"),
    _issue("lang: Klingon please", "issues/001.md:4:"),
    _issue("from: nobody", "issues/001.md:4:"),
    _issue("site_url: 5", "issues/001.md:4:"),
    _issue("template: nothere", "nothere"),
    _issue("title: 'unclosed", "issues/001.md"),
    Case("issue-not-utf8", ["build", "001"], "issues/001.md",
         files={"issues/001.md": b"---\nsubject: caf\xe9\n---\n"}),
    Case("issue-no-subject", ["build", "001"], "issues/001.md: front matter has no 'subject'",
         files={"issues/001.md": "---\nnumber: 1\n---\nHello\n"}),
    Case("issue-bad-jinja", ["build", "001"], "001.md",
         files={"issues/001.md": "---\nsubject: s\n---\n{{ x\n"}),
    Case("issue-undefined-jinja", ["build", "001"], "001.md",
         files={"issues/001.md": "---\nsubject: s\n---\n{{ nothing.here }}\n"}),
]


# -- commands ------------------------------------------------------------------------------------

def _cmd(id: str, argv: list[str], named: str, code: int = 1, **files: bytes | str) -> Case:
    return Case(id, argv, named, code, files={name.replace("__", "."): v for name, v in files.items()})


CSV_NO_EMAIL = "name,city\nAnn,Oslo\n"
COMMAND_CASES = [
    _cmd("build-no-issue", ["build", "999"], "no issue '999'"),
    _cmd("build-dir", ["build", "issues"], "issues"),
    _cmd("check-no-issue", ["check", "999"], "no issue '999'"),
    _cmd("check-bad-dns", ["check", "001", "--dns", "not-an-ip"], "not-an-ip"),
    _cmd("preview-no-issue", ["preview", "999", "--no-open"], "no issue '999'"),
    _cmd("preview-port", ["preview", "001", "--serve", "--port", "70000"], "--port", code=2),
    _cmd("send-no-list", ["send", "001"], "--list", code=2),
    _cmd("send-missing-list", ["send", "001", "--list", "gone.csv", "--dry-run"], "gone.csv"),
    _cmd("send-list-no-email", ["send", "001", "--list", "x.csv", "--dry-run"], "x.csv", x__csv=CSV_NO_EMAIL),
    _cmd("send-list-binary", ["send", "001", "--list", "x.csv", "--dry-run"], "x.csv",
         x__csv=bytes(range(256))),
    _cmd("send-list-empty", ["send", "001", "--list", "x.csv", "--dry-run"], "x.csv", x__csv=""),
    _cmd("send-list-header-only", ["send", "001", "--list", "x.csv", "--yes"],
         "x.csv has no rows under its header", x__csv="email,name\n"),
    _cmd("send-out-not-a-folder", ["send", "001", "--list", "subscribers.csv", "--dry-run", "--out",
                                   "subscribers.csv/x"], "subscribers.csv/x"),
    _cmd("send-server-down", ["send", "001", "--to", "a@example.org"], "127.0.0.1:9 refused the connection"),
    _cmd("unsubscribe-export-no-folder", ["unsubscribe", "--export", "gone/x.csv"], "gone/x.csv"),
    _cmd("init-under-a-file", ["init", "subscribers.csv/x"], "subscribers.csv/x"),
    _cmd("send-list-folder", ["send", "001", "--list", "issues", "--dry-run"], "issues"),
    _cmd("send-where-syntax", ["send", "001", "--list", "subscribers.csv", "--where", "city ==", "--dry-run"],
         "--where"),
    _cmd("send-where-column", ["send", "001", "--list", "subscribers.csv", "--where", "planet == 'x'",
                               "--dry-run"], "planet"),
    _cmd("send-to-bad", ["send", "001", "--to", "not-an-address"], "not-an-address"),
    _cmd("send-concurrency", ["send", "001", "--to", "a@example.org", "--concurrency", "0"], "--concurrency",
         code=2),
    _cmd("send-rate", ["send", "001", "--to", "a@example.org", "--rate", "-1"], "--rate", code=2),
    _cmd("send-smtp-scheme", ["send", "001", "--to", "a@example.org", "--smtp", "ftp://x"], "ftp://x"),
    _cmd("send-smtp-port", ["send", "001", "--to", "a@example.org", "--smtp", "smtp://127.0.0.1:99999"],
         "99999"),
    _cmd("send-no-write-alone", ["send", "001", "--to", "a@example.org", "--no-write"], "--no-write", code=2),
    _cmd("send-limit", ["send", "001", "--list", "subscribers.csv", "--limit", "0"], "--limit", code=2),
    _cmd("send-no-issue", ["send", "999", "--to", "a@example.org"], "no issue '999'"),
    _cmd("status-no-issue", ["status", "999"], "999"),
    _cmd("status-requeue", ["status", "001", "--requeue", "xyz"], "--requeue", code=2),
    _cmd("subscribers-missing", ["subscribers", "check", "gone.csv"], "gone.csv"),
    _cmd("subscribers-no-email", ["subscribers", "check", "x.csv"], "x.csv", x__csv=CSV_NO_EMAIL),
    _cmd("subscribers-binary", ["subscribers", "check", "x.csv"], "x.csv", x__csv=bytes(range(256)) * 3),
    _cmd("subscribers-utf16", ["subscribers", "check", "x.csv"], "x.csv",
         x__csv="email\nann@example.org\n".encode("utf-16")),
    _cmd("unsubscribe-bad", ["unsubscribe", "not-an-email"], "not-an-email"),
    _cmd("unsubscribe-token", ["unsubscribe", "--token", "garbage"], "token"),
    _cmd("unsubscribe-from-missing", ["unsubscribe", "--from", "gone.txt"], "gone.txt"),
    _cmd("unsubscribe-from-binary", ["unsubscribe", "--from", "x.txt"], "x.txt",
         x__txt=bytes(range(256)) * 3),
    _cmd("unsubscribe-nothing", ["unsubscribe"], "unsubscribe", code=2),
    _cmd("unsubscribe-two-modes", ["unsubscribe", "--list", "--serve"], "one of them", code=2),
    _cmd("bounces-mbox-csv", ["bounces", "--mbox", "x.csv"], "x.csv is not an mbox", x__csv=CSV_NO_EMAIL),
    _cmd("bounces-mbox-noise", ["bounces", "--mbox", "x.bin"], "x.bin is not an mbox",
         x__bin=bytes(reversed(range(256))) * 2),
    _cmd("bounces-mbox-missing", ["bounces", "--mbox", "gone.mbox"], "gone.mbox: no such file or folder"),
    _cmd("bounces-maildir-missing", ["bounces", "--maildir", "gone"], "gone: no such file or folder"),
    _cmd("bounces-maildir-file", ["bounces", "--maildir", "subscribers.csv"],
         "subscribers.csv is not a Maildir"),
    _cmd("bounces-imap-http", ["bounces", "--imap", "http://x/INBOX"], "http://x/INBOX"),
    _cmd("bounces-imap-password", ["bounces", "--imap", "imaps://u:p@x/INBOX"], "x"),
    _cmd("bounces-two", ["bounces", "--mbox", "a", "--maildir", "b"], "--maildir", code=2),
    _cmd("bounces-source", ["bounces"], "gigo-mail.toml", ),
    _cmd("dkim-selector-space", ["dkim", "keygen", "--selector", "a b"], "'a b' is not a DNS name"),
    _cmd("dkim-selector-unicode-bad", ["dkim", "keygen", "--selector", "ü ü"], "is not a DNS name"),
    _cmd("dkim-domain", ["dkim", "keygen", "--domain", "not a domain!"], "'not a domain!' is not a DNS name"),
    _cmd("dkim-out-folder", ["dkim", "keygen", "--selector", "k", "--out", "issues"], "issues"),
    _cmd("inbox-port", ["inbox", "--port", "70000"], "--port", code=2),
    _cmd("inbox-fail-rate", ["inbox", "--fail-rate", "2"], "--fail-rate", code=2),
    _cmd("inbox-fail-code", ["inbox", "--fail-code", "250"], "--fail-code", code=2),
    _cmd("init-not-empty", ["init", "issues"], "issues"),
    _cmd("init-file", ["init", "subscribers.csv"], "subscribers.csv"),
    _cmd("publish-out-file", ["publish", "--out", "subscribers.csv"], "subscribers.csv"),
    _cmd("publish-port", ["publish", "--serve", "--port", "-1"], "--port", code=2),
    _cmd("unknown-command", ["sned", "001"], "sned", code=2),
    _cmd("unknown-option", ["build", "001", "--fast"], "--fast", code=2),
]


def _resolve(case: Case, root: Path) -> str:
    """A config case's expected text: its file, line and column, found from where the value went."""
    if "\0" not in case.named:
        return case.named
    section, key, value = case.named.split("\0")
    text = (root / "gigo-mail.toml").read_text()
    number = next(i for i, line in enumerate(text.splitlines(), 1) if line == f"{key} = {value}")
    return f"gigo-mail.toml:{number}:{len(key) + 4}: "


ALL = [*_config_cases(), *CONFIG_FILES, *ISSUES, *COMMAND_CASES]


def test_there_are_more_than_a_hundred() -> None:
    assert len(ALL) > 100
    assert len({case.id for case in ALL}) == len(ALL)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", ALL, ids=lambda case: case.id)
def test_a_bad_input_is_one_clear_error(case: Case, template: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "news"
    shutil.copytree(template, root)
    for name, content in case.files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    if case.edit is not None:
        case.edit(root)
    named = _resolve(case, root)
    monkeypatch.chdir(root)
    monkeypatch.setenv("GIGO_UNSUBSCRIBE_SECRET", "s")
    monkeypatch.setenv("GIGO_SMTP_URL", "smtp://127.0.0.1:9")  # nothing listens: no mail leaves
    result = runner.invoke(app, case.argv, env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})
    output = result.output
    _no_traceback(result)
    assert result.exit_code == case.code, output
    assert "Traceback" not in output
    assert named in output, f"{named!r} not in:\n{output}"


def _no_traceback(result: Any) -> None:
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        raise AssertionError("".join(traceback.format_exception(result.exception)))


def test_an_unexpected_file_error_is_still_one_line_naming_the_file(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The last guard: an OSError no command turned into a GigoError is shown with its file, no traceback."""
    import typer as typer_module

    from gigo_mail.cli.app import _GigoGroup

    demo = typer_module.Typer(cls=_GigoGroup)

    @demo.command()
    def read() -> None:
        (tmp_path / "nowhere.txt").read_text()

    @demo.command()
    def other() -> None:
        pass

    result = runner.invoke(demo, ["read"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip() == f"error: {tmp_path / 'nowhere.txt'}: No such file or directory"
