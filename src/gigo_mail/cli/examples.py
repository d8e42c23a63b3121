"""The "Examples" block at the end of every command's --help, and how the pages are made to teach.

The examples are written once, here: ``app`` puts them under each command's help, and
``tests/cli/test_examples.py`` runs every one of them in a newsletter fresh from ``gigo-mail init``
(a server example until it is stopped), so an example that stops working fails a test.

``teach`` also makes each page say what it means: a ``[section]`` of gigo-mail.toml in a help text is
printed as written (rich would take it for markup and drop it), and an on/off flag shows no ``<bool>``.
"""

from __future__ import annotations

import re
from typing import Any

# command path -> (command line, what it does); each runs as written in a new newsletter.
EXAMPLES: dict[str, tuple[tuple[str, str], ...]] = {
    "build": (("gigo-mail build 001", "compile issue 001 to build/001/"),
              ("gigo-mail build issues/001.md", "the same issue, named by its file")),
    "check": (("gigo-mail check 001 --offline", "the preflight, links not requested (exit 1 on a failure)"),),
    "preview": (("gigo-mail preview 001 --no-open", "write build/001/preview.html without opening it"),
                ("gigo-mail preview 001 --text", "print the plain-text part"),
                ("gigo-mail preview 001 --serve --no-open", "a live preview on 127.0.0.1; Ctrl-C stops")),
    "send": (("gigo-mail send 001 --to me@example.org", "a [TEST] copy to yourself"),
             ("gigo-mail send 001 --list subscribers.csv --dry-run", "the plan, and every message as .eml"),
             ("gigo-mail send 001 --list subscribers.csv --yes", "the real send, without asking")),
    "status": (("gigo-mail status 001", "sent, failed and uncertain, and each run"),
               ("gigo-mail status 001 --failed failed.csv", "the failures as CSV")),
    "unsubscribe": (("gigo-mail unsubscribe ann@example.org", "never mail this address again"),
                    ("gigo-mail unsubscribe --list", "the suppression list"),
                    ("gigo-mail unsubscribe --remove ann@example.org", "take it off again"),
                    ("gigo-mail unsubscribe --serve", "the one-click page on 127.0.0.1:8026; Ctrl-C stops")),
    "bounces": (("gigo-mail bounces --mbox answers.mbox --dry-run", "what the answers in an mbox would do"),),
    "inbox": (("gigo-mail inbox", "catch every message on 127.0.0.1:1025; Ctrl-C stops"),
              ("gigo-mail inbox --clear", "empty it")),
    "init": (("gigo-mail init my-newsletter", "a new newsletter that builds as it is"),),
    "new": (("gigo-mail new --title \"What's next\"", "the next issue, as a draft"),),
    "issues": (("gigo-mail issues", "every issue, with what was sent"),),
    "publish": (("gigo-mail publish", "the web archive in site/ (drafts left out)"),
                ("gigo-mail publish --serve", "the same, served on 127.0.0.1:8027; Ctrl-C stops")),
    "subscribers check": (("gigo-mail subscribers check subscribers.csv", "what a send would skip and why"),),
    "dkim keygen": (("gigo-mail dkim keygen --selector gigo2026", "a key pair and its TXT record"),),
    "serve": (("gigo-mail serve",
               "the public page on 127.0.0.1:8026, signup too with [signup] on; Ctrl-C stops"),),
    "subscribers pull": (("gigo-mail subscribers pull",
                          "readers who confirmed on the signup page, into the list"),),
    "subscribers consent": (("gigo-mail subscribers consent ann@example.org",
                             "the proof of a reader's consent"),),
    "subscribers forget": (("gigo-mail subscribers forget old@example.org --yes",
                            "erase a reader everywhere; a hashed suppression stays"),),
}
# Servers: their examples run until Ctrl-C (or SIGTERM).
SERVES = ("--serve", "gigo-mail inbox", "gigo-mail serve")
_MARKUP = re.compile(r"(?<!\\)\[(?=[a-z])")


def is_server(line: str) -> bool:
    return any(word in line for word in SERVES) and "--clear" not in line


def epilog(path: str) -> str:
    """The Examples block of one command, in typer's markup (paragraphs become lines)."""
    lines = [f"[dim]$[/] [bold]{escape_markup(command)}[/]  [dim]# {escape_markup(what)}[/]"
             for command, what in EXAMPLES.get(path, ())]
    return "\n\n".join(["[bold]Examples[/]", *lines]) if lines else ""


def escape_markup(text: str) -> str:
    """``[smtp]`` kept as text: rich would read it as a style and print nothing."""
    return _MARKUP.sub(r"\\[", text)


def teach(command: Any, path: str = "") -> None:
    """Examples, escaped markup and flags shown as flags, on ``command`` and every command below it."""
    if command.help:
        command.help = escape_markup(command.help)
    if getattr(command, "short_help", None):
        command.short_help = escape_markup(command.short_help)
    for param in command.params:
        if getattr(param, "help", None):
            param.help = escape_markup(param.help)
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""  # typer would print <bool>: a flag takes no value
    # the command's own Context class: typer may vendor click, which then need not be installed
    helper = command.get_help_option(command.context_class(command, info_name=path or "gigo-mail"))
    if helper is not None and helper.metavar is None:
        helper.metavar = ""
    subcommands = getattr(command, "commands", {})
    for name, sub in subcommands.items():
        teach(sub, f"{path} {name}".strip())
    if path and not subcommands:
        command.epilog = epilog(path)
