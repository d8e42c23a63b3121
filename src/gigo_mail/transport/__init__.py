"""Transports: where built messages go (an SMTP server, or .eml files for a dry run).

One protocol (``protocol``), one module per destination: ``smtp`` (one persistent SMTP
connection; the engine runs a pool of them), ``files`` (.eml files for dry runs), ``memory``
(kept in a list, for tests and programs that need no socket). ``url`` parses the SMTP URL
and makes the TLS context, ``replies`` says whom a refusal is about, ``gone`` which refusals
mean the mailbox is gone, ``wire`` reads replies. Their public names are imported here.
"""

from __future__ import annotations

from gigo_mail.errors import SMTPConnectFailed
from gigo_mail.transport.files import FileTransport
from gigo_mail.transport.memory import MemoryTransport
from gigo_mail.transport.protocol import BeforeCommit, Envelope, Transport
from gigo_mail.transport.replies import enhanced_status
from gigo_mail.transport.smtp import SmtpTransport
from gigo_mail.transport.url import SmtpEndpoint, SmtpUrl, make_tls_context, parse_smtp_url
from gigo_mail.transport.wire import Reply, dot_stuff

__all__ = [
    "BeforeCommit",
    "FileTransport",
    "MemoryTransport",
    "Reply",
    "SMTPConnectFailed",
    "SmtpEndpoint",
    "SmtpTransport",
    "SmtpUrl",
    "Envelope",
    "Transport",
    "dot_stuff",
    "enhanced_status",
    "make_tls_context",
    "parse_smtp_url",
]
