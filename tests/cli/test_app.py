"""The command line as a whole: what starting it costs."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("premailer", "cssutils", "lxml", "mjml", "jinja2", "gigo_mail.compose.markdown", "frontmatter",
         "aiosmtplib", "flufl", "cryptography", "imaplib",
         "aiosmtpd", "email_validator", "asyncio", "wsgiref", "logging",
         "typer.rich_utils", "rich.markdown", "gigo_mail.compose.compile", "gigo_mail.send.engine")


def test_help_loads_no_compiler_engine_or_server() -> None:
    """`gigo-mail --help` and `status` need none of them; each command imports its own."""
    probe = ("import sys, contextlib, io\n"
             "from gigo_mail.cli.app import app\n"
             "sys.argv = ['gigo-mail', '--help']\n"
             "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
             "    app()\n"
             f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_help_imports_no_commands_module_and_a_command_imports_only_its_own() -> None:
    """The command table draws the top-level page; choosing `build` loads cli.build alone."""
    from gigo_mail.cli.app import COMMANDS

    modules = sorted({module for module, _summary in COMMANDS.values()})
    probe = ("import sys, contextlib, io\n"
             "from gigo_mail.cli.app import app\n"
             "sys.argv = ['gigo-mail', *sys.argv[1:]]\n"
             "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
             "    app()\n"
             f"print(','.join(m for m in {modules!r} if m in sys.modules))\n")
    run = subprocess.run([sys.executable, "-c", probe, "--help"], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == ""
    run = subprocess.run([sys.executable, "-c", probe, "build", "--help"], capture_output=True, text=True,
                         check=True)
    assert run.stdout.strip() == "gigo_mail.cli.build"


def test_every_command_in_the_table_loads_its_own_module_and_no_other_commands() -> None:
    """`status`, `unsubscribe`, `subscribers` and `serve` once shared modules; each now loads alone."""
    from gigo_mail.cli.app import COMMANDS

    modules = sorted({module for module, _summary in COMMANDS.values()})
    probe = ("import sys, contextlib, io\n"
             "from gigo_mail.cli.app import app\n"
             "for name in sys.argv[1:]:\n"
             "    before = set(sys.modules)\n"
             "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
             "        app([name, '--help'])\n"
             f"    print(name, *(m for m in {modules!r} if m in sys.modules and m not in before))\n")
    run = subprocess.run([sys.executable, "-c", probe, *COMMANDS], capture_output=True, text=True, check=True)
    loaded = {name: rest for name, *rest in (line.split() for line in run.stdout.splitlines())}
    assert list(loaded) == list(COMMANDS)
    for name, (module, _summary) in COMMANDS.items():
        assert set(loaded[name]) <= {module}, name  # init and new share one: it loads with init
    assert {m for new in loaded.values() for m in new} == set(modules)


def test_each_summary_in_the_table_is_its_commands_own_first_paragraph() -> None:
    import inspect

    from gigo_mail.cli.app import COMMANDS, load_command

    for name, (_module, summary) in COMMANDS.items():
        command = load_command(name)
        assert command is not None and command.name == name
        first = inspect.cleandoc(command.short_help or command.help or "").split("\n\n")[0]
        assert " ".join(first.split()) == summary, name
