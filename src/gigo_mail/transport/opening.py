"""Why a connection could not be opened, in one line that says what to do."""

from __future__ import annotations

import socket
import ssl

from gigo_mail.errors import SMTPConnectFailed, SMTPFatalError
from gigo_mail.transport.url import SmtpEndpoint


def _root_cause(exc: BaseException) -> BaseException:
    seen = exc
    while seen.__cause__ is not None:
        seen = seen.__cause__
    return seen


def open_error(endpoint: SmtpEndpoint, exc: BaseException) -> SMTPFatalError:
    """The one line for a connection that could not be opened: fatal (TLS, refused session,
    missing STARTTLS or AUTH) or worth another try (SMTPConnectFailed)."""
    import aiosmtplib

    where, cause = endpoint.where, _root_cause(exc)
    if isinstance(cause, ssl.SSLError) or "SSL" in str(exc):
        reason = getattr(cause, "verify_message", None) or getattr(cause, "reason", None) or cause
        return SMTPFatalError(f"TLS with {where} failed: {reason}; {_tls_hint(endpoint, cause)}")
    if isinstance(cause, socket.gaierror):
        return SMTPConnectFailed(f"cannot resolve SMTP host '{endpoint.url.host}': "
                                 f"{cause.strerror}")
    if isinstance(cause, ConnectionRefusedError):
        return SMTPConnectFailed(f"{where} refused the connection; is the SMTP server running?")
    if isinstance(exc, aiosmtplib.SMTPResponseException) and 400 <= exc.code < 500:
        return SMTPConnectFailed(f"{where} deferred the session: {exc.code} {exc.message}")  # 421 busy
    if isinstance(exc, aiosmtplib.SMTPConnectResponseError):
        return SMTPFatalError(f"{where} refused the session: {exc.code} {exc.message}")
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return SMTPConnectFailed(f"{where} did not answer within {endpoint.timeout:g} s")
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected | OSError):
        return SMTPConnectFailed(f"cannot connect to {where}: {exc}")
    text = getattr(exc, "message", None) or str(exc)
    if "STARTTLS" in text:
        return SMTPFatalError(f"{where} does not offer STARTTLS, which a non-local server needs; "
                              "use smtps://HOST:465 if it offers implicit TLS")
    if "AUTH" in text:
        return SMTPFatalError(f"{where} does not offer AUTH for '{endpoint.url.user}'")
    return SMTPFatalError(f"{where}: {text}")


def _tls_hint(endpoint: SmtpEndpoint, cause: BaseException) -> str:
    """The hint that fits the TLS failure (not always the CA file)."""
    text = f"{getattr(cause, 'verify_message', '')} {getattr(cause, 'reason', '')} {cause}".lower()
    url = endpoint.url
    if "hostname mismatch" in text or "ip address mismatch" in text or "doesn't match" in text:
        return (f"the certificate is not for '{url.host}'; use the host name the certificate names "
                "in the SMTP URL")
    if url.tls == "implicit" and ("wrong version number" in text or "record layer" in text
                                  or "unexpected eof" in text):
        return (f"port {url.port} does not speak TLS from the start; for STARTTLS use "
                f"smtp://{url.host}:{url.port} (or smtps:// on port 465)")
    if "expired" in text:
        return "the server's certificate has expired; the server's admin must renew it"
    return "if the server uses a private CA, set GIGO_SMTP_CAFILE to its certificate"
