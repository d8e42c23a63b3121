"""`gigo-mail publish`: the newsletter as a static site (pages, archive, feeds), optionally served live."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from gigo_mail.cli.console import console, err_console, facts_table, until_stopped
from gigo_mail.cli.privacy import warn_tracked_lists
from gigo_mail.config import load_config, shown_path
from gigo_mail.web.publish import PublishReport
from gigo_mail.web.publish import publish as build


def show_report(report: PublishReport) -> None:
    table = facts_table("bold", "", tight=True)
    table.add_row("site", f"{escape(shown_path(report.site_dir))}/")
    shown = ", ".join(item.key for item in report.issues) or "none"
    table.add_row("issues", f"{len(report.issues)} ({escape(shown)})")
    table.add_row("files", f"{len(report.written)} written, {report.unchanged} unchanged"
                           + (f", {len(report.removed)} removed" if report.removed else ""))
    console.print(table)
    for skipped in report.skipped:
        console.print(f"[dim]left out {escape(skipped.key)}: {escape(skipped.reason)}[/]")
    for warning in report.warnings:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""

    @app.command()
    def publish(
        out: Annotated[Path | None, typer.Option(
            "--out", help="Folder to write the site to (default: [site] dir, 'site').")] = None,
        drafts: Annotated[bool, typer.Option(
            "--drafts", help="Also publish drafts (draft: true) and issues dated in the future.")] = False,
        sent_only: Annotated[bool, typer.Option(
            "--sent-only", help="Only publish issues the journal says were sent.")] = False,
        serve: Annotated[bool, typer.Option(
            "--serve", help="Serve the site on 127.0.0.1 and rebuild it, with live reload, on every save.")]
        = False,
        port: Annotated[int, typer.Option(
            "--port", min=0, max=65535, help="Port for --serve (0 = any free port).")] = 8027,
    ) -> None:
        """Build the public web archive: a page per issue, an archive, Atom, RSS and JSON feeds, a sitemap.

        Nothing personal is published: per-subscriber values show their default(...) or a neutral word.
        Drafts and issues dated in the future stay out unless --drafts.
        """
        config = load_config(required=True)
        warn_tracked_lists(config)
        report = build(config, out=out, drafts=drafts, sent_only=sent_only)
        show_report(report)
        if serve:
            _serve(config.root, report, out, drafts, sent_only, port)


def _serve(root: Path, first: PublishReport, out: Path | None, drafts: bool, sent_only: bool,
           port: int) -> None:
    from gigo_mail.web.publish_serve import SiteBuilder, serve_site  # the live server only with --serve

    builder = SiteBuilder(root, out=out, drafts=drafts, sent_only=sent_only, first=first)

    def announce(report: PublishReport | None, error: str) -> None:
        if error:
            err_console.print(f"[red]publish failed:[/] {escape(error)} (fix it; the site updates on save)",
                              soft_wrap=True)
        elif report is not None:
            console.print(f"rebuilt: {len(report.written)} written, {len(report.removed)} removed")

    with serve_site(builder, port, on_change=announce) as server, until_stopped("site server"):
        console.print(f"serving {escape(shown_path(first.site_dir))}/ at [bold]{server.url}[/]")
        console.print("watching issues/, templates/ and gigo-mail.toml; Ctrl-C stops")
        server.serve_forever(poll_interval=0.25)
