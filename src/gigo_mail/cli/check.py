"""`gigo-mail check`: the preflight, drawn as one table per area; exit 1 on any failure."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from gigo_mail.check.report import AREAS, FAIL, OK, SKIP, WARN, CheckReport
from gigo_mail.check.run import CheckOptions, run_check
from gigo_mail.cli.build import compile_ref
from gigo_mail.cli.console import console
from gigo_mail.cli.privacy import warn_tracked_lists

MARKS = {OK: "[green]ok[/]", WARN: "[yellow]warn[/]", FAIL: "[bold red]FAIL[/]", SKIP: "[dim]skip[/]"}


def show_check(report: CheckReport) -> None:
    for area, title in AREAS.items():
        findings = report.area(area)
        if not findings:
            continue
        table = Table(title=title, title_justify="left", show_header=False, box=None, padding=(0, 1))
        table.add_column(width=4)
        table.add_column(style="bold", overflow="fold")
        table.add_column(overflow="fold")
        for finding in findings:
            table.add_row(MARKS[finding.level], escape(finding.subject), escape(finding.detail))
        console.print(table)
    verdict = (f"[bold red]{len(report.failed)} failed[/]" if report.failed else "[bold green]ready[/]")
    console.print(f"\n{verdict}, {len(report.warnings)} warning(s)")


def register(app: typer.Typer) -> None:
    @app.command()
    def check(
        issue: Annotated[str, typer.Argument(help="Issue number (011 or 11) or path to its Markdown file.")],
        dns: Annotated[str | None, typer.Option(
            "--dns", help="Ask this resolver (IP:PORT) instead of the system's.")] = None,
        offline: Annotated[bool, typer.Option(
            "--offline", help="Do not request links or remote images.")] = False,
        smtp: Annotated[str | None, typer.Option(
            "--smtp", help="The relay SPF must allow (default: GIGO_SMTP_URL, else [smtp] url).")] = None,
        timeout: Annotated[float, typer.Option(
            "--timeout", min=0.1, help="Seconds to wait for each link.")] = 5.0,
    ) -> None:
        """Is an issue ready to send? DNS (SPF, DKIM, DMARC, MX), links, images, clients, spam score."""
        compiled = compile_ref(issue)
        warn_tracked_lists(compiled.config)
        report = run_check(compiled, CheckOptions(dns=dns, offline=offline, smtp_url=smtp, timeout=timeout))
        show_check(report)
        if not report.passed:
            raise typer.Exit(1)
