"""The command line: parse options, call the core, draw with rich.

Every command's GigoError becomes one red line on stderr and exit code 1;
usage errors are click's (exit 2). The core never prints.
"""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from gigo_mail.cli.console import err_console
from gigo_mail.errors import GigoError
from gigo_mail.version import __version__


class _GigoGroup(TyperGroup):
    """Turns a GigoError raised anywhere below into a clean one-line message."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except GigoError as exc:
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None

    def format_help(self, ctx: Any, formatter: Any) -> None:
        # The top-level page is drawn by cli_help, which spares typer's renderer's imports;
        # should this group ever need more than that page draws, typer's renderer takes over.
        from gigo_mail.cli import help as cli_help

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


def _register_all() -> None:
    # Each area keeps its commands in its own module; see cli/*.py.
    from gigo_mail.cli import (
        bounces,
        build,
        check,
        dkim,
        inbox,
        lists,
        preview,
        publish,
        send,
        workflow,
    )

    for module in (build, check, preview, send, lists, bounces, inbox, workflow, publish, dkim):
        module.register(app)


_register_all()


def main() -> None:
    app()
