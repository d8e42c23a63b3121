"""Named errors: every user-facing failure is a GigoError with a one-line message.

The CLI prints ``str(error)`` and exits 1; nothing below the CLI prints. Messages say
what happened and, where it helps, what to do next. The tree (``test_errors`` keeps it
true)::

    GigoError
    ├── ConfigError                 gigo-mail.toml missing, unreadable, or a wrong value
    ├── IssueNotFound               the issue named does not exist
    ├── IssueError                  an issue file is malformed
    ├── TemplateError               Jinja2 failed (file:line)
    ├── CompileError                MJML or CSS inlining failed
    ├── SubscriberListError         the list cannot be used at all
    │   ├── ListFormatError         its header fits no known format
    │   ├── UnclearOptOutError      an opt-out-looking value no rule explains: stop and ask
    │   └── NobodyToSendError       the list leaves nobody to mail (counts per reason)
    ├── SegmentError                a --where / --tag that does not parse or fit the list
    ├── JournalError                the delivery journal cannot be opened or written
    ├── TokenError                  an unsubscribe token that does not verify
    ├── DkimError                   a DKIM key missing or unusable
    ├── DnsNameError                a selector or domain that is not a DNS name
    ├── CheckError                  a preflight that could not run at all
    ├── SyncError                   suppressions not pulled from (or served to) the page
    ├── MailSourceError             the mailbox where answers arrive cannot be read
    ├── SMTPError
    │   ├── SMTPFatalError          stops the run: login, TLS, relay
    │   │   ├── SMTPConnectFailed   the server could not be reached
    │   │   └── SMTPSessionRefused  a refusal about the session, charged to nobody
    │   └── SMTPResponseError       one recipient's transaction: (code, text)
    │       ├── SMTPTransientError  4xx or dropped before the dot: retry
    │       ├── SMTPUncertainError  no reply after the final dot: maybe delivered
    │       └── SMTPPermanentError  5xx: this recipient failed
    ├── ConfirmationRequired        a list send needs a yes and nobody can answer
    ├── PublishError                the site cannot be built (a remote image not fetched)
    ├── PreviewError, InboxError, InboxUnavailable, ScreenshotError, ScaffoldError

Below the errors a user sees, the wire reader's own ``transport.wire.WireClosed``
(a ``ConnectionError``) and ``WireTimeout`` (also a ``TimeoutError``) never leave the
SMTP transport: it turns them into the SMTP errors above.
"""

from __future__ import annotations

import errno


class GigoError(Exception):
    """Base class: a problem the user can fix; shown as one line, no traceback."""

    exit_code = 1


class ConfigError(GigoError):
    """gigo-mail.toml is missing, unreadable, or lacks a required value."""


class IssueNotFound(GigoError):
    """The issue named on the command line does not exist."""


class IssueError(GigoError):
    """An issue file is malformed (front matter, missing field, ...)."""


class TemplateError(GigoError):
    """Jinja2 failed; the message names the template file and line."""


class CompileError(GigoError):
    """MJML or CSS inlining failed."""


class SubscriberListError(GigoError):
    """The subscriber CSV cannot be used at all (no email column, unreadable)."""


class JournalError(GigoError):
    """The delivery journal cannot be opened or written."""


class TokenError(GigoError):
    """An unsubscribe token is malformed or its signature does not verify."""


class DkimError(GigoError):
    """A DKIM key is missing, unreadable or unusable."""


class DnsNameError(GigoError):
    """A name a command writes into DNS (a DKIM selector, a domain) is not a DNS name."""


class CheckError(GigoError):
    """A preflight check could not run at all (a bad --dns, a resolver that never answers)."""


class SyncError(GigoError):
    """Suppressions could not be pulled from (or served to) the unsubscribe endpoint."""


class MailSourceError(GigoError):
    """The mailbox where answers arrive cannot be read (IMAP login, TLS, missing folder)."""


class SMTPError(GigoError):
    """Base for SMTP problems."""


class SMTPFatalError(SMTPError):
    """A failure that stops the whole run at once: login refused, TLS failure,
    connection refused, unknown host. Retrying per recipient would only fail
    thousands of recipients one by one."""


