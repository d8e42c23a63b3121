"""The top-level help page (`gigo-mail --help`, or no arguments), drawn without typer's renderer.

It is the first thing a new user runs. typer's help renderer imports ``rich.markdown`` and
``rich.traceback`` at its top (about 45 ms, a fifth of the start-up) for Markdown help text and
pretty tracebacks, neither of which this app uses. This module draws the same panels with rich's
``Table`` and ``Panel`` and typer's styles; ``test_cli_help`` renders the page both ways and
requires the same text and the same styles, so the two cannot drift apart. Each command's own
page (``gigo-mail send --help``) is still typer's.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

from rich.align import Align
from rich.columns import Columns
from rich.console import Console, Group, RenderableType
from rich.highlighter import RegexHighlighter
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.theme import Theme

# typer's own styles (typer/rich_utils.py), so this page looks like every command's page.
THEME = Theme({
    "option": "bold cyan", "switch": "bold green", "negative_option": "bold magenta",
    "negative_switch": "bold red", "types": "bold yellow", "types_sep": "dim", "usage": "yellow",
})
BORDER = "dim"
COMMAND_STYLE = "bold cyan"
HELP_REST_STYLE = "dim"


class _OptionHighlighter(RegexHighlighter):
    highlights = [
        r"(^|\W)(?P<switch>\-\w+)(?![a-zA-Z0-9])",
        r"(^|\W)(?P<option>\-\-[\w\-]+)(?![a-zA-Z0-9])",
        r"(?P<types>\<[^\>]+\>)",
        r"(?P<usage>Usage: )",
    ]


class _NegativeHighlighter(RegexHighlighter):
    highlights = [
        r"(^|\W)(?P<negative_switch>\-\w+)(?![a-zA-Z0-9])",
        r"(^|\W)(?P<negative_option>\-\-[\w\-]+)(?![a-zA-Z0-9])",
    ]


class _TypesHighlighter(RegexHighlighter):
    highlights = [r"^(?P<types_sep>(\[|<))", r"(?P<types_sep>\|)", r"(?P<types_sep>(\]|>))(\.\.\.)?$"]


_highlight = _OptionHighlighter()
_highlight_negative = _NegativeHighlighter()
_highlight_types = _TypesHighlighter()


class UnsupportedHelp(Exception):
    """The group uses a help feature this page does not draw; typer's renderer should."""


def help_console() -> Console:
    """A console configured as typer configures its own (TERMINAL_WIDTH, FORCE_COLOR...)."""
    width = os.environ.get("TERMINAL_WIDTH", "")
    forced = any(os.environ.get(v) for v in ("GITHUB_ACTIONS", "FORCE_COLOR", "PY_COLORS"))
    force: bool | None = True if forced else None
    if os.environ.get("_TYPER_FORCE_DISABLE_TERMINAL"):
        force = False
    return Console(theme=THEME, highlighter=_highlight, color_system="auto", force_terminal=force,
                   width=int(width) if width.isdigit() and int(width) > 0 else None)


def _markup(text: str, style: str = "") -> Text:
    return _highlight(Text.from_markup(inspect.cleandoc(text), style=style))


def _description(help_text: str) -> RenderableType:
    first, *rest = inspect.cleandoc(help_text).partition("\f")[0].split("\n\n")
    parts: list[RenderableType] = [_markup(first.replace("\n", " ").strip())]
    if rest:
        parts += [Text(""), _markup("\n\n".join(rest), style=HELP_REST_STYLE)]
    return Group(*parts)


def _table(*, highlight: bool) -> Table:
    return Table(highlight=highlight, show_header=False, expand=True, box=None, show_lines=False, leading=0,
                 border_style=None, row_styles=None, pad_edge=False, padding=(0, 1))


def _options_panel(group: Any, ctx: Any) -> Panel | None:
    table = _table(highlight=True)
    for param in group.get_params(ctx):
        if getattr(param, "hidden", False):
            continue
        # Only what the top-level options need: flags that are off by default show no default.
        shows_default = isinstance(param.show_default, str) or (
            bool(param.show_default) and not (param.is_flag and not param.default))
        shows_envvar = bool(param.envvar) and getattr(param, "show_envvar", False)
        if (param.param_type_name != "option" or param.required or getattr(param, "rich_help_panel", None)
                or shows_envvar or shows_default):
            raise UnsupportedHelp(param.name)
        long = [o for o in param.opts if "--" in o]
        short = [o for o in param.opts if "--" not in o]
        type_name = getattr(param, "display_type_rich", None)  # typer 0.29's; older ones draw it otherwise
        if type_name is None:
            raise UnsupportedHelp(f"{param.name}: this typer names types its own way")
        types = Text(type_name(ctx=ctx) or "", style="bold yellow", overflow="fold")
        help_text = param.help.replace("\n", " ").strip() if param.help else ""
        table.add_row(_highlight(",".join(long)), _highlight(",".join(short)),
                      _highlight_negative(",".join(o for o in param.secondary_opts if "--" in o)),
                      _highlight_negative(",".join(o for o in param.secondary_opts if "--" not in o)),
                      _highlight_types(types), Columns([_markup(help_text)] if help_text else []))
    return Panel(table, border_style=BORDER, title="Options", title_align="left") if table.row_count else None


def _commands_panel(group: Any, ctx: Any) -> Panel | None:
    summaries = group.summaries() if hasattr(group, "summaries") else None
    if summaries is not None:  # the command table: no command's module is imported for this page
        return _summary_panel(summaries)
    commands = [group.get_command(ctx, name) for name in group.list_commands(ctx)]
    commands = [c for c in commands if c is not None and not c.hidden]
    if any(c.deprecated or getattr(c, "rich_help_panel", None) for c in commands):
        raise UnsupportedHelp("a deprecated command or a command panel")
    table = _table(highlight=False)
    name_width = max((len(c.name or "") for c in commands), default=0)
    table.add_column(style=COMMAND_STYLE, no_wrap=True, width=name_width)
    table.add_column("Description", justify="left", no_wrap=False, ratio=10)
    for command in commands:
        first = inspect.cleandoc(command.short_help or command.help or "").split("\n\n")[0]
        table.add_row(Text(command.name or ""), _markup(first.replace("\b\n", "").strip()))
    return Panel(table, border_style=BORDER, title="Commands", title_align="left") if commands else None


def _summary_panel(summaries: list[tuple[str, str]]) -> Panel | None:
    table = _table(highlight=False)
    table.add_column(style=COMMAND_STYLE, no_wrap=True, width=max((len(n) for n, _ in summaries), default=0))
    table.add_column("Description", justify="left", no_wrap=False, ratio=10)
    for name, summary in summaries:
        table.add_row(Text(name), _markup(summary))
    return Panel(table, border_style=BORDER, title="Commands", title_align="left") if summaries else None


def draw_group_help(group: Any, ctx: Any, console: Console) -> None:
    """Usage, description, options and commands, as typer draws a group's page.

    Raises UnsupportedHelp before printing anything if the group needs more than that."""
    if group.epilog or group.deprecated or ctx.show_default or group.rich_markup_mode != "rich":
        raise UnsupportedHelp("an epilog, a deprecated group, shown defaults or another markup mode")
    panels = [p for p in (_options_panel(group, ctx), _commands_panel(group, ctx)) if p is not None]
    console.print(Padding(_highlight(group.get_usage(ctx)), 1), style="bold")
    if group.help:
        console.print(Padding(Align(_description(group.help), pad=False), (0, 1, 1, 1)))
    for panel in panels:
        console.print(panel)
