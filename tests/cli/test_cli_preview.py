"""`gigo-mail preview`: the command against a real compile, without a browser."""

from __future__ import annotations

import socket
from pathlib import Path

from typer.testing import CliRunner

from gigo_mail.cli.app import app


def test_cli_no_open_writes_files_and_prints_paths(site: Path) -> None:
    result = CliRunner().invoke(app, ["preview", "7", "--no-open"])
    assert result.exit_code == 0, result.output
    for name in ("email.html", "preview.html", "email.txt"):
        path = site / "build" / "007" / name
        assert path.is_file()
        assert f"build/007/{name}" in result.output
    assert "FIRST-VERSION" in (site / "build" / "007" / "preview.html").read_text()


def test_cli_without_display_behaves_like_no_open(site: Path) -> None:
    result = CliRunner().invoke(app, ["preview", "007"])
    assert result.exit_code == 0, result.output
    assert (site / "build" / "007" / "preview.html").is_file()
    assert "no browser to open here" in result.output


def test_cli_text_prints_plain_text_only(site: Path) -> None:
    result = CliRunner().invoke(app, ["preview", "7", "--text"])
    assert result.exit_code == 0, result.output
    assert "Hello Ada Lovelace" in result.stdout
    assert "The first version of the body says FIRST-VERSION." in result.stdout
    assert "<html" not in result.stdout.lower()
    assert not (site / "build").exists()


def test_cli_unknown_issue_is_one_line(site: Path) -> None:
    result = CliRunner().invoke(app, ["preview", "99", "--no-open"])
    assert result.exit_code == 1
    assert "no issue '99'" in result.output and "007" in result.output
    assert "Traceback" not in result.output


def test_cli_serve_on_a_taken_port_is_one_line_error(site: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["preview", "7", "--serve", "--port", str(port), "--no-open"])
    assert result.exit_code == 1
    assert f"127.0.0.1:{port} is already in use" in result.output
    assert len(result.output.strip().splitlines()) == 1
