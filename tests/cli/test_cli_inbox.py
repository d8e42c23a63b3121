"""`gigo-mail inbox`: the command against a real InboxServer, and as a real process stopped by a signal."""

from __future__ import annotations

import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gigo_mail.cli.app import app
from gigo_mail.web.inbox import CapturedMessage, InboxServer, default_maildir, list_messages
from support import newsletter_mail

runner = CliRunner()


def test_cli_clear_reports_the_count(inbox: tuple[InboxServer, list[CapturedMessage]]) -> None:
    server, _ = inbox
    with smtplib.SMTP("127.0.0.1", server.port) as client:
        client.send_message(newsletter_mail("a@example.org", "one"))
        client.send_message(newsletter_mail("b@example.org", "two"))
    result = runner.invoke(app, ["inbox", "--clear", "--maildir", str(server.maildir)])
    assert result.exit_code == 0, result.output
    assert "Removed 2 messages" in result.output
    assert list_messages(server.maildir) == []


def test_cli_clear_defaults_to_the_newsletters_inbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "gigo-mail.toml").write_text('[newsletter]\nname = "N"\n')
    (tmp_path / "issues").mkdir()
    assert default_maildir(tmp_path) == tmp_path / ".gigo" / "inbox"
    with InboxServer(default_maildir(tmp_path), port=0) as server, \
            smtplib.SMTP("127.0.0.1", server.port) as client:
        client.send_message(newsletter_mail("a@example.org", "one"))
    monkeypatch.chdir(tmp_path / "issues")  # the root is found from below
    result = runner.invoke(app, ["inbox", "--clear"])
    assert result.exit_code == 0, result.output
    assert "Removed 1 message from" in result.output
    assert list_messages(tmp_path / ".gigo" / "inbox") == []


def test_cli_port_in_use_is_one_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["inbox", "--port", str(port), "--maildir", str(tmp_path / "i")])
    assert result.exit_code == 1
    assert f"127.0.0.1:{port} is already in use" in result.stderr
    assert "--port" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_unwritable_folder_is_one_line_and_exit_1(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")  # even root cannot create a folder below a file
    result = runner.invoke(app, ["inbox", "--port", "0", "--maildir", str(blocker / "inbox")])
    assert result.exit_code == 1
    assert "is not writable" in result.stderr and "--maildir" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through file permissions")
def test_cli_read_only_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "inbox"
    for sub in ("tmp", "new", "cur"):
        (folder / sub).mkdir(parents=True)
    (folder / "tmp").chmod(0o500)
    try:
        result = runner.invoke(app, ["inbox", "--port", "0", "--maildir", str(folder)])
    finally:
        (folder / "tmp").chmod(0o700)
    assert result.exit_code == 1 and "is not writable" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_cli_serves_prints_each_message_and_stops_cleanly(tmp_path: Path, stop_signal: int) -> None:
    maildir = tmp_path / "inbox"
    proc = subprocess.Popen(
        [sys.executable, "-c", "from gigo_mail.cli.app import main; main()", "inbox", "--port", "0",
         "--maildir", str(maildir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"},
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        match = re.search(r"smtp://127\.0\.0\.1:(\d+)", banner)
        assert match, banner
        with smtplib.SMTP("127.0.0.1", int(match.group(1))) as client:
            client.send_message(newsletter_mail("Ann <ann@example.org>", "Issue 011: hello"))
        deadline = time.monotonic() + 10
        lines = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "Issue 011: hello" in line:
                break
        assert "Ann <ann@example.org>" in lines[-1] and "Issue 011: hello" in lines[-1]
        proc.send_signal(stop_signal)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Inbox stopped: 1 message received" in out
    assert len(list_messages(maildir)) == 1
