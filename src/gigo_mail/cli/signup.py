"""CLI for the public page and its signups: `serve`, `subscribers pull`, `consent`, `forget`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from gigo_mail.cli.console import console, facts_table, local_time, until_stopped
from gigo_mail.config import Config, load_config
from gigo_mail.text import number


def serve_public_page(config: Config, host: str, port: int) -> None:
    """`serve` and `unsubscribe --serve`: the public page until Ctrl-C."""
    from gigo_mail.web.public import serve as serve_unsubscribe_page  # the web server only when serving

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


def pull() -> None:
    """Add readers who confirmed on the signup page to [list] path, each once; then send them the
    [signup] welcome issue, if there is one (once each: the journal remembers)."""
    from gigo_mail.journal.deliveries import Journal
    from gigo_mail.send.signups import pull_signups, welcome_list

    config = load_config()
    with Journal.for_root(config.root) as journal:
        result = pull_signups(config, journal)
    where = result.url or "this folder's signup store"
    plural = "s" if result.added != 1 else ""
    console.print(f"Pulled from {escape(where)}: {number(result.added)} new reader{plural} "
                  f"added to {escape(str(result.list_path))}"
                  + (f", {number(result.already)} already there" if result.already else "")
                  + (f", {number(result.rejoined)} rejoined after an unsubscribe" if result.rejoined else "")
                  + (f"; {number(result.kept_suppressed)} stay suppressed (bounce or complaint)"
                     if result.kept_suppressed else "") + ".")
    welcome = welcome_list(config)
    if config.signup.welcome and welcome.exists():
        from gigo_mail.cli.send import run_send
        from gigo_mail.send.campaign import SendRequest

        console.print(f"Welcome issue '{escape(config.signup.welcome)}' for readers who have not had it:")
        code = run_send(SendRequest(ref=config.signup.welcome, list_path=welcome), yes=True)
        if code:
            raise typer.Exit(code)


def consent(email: Annotated[str, typer.Argument(help="The reader's address.")]) -> None:
    """Print the proof of a reader's consent: signup and confirmation time, the consent text, the page."""
    from gigo_mail.send.signups import consent_evidence

    config = load_config()
    records = consent_evidence(config, email)
    if not records:
        console.print(f"No consent is recorded here for {escape(email.strip())}: they did not join through "
                      "the signup page, or, when the page runs elsewhere, have not been pulled yet "
                      "('gigo-mail subscribers pull').", soft_wrap=True)
    for record, text in records:
        table = facts_table()
        table.add_row("address", escape(record.email))
        if record.name:
            table.add_row("name", escape(record.name))
        table.add_row("signed up", f"{escape(record.signup_at)} ({local_time(record.signup_at)})")
        table.add_row("confirmed", f"{escape(record.confirmed_at)} ({local_time(record.confirmed_at)})")
        table.add_row("consent text",
                      f"version {escape(record.consent_version)}, sha256 {record.consent_hash}")
        table.add_row("", escape(text))
        table.add_row("form on page", escape(record.page or "(not known)"))
        table.add_row("network", escape(record.ip or "(not kept: [signup] store_ip is off)"))
        table.add_row("source", escape(record.source))
        console.print(table)


def forget(
    email: Annotated[str, typer.Argument(help="The reader's address.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
) -> None:
    """Erase a reader: the list file, the signup store and the journal's personal fields; a hashed
    suppression stays, so an old export cannot bring them back."""
    from gigo_mail.send.erasure import forget_reader

    if not yes and not typer.confirm(f"Erase {email} everywhere gigo-mail keeps it?", default=False):
        raise typer.Exit(1)
    config = load_config()
    result = forget_reader(config, email)
    console.print(f"Erased: {result.list_rows} list row{'s' if result.list_rows != 1 else ''}, "
                  f"{result.signup_rows} signup record{'s' if result.signup_rows != 1 else ''}, "
                  f"{result.journal_rows} journal row{'s' if result.journal_rows != 1 else ''}; "
                  "a hashed suppression keeps the address from being mailed again.")


def register(app: typer.Typer) -> None:
    """Add ``serve`` to ``app`` (``cli.lists`` adds pull, consent and forget to ``subscribers``)."""
    app.command("serve")(serve)
