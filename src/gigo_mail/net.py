"""Loopback: the only network gigo-mail listens on, and where plain SMTP is allowed."""

from __future__ import annotations

import ipaddress

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