class SMTPConnectFailed(SMTPFatalError):
    """The server could not be reached (refused, unknown host, timeout, dropped during
    the greeting). Fatal before the first message; mid-run a worker retries it."""


class SMTPResponseError(SMTPError):
    """A server's reply to one recipient's transaction, kept as (code, text) like
    aiosmtplib's SMTPResponseException; ``code`` is None for a dropped connection."""

    def __init__(self, message: str, code: int | None = None, text: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.text = text


class SMTPSessionRefused(SMTPFatalError):
    """A refusal about the session, not the recipient: MAIL FROM refused, authentication
    required, relaying denied. Recording it per recipient would turn a wrong SMTP URL into
    thousands of bounces; the run stops and nobody is marked failed."""

    def __init__(self, message: str, code: int | None = None, text: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.text = text


class SMTPTransientError(SMTPResponseError):
    """A 4xx reply or a dropped connection before the final dot: worth retrying later.
    ``about_session``: a 4xx about the session (421, a deferred MAIL FROM, "TLS required"),
    to retry on a new connection without charging the recipient a try."""

    def __init__(self, message: str, code: int | None = None, text: str = "", *,
                 timed_out: bool = False, about_session: bool = False) -> None:
        super().__init__(message, code, text)
        self.timed_out = timed_out
        self.about_session = about_session


class SMTPUncertainError(SMTPResponseError):
    """The message went out up to its final dot and no reply came (timeout, dropped
    connection): the server may have queued it. A retry could deliver it twice, so the
    recipient stays uncertain until the user resolves it."""

    def __init__(self, message: str, text: str = "", *, timed_out: bool = False) -> None:
        super().__init__(message, None, text)
        self.timed_out = timed_out


class SMTPPermanentError(SMTPResponseError):
    """A 5xx reply in one recipient's transaction. ``about_recipient`` is True only when
    the reply says it is about the recipient (an X.1.x or X.2.x enhanced status)."""

    def __init__(self, message: str, code: int | None = None, text: str = "", *,
                 about_recipient: bool = False) -> None:
        super().__init__(message, code, text)
        self.about_recipient = about_recipient


class ConfirmationRequired(GigoError):
    """Sending to a list needs a yes (or a password), and there is nobody to ask."""


class PreviewError(GigoError):
    """The preview server cannot start (port taken, not allowed)."""


class InboxError(GigoError):
    """The capture inbox cannot start or cannot store mail (port taken, folder not writable)."""


class InboxUnavailable(GigoError):
    """The preview cannot show the inbox or one of its messages; the text says why (HTTP 404)."""


class ScreenshotError(GigoError):
    """No Chromium to run, or Chromium failed to produce a screenshot."""


class ScaffoldError(GigoError):
    """A new newsletter or issue cannot be created where asked."""


class PublishError(GigoError):
    """The site cannot be built: a remote image to copy into it could not be fetched."""


def listen_failure(exc: OSError, where: str, busy_hint: str) -> str:
    """One line for a server that could not bind ``where`` (host:port)."""
    if exc.errno == errno.EADDRINUSE:
        return f"{where} is already in use ({busy_hint}); pick another port with --port"
    if exc.errno == errno.EACCES:
        return f"not allowed to listen on {where}; use a port above 1023 with --port"
    return f"cannot listen on {where}: {exc.strerror or exc}; check --host and --port"


class ListFormatError(SubscriberListError):
    """A list's header cannot be read as any known format, or the [list] settings do not fit it."""


class UnclearOptOutError(SubscriberListError):
    """A list has values in an opt-out-looking column that no rule explains: stop and ask."""


class NobodyToSendError(SubscriberListError):
    """A list (or its segment) leaves nobody to mail: every row invalid, opted out, suppressed or
    outside the segment, or no rows at all. Exit 1 for ``send``, its dry run and ``subscribers
    check`` alike: nothing the user asked for was done. (A list whose readers all have the issue
    already is done, not empty: exit 0.)"""


class SegmentError(GigoError):
    """A --where expression or --tag does not parse or names a column the list lacks."""
