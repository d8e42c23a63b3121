"""`gigo-mail build`: compile an issue and report what a careful sender checks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from gigo_mail.cli.console import console, facts_table
from gigo_mail.compose.cache import compile_cached
from gigo_mail.compose.compile import (
    GMAIL_CLIP_BYTES,
    BuildReport,
    CompiledIssue,
    build_dir,
    clip_level,
    write_build,
)
from gigo_mail.config import load_config


def compile_ref(ref: str, root: Path | None = None) -> CompiledIssue:
    """Load the config, then compile the issue ``ref`` names (``compose.cache``: kept from the last
    compile when nothing it reads has changed)."""
    return compile_cached(load_config(root, required=True), ref)


def show_report(compiled: CompiledIssue, paths: dict[str, Path] | None = None) -> None:
    """The build report as a small rich table, then warnings and errors one per line."""
    report: BuildReport = compiled.report
    table = facts_table("bold", "", tight=True)
    issue = compiled.issue
    table.add_row("issue", f"{issue.key}  {issue.display_path}")
    table.add_row("subject", escape(compiled.preview_subject()))
    share = report.html_bytes / GMAIL_CLIP_BYTES
    colour = {"clipped": "red", "near": "yellow", "ok": "green"}[clip_level(report.html_bytes)]
    table.add_row("html", f"[{colour}]{report.html_bytes / 1024:.1f} KB[/] "
                          f"({share:.0%} of Gmail's 102 KB clipping limit)")
    table.add_row("text", f"{report.text_bytes / 1024:.1f} KB")
    table.add_row("images", escape("; ".join(report.images)) if report.images else "no local images")
    table.add_row("compile", f"{report.compile_ms:.0f} ms" + (" (unchanged since the last compile: kept)"
                                                              if report.cached else ""))
    for label, path in (paths or {}).items():
        table.add_row(label, str(path))
    console.print(table)
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    for error in report.errors:
        console.print(f"[bold red]error:[/] {escape(error)}")


def register(app: typer.Typer) -> None:
    @app.command()
    def build(
        issue: Annotated[str, typer.Argument(help="Issue number (011 or 11) or path to its Markdown file.")],
        out: Annotated[Path | None, typer.Option("--out", help="Folder to write to (default build/ISSUE).")]
        = None,
    ) -> None:
        """Compile an issue to build/ISSUE/email.html and email.txt, and check it."""
        compiled = compile_ref(issue)
        paths = write_build(compiled, out or build_dir(compiled))
        show_report(compiled, paths)
        if compiled.report.errors:
            raise typer.Exit(1)
