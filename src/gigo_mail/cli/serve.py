"""`gigo-mail serve`: the public page (one-click unsubscribe, signup and confirmation, feeds for the
sending machine); `unsubscribe --serve` runs the same page."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from gigo_mail.cli.console import console, until_stopped
from gigo_mail.config import Config, load_config
from gigo_mail.web.public import serve as serve_unsubscribe_page


def serve_public_page(config: Config, host: str, port: int) -> None:
    """`serve` and `unsubscribe --serve`: the public page until Ctrl-C."""

    def ready(url: str) -> None:
        signup = f" and signup at {escape(url.rsplit('/', 1)[0])}/subscribe" if config.signup.enabled else ""
        console.print(f"One-click unsubscribe page at {escape(url)}{signup}; suppressions go to "
                      f"{escape(str(config.state_dir))}. Ctrl-C stops.", soft_wrap=True)
        console.print("Put it behind HTTPS at the address of \\[newsletter] unsubscribe_url.")

    with until_stopped("public page" if config.signup.enabled else "unsubscribe page"):
        serve_unsubscribe_page(config, host, port, ready)


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port.")] = 8026,
) -> None:
    """Run the public page: one-click unsubscribe, signup and confirmation, feeds for the sending machine.

    Signup needs [signup] enabled; /healthz answers the health check. Put HTTPS in front."""
    serve_public_page(load_config(), host, port)


def register(app: typer.Typer) -> None:
    """Add ``serve`` to ``app``."""
    app.command("serve")(serve)
