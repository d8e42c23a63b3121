"""Every environment variable gigo-mail reads, read here and nowhere else.

Secrets (the SMTP password, the unsubscribe secret, DKIM keys) come from here, a file or a
prompt, never from a command-line argument. Where a value from the environment
ranks against gigo-mail.toml and the command line is decided in ``config``.
"""

from __future__ import annotations

import os
import sys

SMTP_URL = "GIGO_SMTP_URL"
SMTP_PASSWORD = "GIGO_SMTP_PASSWORD"
SMTP_CAFILE = "GIGO_SMTP_CAFILE"
UNSUBSCRIBE_SECRET = "GIGO_UNSUBSCRIBE_SECRET"
SYNC_CAFILE = "GIGO_SYNC_CAFILE"
IMAP_PASSWORD = "GIGO_IMAP_PASSWORD"
IMAP_CAFILE = "GIGO_IMAP_CAFILE"
CHROMIUM = "GIGO_CHROMIUM"
DKIM_KEY = "GIGO_DKIM_KEY"  # the RSA private key's PEM text, instead of [dkim] key_file
DKIM_ED25519_KEY = "GIGO_DKIM_ED25519_KEY"


def get(name: str) -> str:
    """The variable's value, stripped; '' when unset."""
    return os.environ.get(name, "").strip()


def smtp_url() -> str:
    return get(SMTP_URL)


def smtp_password() -> str:
    return os.environ.get(SMTP_PASSWORD, "")  # as written: a password may end in a space


def smtp_cafile() -> str:
    return get(SMTP_CAFILE)


def unsubscribe_secret() -> str:
    return os.environ.get(UNSUBSCRIBE_SECRET, "")


def sync_cafile() -> str:
    return get(SYNC_CAFILE)


def imap_password() -> str:
    return os.environ.get(IMAP_PASSWORD, "")  # as written


def imap_cafile() -> str:
    return get(IMAP_CAFILE)


def chromium() -> str:
    return get(CHROMIUM)


def has_display() -> bool:
    """False on a Linux box with no graphical session, where a browser cannot appear."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True
