"""What a send was asked for, and its SMTP connections opened before the rest of the send loads.

Light on purpose: `gigo-mail send` builds its request and opens its connections from here, then
loads the compile cache, the list reader, the journal and the engine while the connections open
(``send.early``), so that a server far away has answered EHLO by the time the plan is counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gigo_mail.config import Config
from gigo_mail.env import smtp_password
from gigo_mail.errors import ConfirmationRequired, GigoError
from gigo_mail.send.early import EarlyConnections
from gigo_mail.transport import SmtpEndpoint, SmtpTransport, SmtpUrl, parse_smtp_url


@dataclass(frozen=True, kw_only=True)
class SendRequest:
    """What the user asked ``gigo-mail send`` for, already parsed."""

    ref: str
    list_path: Path | None = None
    to: tuple[str, ...] = ()  # a test send to these addresses
    dry_run: bool = False
    out: Path | None = None  # dry run: the folder for .eml files
    no_write: bool = False  # dry run: render and count only
    limit: int | None = None
    rate: float | None = None  # None: [smtp] rate
    concurrency: int | None = None  # None: [smtp] concurrency
    smtp: str | None = None  # --smtp URL
    retry_failed: bool = False
    resend_uncertain: bool = False
    offline: bool = False  # do not pull suppressions from [unsubscribe] sync_url first
    tags: tuple[str, ...] = ()  # --tag: rows with any of these tags
    where: str | None = None  # --where: a segment.Segment expression


def password_for(url: SmtpUrl, ask: Callable[[SmtpUrl], str] | None) -> str | None:
    """Env GIGO_SMTP_PASSWORD, else ``ask`` (a hidden prompt); only when the URL names a user."""
    if not url.user:
        return None
    password = smtp_password()
    if password:
        return password
    if ask is None:
        raise ConfirmationRequired(f"{url} needs a password: set GIGO_SMTP_PASSWORD (no terminal to ask on)")
    return ask(url)


def endpoint_for(config: Config, request: SendRequest,
              ask_password: Callable[[SmtpUrl], str] | None) -> tuple[SmtpUrl, SmtpEndpoint]:
    url = parse_smtp_url(config.smtp_url(request.smtp))
    endpoint = SmtpEndpoint(url, password=password_for(url, ask_password), timeout=config.smtp.timeout,
                            data_timeout=config.smtp.data_timeout, cafile=config.smtp_cafile or None,
                            in_flight=max(1, config.smtp.in_flight))
    return url, endpoint


Early = tuple[SmtpUrl, SmtpEndpoint, EarlyConnections]


def open_early(config: Config, request: SendRequest) -> Early | None:
    """A list send that will not ask opens its connections now, overlapping the loading of the send
    path, the compile and the plan; not when the URL is wrong or the password needs a prompt
    (those keep their usual turn). The caller closes them if the send does not start."""
    if request.dry_run or request.to or request.list_path is None:
        return None
    try:
        url, endpoint = endpoint_for(config, request, None)
    except GigoError:
        return None
    count = request.concurrency or config.smtp.concurrency
    return url, endpoint, EarlyConnections(lambda: SmtpTransport(endpoint), count)
