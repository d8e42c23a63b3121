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
from gigo_mail.config import STATE_DIR, Dkim, load_config, require_root, shown_path
from gigo_mail.net import dns_name
from gigo_mail.send.dkim import generate_key, public_record, write_key_pair, zone_entry

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
    root = require_root()
    config = load_config(root)
    given = f"gigo{date.today():%Y%m}" + ("e" if ed25519 else "") if selector is None else selector
    selector = dns_name(given, "the selector (--selector)")
    named_domain = domain if domain is not None else config.dkim.domain or config.newsletter.from_domain
    what = "the domain (--domain)" if domain is not None else \
        "the signing domain ([dkim] domain, else the From domain); give --domain"
    domain = dns_name(named_domain, what)
    for shown, ascii_name in ((given, selector), (named_domain, domain)):
        if ascii_name != shown.strip().rstrip(".").lower():
            console.print(f"{escape(shown)} is written [bold]{escape(ascii_name)}[/] in DNS (IDNA A-label)")
    path = out or root / STATE_DIR / f"dkim-{selector}.pem"
    key = generate_key("ed25519" if ed25519 else "rsa")
    public = write_key_pair(path, key)
    record = public_record(key)
    console.print(f"Wrote the private key to [bold]{escape(shown_path(path))}[/] "
                  f"(mode 600; keep it out of git) and the public key to {escape(shown_path(public))}.")
    console.print(f"\nPublish this TXT record at [bold]{escape(selector)}._domainkey.{escape(domain)}[/]:\n")
    console.print(escape(zone_entry(selector, domain, record)), soft_wrap=True)
    try:
        key_file = str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        key_file = str(path)
    lines = _dkim_block(config.dkim, selector, key_file, domain, ed25519,
                        own_domain=domain != config.newsletter.from_domain)
    had = any(getattr(config.dkim, f) for f in ("selector", "key_file", "domain", "ed25519_selector"))
    where = "replace the [dkim] section of" if had else "add to"
    console.print(escape(f"\nThen {where} gigo-mail.toml:\n"))
    console.print(escape("\n".join(lines)), soft_wrap=True)
    console.print(f"\nWhen the record is live: gigo-mail check <issue> (looks up {escape(selector)}"
                  f"._domainkey.{escape(domain)})", style="dim")


def _dkim_block(current: Dkim, selector: str, key_file: str, domain: str, ed25519: bool,
                own_domain: bool) -> list[str]:
    """One whole [dkim] section: the new key's lines with the other key's kept from gigo-mail.toml,
    so pasting it never makes a second [dkim] header (a TOML error)."""
    rsa = ("", "") if ed25519 else (selector, key_file)
    rsa = (current.selector, current.key_file) if ed25519 else rsa
    edd = (selector, key_file) if ed25519 else (current.ed25519_selector, current.ed25519_key_file)
    lines = ["[dkim]"]
    if rsa[0]:
        lines += [f'selector = "{rsa[0]}"', f'key_file = "{rsa[1]}"']
    else:
        lines.append("# selector = ...      an RSA key is needed too: gigo-mail dkim keygen")
    if own_domain or current.domain:
        lines.append(f'domain = "{domain}"')
    if edd[0]:
        lines += [f'ed25519_selector = "{edd[0]}"', f'ed25519_key_file = "{edd[1]}"']
    return lines


def register(app: typer.Typer) -> None:
    app.add_typer(dkim_app, name="dkim")
