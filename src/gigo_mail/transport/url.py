"""The SMTP URL and the endpoint every connection of a run shares.

Kept apart from the connection itself: ``check``, ``campaign`` and the CLI read and
show the URL (and make the TLS context) long before, or without, any SMTP session.
"""

from __future__ import annotations

import functools
import socket
import ssl
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from gigo_mail.config import Smtp
from gigo_mail.errors import ConfigError
from gigo_mail.net import is_loopback


@dataclass(frozen=True)
class SmtpUrl:
    """A parsed ``smtp://`` or ``smtps://`` URL. Never holds the password."""

    scheme: str  # "smtp" or "smtps"
    host: str
    port: int
    user: str | None

    @property
    def is_loopback(self) -> bool:
        return is_loopback(self.host)

    @property
    def tls(self) -> str:
        """"implicit" (smtps), "starttls" (required), or "opportunistic" (loopback)."""
        if self.scheme == "smtps":
            return "implicit"
        return "opportunistic" if self.is_loopback else "starttls"

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{user}{host}:{self.port}"


def parse_smtp_url(url: str) -> SmtpUrl:
    """Parse smtp://user@host:587, smtps://user@host:465 or smtp://127.0.0.1:1025.

    A password in the URL is refused: it would end up in shell history and config files.
    """
    try:
        parts = urlsplit(url.strip())
    except ValueError as exc:  # "smtp://[::1": an unclosed IPv6 bracket
        raise ConfigError(f"SMTP URL '{url}' is malformed ({exc}); write smtp://HOST:PORT, "
                          "an IPv6 address in brackets: smtp://[::1]:25") from None
    if parts.scheme not in ("smtp", "smtps"):
        raise ConfigError(f"SMTP URL '{url}' must start with smtp:// or smtps://")
    if parts.password is not None:
        raise ConfigError(f"SMTP URL for {parts.hostname} contains a password; remove it and set "
                          "GIGO_SMTP_PASSWORD instead")
    if not parts.hostname:
        raise ConfigError(f"SMTP URL '{url}' has no host")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"SMTP URL '{url}' has an invalid port") from None
    if port == 0:
        raise ConfigError(f"SMTP URL '{url}' has port 0; give the server's port (587, 465, 25, ...)")
    port = port or (465 if parts.scheme == "smtps" else 587)
    user = unquote(parts.username) if parts.username else None
    return SmtpUrl(parts.scheme, parts.hostname, port, user)


@functools.cache
def make_tls_context(cafile: str | None = None) -> ssl.SSLContext:
    """A verifying client context; ``cafile`` adds a private CA (GIGO_SMTP_CAFILE)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if cafile:
        try:
            context.load_verify_locations(cafile=cafile)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load CA file {cafile}: {exc}; fix GIGO_SMTP_CAFILE") from exc
    return context


@functools.cache
def _local_hostname() -> str:
    name = socket.getfqdn()
    return name if name and name != "localhost" and "." in name else "localhost.localdomain"


@dataclass
class RunState:
    """What the run's connections learn about the server, shared by all of them: a server
    that offers CHUNKING but refuses BDAT gets DATA for the rest of the run. ``notes`` are
    one-line facts for the sender to show once."""

    no_chunking: bool = False
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


@dataclass(frozen=True)
class SmtpEndpoint:
    """Everything a connection needs; shared by every connection of a run."""

    url: SmtpUrl
    password: str | None = None
    timeout: float = Smtp.timeout  # every command but the final dot
    data_timeout: float = Smtp.data_timeout  # the reply to the final dot (RFC 5321 4.5.3.2.6)
    cafile: str | None = None
    local_hostname: str | None = None
    in_flight: int = Smtp.in_flight  # [smtp] in_flight: BDAT transactions on the wire at once per connection
    run: RunState = field(default_factory=RunState, compare=False, repr=False)

    @property
    def where(self) -> str:
        return f"{self.url.host}:{self.url.port}"

    def tls_context(self) -> ssl.SSLContext:
        return make_tls_context(self.cafile or None)
