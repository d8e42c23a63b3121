"""--help teaches: every command's page ends in examples, shows config sections as written and flags
as flags; and every example runs, as written, in a newsletter fresh from `gigo-mail init` (a server
until SIGTERM, which stops it with exit 0 and one line, as Ctrl-C does)."""

from __future__ import annotations

import mailbox
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import typer

from conftest import SmtpServer
from gigo_mail.cli.app import app
from gigo_mail.cli.examples import EXAMPLES, is_server

ANSWERS = Path(__file__).resolve().parents[1] / "data" / "answers"


def _leaves(group: Any, prefix: str = "") -> dict[str, Any]:
    """Every command by its path ('dkim keygen'), each loaded (the app loads a command when it is chosen)."""
    found: dict[str, Any] = {}
    for name in group.list_commands(None):
        command = group.get_command(None, name)
        path = f"{prefix}{name}"
        if hasattr(command, "commands"):
            found |= _leaves(command, f"{path} ")
        else:
            found[path] = command
    return found


COMMANDS = _leaves(typer.main.get_command(app))


def _env(**extra: str) -> dict[str, str]:
    unset = ("FORCE_COLOR", "GIGO_SMTP_URL", "GIGO_SMTP_PASSWORD", "GIGO_SMTP_CAFILE")
    return {**{k: v for k, v in os.environ.items() if k not in unset}, "TERMINAL_WIDTH": "200",
            "COLUMNS": "200", "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", **extra}


def _run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gigo_mail", *args], cwd=cwd, capture_output=True, text=True,
                          env=_env(**env), timeout=90)


def test_every_command_has_examples() -> None:
    assert set(EXAMPLES) == set(COMMANDS)
    for path, examples in EXAMPLES.items():
        assert examples and all(line.startswith(f"gigo-mail {path}") for line, _ in examples), path


def _raw_help(command: Any) -> str:
    texts = [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]
    return "\n".join(texts).replace("\\[", "[")


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_a_help_page_teaches(path: str, tmp_path: Path) -> None:
    result = _run([*path.split(), "--help"], tmp_path)
    assert result.returncode == 0, result.stderr
    page = " ".join(result.stdout.replace("│", " ").split())
    assert "Examples" in page
    for line, what in EXAMPLES[path]:
        assert f"$ {line} # {what}" in page
    sections = set(re.findall(r"\[[a-z][a-z_.]*\]", _raw_help(COMMANDS[path])))
    for section in sections:  # "[smtp] url" stays "[smtp] url", not " url"
        assert section in page, f"{section} vanished from '{path} --help'"
    assert "<bool>" not in page  # a flag is shown as a flag


def test_sections_named_in_help_survive_where_they_were_eaten() -> None:
    """The five the first hour found: each is in some help text, and each page keeps it."""
    raw = {path: _raw_help(command) for path, command in COMMANDS.items()}
    for section in ("[smtp]", "[list]", "[site]", "[unsubscribe]"):
        assert any(section in text for text in raw.values()), section


def _mbox(path: Path) -> None:
    box = mailbox.mbox(path)
    box.add((ANSWERS / "postfix-dsn-user-unknown.eml").read_bytes())
    box.flush()
    box.close()


def _serve(argv: list[str], cwd: Path, stop: int = signal.SIGTERM) -> tuple[int, str, str]:
    """Start a server example, wait until it says how to stop it, stop it with ``stop``."""
    if "--port" not in argv:
        argv = [*argv, "--port", "0"]  # the only change: a free port, not the default another test may hold
    process = subprocess.Popen([sys.executable, "-m", "gigo_mail", *argv], cwd=cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=_env())
    assert process.stdout is not None
    seen = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            seen.append(line)
            if "Ctrl-C stops" in line or not line:
                break
        assert any("Ctrl-C stops" in line for line in seen), "".join(seen) + (process.stderr.read() or "")
        process.send_signal(stop)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    return process.returncode, "".join(seen) + out, err


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    assert _run(["init", "news"], tmp_path).returncode == 0
    root = tmp_path / "news"
    _mbox(root / "answers.mbox")
    return root


@pytest.mark.slow
def test_every_example_runs_in_a_new_newsletter(scratch: Path, smtp_server: SmtpServer) -> None:
    env = {"GIGO_SMTP_URL": smtp_server.url, "GIGO_UNSUBSCRIBE_SECRET": "s3cret"}
    failures = []
    for path in EXAMPLES:
        for line, _ in EXAMPLES[path]:
            argv = shlex.split(line)[1:]
            if is_server(line):
                code, out, err = _serve(argv, scratch)
                last = out.strip().splitlines()[-1] if out.strip() else ""
                ok = code == 0 and " stopped" in last and not err.strip()
            else:
                result = _run(argv, scratch, **env)
                code, out, err = result.returncode, result.stdout, result.stderr
                ok = code == 0 or (path == "check" and code == 1 and "failed" in out)
            if not ok or "Traceback" in out + err:
                failures.append(f"{line}: exit {code}\n{out[-800:]}\n{err[-800:]}")
    assert not failures, "\n\n".join(failures)
    assert len(smtp_server.messages) == 1 + 3  # the test copy and the three sample subscribers


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
@pytest.mark.parametrize("argv", [["inbox"], ["preview", "001", "--serve", "--no-open"],
                                  ["publish", "--serve"], ["unsubscribe", "--serve"]],
                         ids=lambda argv: argv[0])
def test_every_server_stops_with_exit_0_and_one_line(scratch: Path, argv: list[str], stop: int) -> None:
    code, out, err = _serve(argv, scratch, stop)
    assert code == 0, out + err
    assert "Traceback" not in out + err and not err.strip()
    last = out.strip().splitlines()[-1]
    assert re.fullmatch(r"(Inbox|preview server|site server|unsubscribe page) stopped(: .*)?", last), last
