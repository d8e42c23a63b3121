"""`gigo-mail dkim keygen`: a key pair for DKIM, and the DNS record to publish.

The private key goes to a file only the owner can read; it is never printed.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from gigo_mail.cli.console import console
from gigo_mail.config import STATE_DIR, load_config, require_root, shown_path

dkim_app = typer.Typer(help="DKIM keys for signing every message.", no_args_is_help=True)


@dkim_app.command()
def keygen(
    selector: Annotated[str | None, typer.Option(
        "--selector", help="The DNS name under _domainkey (default gigoYYYYMM, new each rotation).")] = None,
    domain: Annotated[str | None, typer.Option(
        "--domain", help="The signing domain d= (default: the From domain).")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Where to write the private key (default .gigo/dkim-SELECTOR.pem).")] = None,
    ed25519: Annotated[bool, typer.Option(
        "--ed25519", help="An Ed25519 key (RFC 8463) for a second signature beside RSA.")] = False,
) -> None:
    """Write a 2048-bit RSA (or Ed25519) key pair and print the TXT record to publish."""
    from gigo_mail.send.dkim import (  # cryptography, only here
        generate_key,
        public_record,
        write_key_pair,
        zone_entry,
    )

    root = require_root()
    config = load_config(root)
    selector = selector or f"gigo{date.today():%Y%m}" + ("e" if ed25519 else "")
    domain = domain or config.dkim.domain or config.newsletter.from_domain
    path = out or root / STATE_DIR / f"dkim-{selector}.pem"
    key = generate_key("ed25519" if ed25519 else "rsa")
    public = write_key_pair(path, key)
    record = public_record(key)
    console.print(f"Wrote the private key to [bold]{escape(shown_path(path))}[/] "
                  f"(mode 600; keep it out of git) and the public key to {escape(shown_path(public))}.")
    console.print(f"\nPublish this TXT record at [bold]{escape(selector)}._domainkey.{escape(domain)}[/]:\n")
    console.print(escape(zone_entry(selector, domain, record)), soft_wrap=True)
    console.print("\nThen add to gigo-mail.toml:\n")
    try:
        key_file = str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        key_file = str(path)
    prefix = "ed25519_" if ed25519 else ""
    lines = ["[dkim]"] if ed25519 else ["[dkim]", f'selector = "{selector}"', f'key_file = "{key_file}"']
    if ed25519:
        lines += [f'{prefix}selector = "{selector}"', f'{prefix}key_file = "{key_file}"']
    console.print(escape("\n".join(lines)), soft_wrap=True)
    console.print(f"\nWhen the record is live: gigo-mail check <issue> (looks up {escape(selector)}"
                  f"._domainkey.{escape(domain)})", style="dim")


def register(app: typer.Typer) -> None:
    app.add_typer(dkim_app, name="dkim")
