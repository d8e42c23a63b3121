"""Loopback (the only network gigo-mail listens on, and where plain SMTP is allowed), and DNS names."""

from __future__ import annotations

import ipaddress
import re

from gigo_mail.errors import DnsNameError

# Where the capture inbox listens unless told otherwise (the default [smtp] url points there).
INBOX_HOST = "127.0.0.1"
INBOX_PORT = 1025


def is_loopback(host: str) -> bool:
    """True if only this machine can reach ``host``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def dns_name(value: str, what: str) -> str:
    """``value`` as a DNS name in ASCII (IDNA 2008 A-labels for any non-ASCII label: 'bücher' is
    'xn--bcher-kva'), or a DnsNameError naming ``what`` it was meant to be and why it is not one.
    Used where a command writes a name into DNS records or signatures (a DKIM selector, a domain)."""
    import idna  # only the commands that write names need it

    text = value.strip().rstrip(".").lower()
    if not text:
        raise DnsNameError(f"{what} is empty; give a name like 'gigo202611' or 'example.org'")
    try:
        ascii_name = text if text.isascii() else idna.encode(text, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise DnsNameError(f"{what} '{value}' is not a DNS name ({exc}); use letters, digits and hyphens") \
            from None
    bad = [label for label in ascii_name.split(".") if not _LABEL.match(label)]
    if len(ascii_name) > 253:
        raise DnsNameError(f"{what} is not a DNS name: longer than 253 characters")
    if bad:
        which = f" (the part '{bad[0]}')" if "." in ascii_name else ""
        raise DnsNameError(f"{what} '{value}' is not a DNS name{which}: use letters, digits and hyphens, "
                           "1 to 63 between dots, no hyphen at either end")
    return ascii_name
