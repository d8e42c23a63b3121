"""`gigo-mail preview`: see an issue as subscribers will, in a browser, a terminal or PNGs."""

from __future__ import annotations

import webbrowser
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from gigo_mail.cli.console import console, err_console, until_stopped
from gigo_mail.compose.compile import GMAIL_CLIP_BYTES, build_dir, compile_issue, write_build
from gigo_mail.compose.issue import find_issue
from gigo_mail.config import load_config, shown_path
from gigo_mail.env import has_display
from gigo_mail.send.samples import list_sample_fields


def _open_in_browser(url: str) -> bool:
    if not has_display():
        return False
    try:
        return webbrowser.open(url)
    except webbrowser.Error:
        return False


def _print_build(html_bytes: int, compile_ms: float, warnings: list[str] | tuple[str, ...],
                 errors: list[str] | tuple[str, ...]) -> None:
    """The build's size against Gmail's clip limit, then its errors and warnings (on stderr)."""
    console.print(f"compiled in {compile_ms:.0f} ms: HTML {html_bytes / 1024:.1f} KB "
                  f"({100 * html_bytes / GMAIL_CLIP_BYTES:.0f}% of Gmail's 102 KB clip limit)")
    for line in errors:
        err_console.print(f"[red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
    for line in warnings:
        err_console.print(f"[yellow]warning:[/] {escape(line)}", highlight=False, soft_wrap=True)


def _screenshots(preview_html: Path, out_dir: Path) -> None:
    from gigo_mail.web.screenshot import png_size, require_chromium, take_screenshots  # --screenshot only

    chromium = require_chromium()
    with console.status(f"taking screenshots with {chromium} ..."):
        shots = take_screenshots(preview_html, out_dir, chromium=chromium)
    for path in shots.values():
        width, height = png_size(path)
        console.print(f"wrote {shown_path(path)} ({width}×{height})")
    light, dark = shots.get("desktop"), shots.get("dark")
    if light and dark and light.read_bytes() == dark.read_bytes():
        err_console.print("note: the template has no '@media (prefers-color-scheme: dark)' styles, "
                          f"so {dark.name} looks like {light.name}", soft_wrap=True)


def _serve(root: Path, ref: str, port: int, maildir: Path | None, open_browser: bool) -> None:
    from gigo_mail.web.preview import IssueBuilder, PreviewState, Watcher  # the live server: --serve only
    from gigo_mail.web.preview_http import start_server

    builder = IssueBuilder(root, ref)
    inbox = maildir if maildir is not None else load_config(root).state_dir / "inbox"

    def announce(state: PreviewState) -> None:
        if state.error:
            err_console.print(f"[red]compile failed:[/] {escape(state.error)}", soft_wrap=True)
        elif state.current is not None:
            console.print(f"rebuilt {state.current.key} in {state.last_build_ms:.0f} ms "
                          f"(version {state.version})")

    state = PreviewState(builder.build)
    server = start_server(state, port, inbox)  # before compiling: a taken port fails fast
    state.rebuild()
    if state.error:
        err_console.print(f"[red]compile failed:[/] {escape(state.error)} (fix it; the page updates on save)",
                          soft_wrap=True)
    elif state.current is not None:
        current = state.current
        _print_build(current.html_bytes, current.compile_ms, current.warnings, current.errors)
    state.on_change = announce
    watcher = Watcher(state, builder.watch_paths, inbox)
    watcher.start()
    with until_stopped("preview server"):
        try:
            console.print(f"previewing {builder.issue.key} at [bold]{server.url}[/] "
                          f"(inbox: {server.url}inbox)")
            console.print(f"watching {shown_path(builder.issue.path)}, templates/ and gigo-mail.toml; "
                          "Ctrl-C stops")
            if open_browser:
                _open_in_browser(server.url)
            server.serve_forever(poll_interval=0.25)
        finally:
            watcher.stop()
            server.stopping = True
            state.wake_all()
            server.server_close()


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""

    @app.command()
    def preview(
        issue: Annotated[str, typer.Argument(help="Issue number (011 or 11) or path to its file.")],
        no_open: Annotated[bool, typer.Option(
            "--no-open", help="Only write build/ISSUE/ files and print their paths.")] = False,
        text: Annotated[bool, typer.Option(
            "--text", help="Print the plain-text part to the terminal.")] = False,
        serve: Annotated[bool, typer.Option(
            "--serve", help="Serve a live-reloading preview (desktop, mobile, text, source, report, "
                            "inbox) on 127.0.0.1.")] = False,
        port: Annotated[int, typer.Option(
            "--port", min=0, max=65535, help="Port for --serve (0 = any free port).")] = 8025,
        screenshot: Annotated[bool, typer.Option(
            "--screenshot",
            help="Write desktop, mobile and dark PNGs to build/ISSUE/ (needs Chromium).")] = False,
        maildir: Annotated[Path | None, typer.Option(
            "--maildir", help="Inbox folder shown at /inbox (default .gigo/inbox).")] = None,
    ) -> None:
        """Compile an issue with sample subscriber values and show it.

        Opens the result in your browser; --no-open only writes the files, --text prints the plain
        text, --serve keeps a live preview running while you edit, --screenshot writes PNGs.
        """
        config = load_config(required=True)
        if text or screenshot or not serve:
            found = find_issue(config.root, issue)
            compiled = compile_issue(config, found, sample=list_sample_fields(config))
            if text:
                typer.echo(compiled.preview_text().rstrip("\n"))
            if screenshot or not (text or serve):
                out_dir = build_dir(compiled)
                paths = write_build(compiled, out_dir)
                report = compiled.report
                _print_build(report.html_bytes, report.compile_ms, report.warnings, report.errors)
                for path in paths.values():
                    console.print(f"wrote {shown_path(path)}")
                if screenshot:
                    _screenshots(paths["preview"], out_dir)
                elif not no_open and not _open_in_browser(paths["preview"].resolve().as_uri()):
                    console.print("no browser to open here; open the file above yourself "
                                  "(or use --serve and visit the URL it prints)", soft_wrap=True)
        if serve:
            _serve(config.root, issue, port, maildir, open_browser=not no_open)
