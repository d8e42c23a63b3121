"""The top-level help page: drawn by cli_help, byte for byte what typer's renderer draws."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# Renders the same page with typer's own renderer, by putting typer's format_help back.
TYPERS_PAGE = ("import sys\n"
               "from typer.core import TyperGroup\n"
               "from gigo_mail.cli import app as cli\n"
               "cli._GigoGroup.format_help = TyperGroup.format_help\n"
               "sys.argv = ['gigo-mail', *sys.argv[1:]]\n"
               "cli.main()\n")
OURS = ("import sys\nfrom gigo_mail.cli import app as cli\n"
        "sys.argv = ['gigo-mail', *sys.argv[1:]]\ncli.main()\n")


def _page(program: str, *args: str, **env: str) -> subprocess.CompletedProcess[bytes]:
    unset = ("FORCE_COLOR", "NO_COLOR", "TERMINAL_WIDTH")
    environment = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run([sys.executable, "-c", program, *args], capture_output=True,
                          env={**environment, **env}, timeout=60)


@pytest.mark.parametrize("env", [
    {"TERMINAL_WIDTH": "80"},
    {"TERMINAL_WIDTH": "52"},
    {"TERMINAL_WIDTH": "200", "FORCE_COLOR": "1"},
    {"TERMINAL_WIDTH": "100", "FORCE_COLOR": "1"},
], ids=["80", "52-narrow", "200-colour", "100-colour"])
def test_top_level_page_is_typers_page(env: dict[str, str]) -> None:
    """Same text, same wrapping and same colours (escape codes compared) as typer would draw."""
    ours, typers = _page(OURS, "--help", **env), _page(TYPERS_PAGE, "--help", **env)
    assert ours.returncode == typers.returncode == 0, ours.stderr
    assert b"Commands" in ours.stdout and b"send" in ours.stdout
    if "FORCE_COLOR" in env:
        assert b"\x1b[" in ours.stdout  # colour was on, so the styles were compared too
    assert ours.stdout == typers.stdout


def test_no_arguments_draws_the_same_page() -> None:
    """`gigo-mail` alone shows the page (no_args_is_help) through the same renderer."""
    ours, typers = _page(OURS, TERMINAL_WIDTH="90"), _page(TYPERS_PAGE, TERMINAL_WIDTH="90")
    assert b"Usage: gigo-mail" in ours.stdout + ours.stderr
    assert (ours.returncode, ours.stdout, ours.stderr) == (typers.returncode, typers.stdout, typers.stderr)


def test_top_level_page_loads_no_help_renderer() -> None:
    probe = OURS.replace("cli.main()\n", "try:\n    cli.main()\nexcept SystemExit:\n"
                         "    print(sorted(m for m in ('typer.rich_utils', 'rich.markdown', 'rich.traceback')"
                         " if m in sys.modules), file=sys.stderr)\n")
    result = _page(probe, "--help")
    assert result.stderr.decode().strip() == "[]"


def test_a_command_page_is_still_typers() -> None:
    result = _page(OURS, "send", "--help", TERMINAL_WIDTH="100")
    assert result.returncode == 0
    assert b"Usage: gigo-mail send" in result.stdout and b"--list" in result.stdout


def test_a_group_the_page_cannot_draw_falls_back_to_typer() -> None:
    """A required option (or an epilog) is beyond this page: typer's renderer draws it instead."""
    program = ("import sys, typer\n"
               "from gigo_mail.cli.app import _GigoGroup\n"
               "app = typer.Typer(cls=_GigoGroup, rich_markup_mode='rich', epilog='See the README.')\n"
               "@app.callback()\n"
               "def root(name: str = typer.Option(..., help='Who.')) -> None:\n"
               "    'Root.'\n"
               "@app.command()\n"
               "def hello() -> None:\n"
               "    'Say hello.'\n"
               "sys.argv = ['x', '--help']\n"
               "try:\n"
               "    app()\n"
               "except SystemExit:\n"
               "    print('rich_utils' if 'typer.rich_utils' in sys.modules else 'none', file=sys.stderr)\n")
    result = _page(program, TERMINAL_WIDTH="80")
    assert result.stderr.decode().strip() == "rich_utils"
    assert b"[required]" in result.stdout and b"See the README." in result.stdout


def test_a_terminal_width_that_is_not_a_number_is_ignored() -> None:
    """typer itself fails to import its renderer on one; the top-level page just uses the terminal's."""
    result = _page(OURS, "--help", TERMINAL_WIDTH="wide")
    assert result.returncode == 0 and b"Usage: gigo-mail" in result.stdout
    assert b"Traceback" not in result.stderr
