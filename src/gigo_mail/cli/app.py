"""The command line: parse options, call the core, draw with rich.

Every command's GigoError becomes one red line on stderr and exit code 1;
usage errors are click's (exit 2). The core never prints.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
import typer.main
from rich.markup import escape
from typer.core import TyperGroup

from gigo_mail.cli.console import err_console
from gigo_mail.cli.examples import teach
from gigo_mail.errors import GigoError
from gigo_mail.version import __version__

# The commands, as pip keeps its own: name -> (module, summary). The top-level help page is drawn
# from this table without importing any command's module; choosing a command imports its module
# alone, whose ``register(app)`` adds it. The summary is the first paragraph of the command's
# docstring (test_help holds the two to each other).
COMMANDS: dict[str, tuple[str, str]] = {
    "build": ("gigo_mail.cli.build",
              "Compile an issue to build/ISSUE/email.html and email.txt, and check it."),
    "check": ("gigo_mail.cli.check",
              "Is an issue ready to send? DNS (SPF, DKIM, DMARC, MX), links, images, "
              "clients, spam score."),
    "preview": ("gigo_mail.cli.preview",
                "Compile an issue with sample subscriber values and show it."),
    "send": ("gigo_mail.cli.send",
             "Send an issue to a subscriber list (or --to yourself, or --dry-run to files)."),
    "status": ("gigo_mail.cli.status",
               "What the delivery journal knows about an issue: counts, failures and runs."),
    "serve": ("gigo_mail.cli.serve",
              "Run the public page: one-click unsubscribe, signup and confirmation, feeds for the "
              "sending machine."),
    "unsubscribe": ("gigo_mail.cli.unsubscribe",
                    "Stop mailing addresses: they go on the suppression list, which every "
                    "send honours."),
    "bounces": ("gigo_mail.cli.bounces",
                "Read bounces, complaints and unsubscribe mails from a mailbox; suppress "
                "who must not be mailed."),
    "inbox": ("gigo_mail.cli.inbox",
              "Run a local SMTP inbox that keeps every message (like Mailpit), to rehearse "
              "a send."),
    "init": ("gigo_mail.cli.scaffold",
             "Start a new newsletter: settings, a first issue, a template and sample "
             "subscribers."),
    "new": ("gigo_mail.cli.scaffold",
            "Create the next issue (issues/NNN.md) with its front matter ready to fill in."),
    "issues": ("gigo_mail.cli.issues",
               "List the issues: number, date, subject, and what the journal says was sent."),
    "publish": ("gigo_mail.cli.publish",
                "Build the public web archive: a page per issue, an archive, Atom, RSS and "
                "JSON feeds, a sitemap."),
    "subscribers": ("gigo_mail.cli.subscribers",
                    "Check subscriber lists."),
    "dkim": ("gigo_mail.cli.dkim",
             "DKIM keys for signing every message."),
}


def load_command(name: str) -> Any:
    """The click command ``name``, its module imported now (None for a name not in the table)."""
    if name not in COMMANDS:
        return None
    module = importlib.import_module(COMMANDS[name][0])
    holder = typer.Typer(rich_markup_mode="rich", add_completion=False, pretty_exceptions_enable=False)
    module.register(holder)
    command = typer.main.get_group(holder).commands.get(name)
    if command is not None:
        teach(command, name)
    return command


class _GigoGroup(TyperGroup):
    """Loads each command when it is chosen (see COMMANDS), and turns a GigoError raised anywhere
    below into a clean one-line message."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        teach(self)  # its own options; each command is taught as it loads

    def list_commands(self, ctx: Any) -> list[str]:
        return [*COMMANDS, *(name for name in self.commands if name not in COMMANDS)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and (command := load_command(cmd_name)) is not None:
            self.commands[cmd_name] = command
        return self.commands.get(cmd_name)

    def summaries(self) -> list[tuple[str, str]] | None:
        """(name, summary) of every command, for the help page, without loading any; None when a
        command was added outside the table."""
        if any(name not in COMMANDS for name in self.commands):
            return None
        return [(name, summary) for name, (_module, summary) in COMMANDS.items()]

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except GigoError as exc:
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:  # a file the core did not expect to fail: still one line that names it
            where = f"{exc.filename}: " if exc.filename else ""
            err_console.print(f"[bold red]error:[/] {escape(where)}{escape(exc.strerror or str(exc))}",
                              highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    def format_help(self, ctx: Any, formatter: Any) -> None:
        # The top-level page is drawn by cli_help, which spares typer's renderer's imports;
        # should this group ever need more than that page draws, typer's renderer takes over.
        from gigo_mail.cli import help as cli_help  # its rich layout only when a page is drawn

        try:
            return cli_help.draw_group_help(self, ctx, cli_help.help_console())
        except cli_help.UnsupportedHelp:
            return super().format_help(ctx, formatter)


app = typer.Typer(
    cls=_GigoGroup,
    help="Write your newsletter in Markdown; compile it to responsive email; send it yourself.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gigo-mail {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Show the version and exit."),
) -> None:
    """gigo-mail: a newsletter in a git repo, sent from your own machine."""


def main() -> None:
    app()
