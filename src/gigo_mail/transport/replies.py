"""Reply classification: whom an SMTP refusal is about, the session or the recipient.

One module for the one rule, so the transport's state machine only asks and the
engine only acts on the error class it gets.
"""

from __future__ import annotations

import re
from collections import Counter

from gigo_mail.errors import SMTPPermanentError, SMTPSessionRefused, SMTPTransientError
from gigo_mail.transport.gone import mailbox_gone
from gigo_mail.transport.wire import Reply

THROTTLE_CODES = frozenset({421, 450, 451, 454})


_ENHANCED = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})\b")
# Replies that are about the session (who may send, through whom), whatever the recipient.
_SESSION_TEXT = re.compile(r"authenticat|auth(entication)? required|log ?in (first|required)|"
                           r"relay(ing)?( access)? (is )?(denied|not (permitted|allowed))|"
                           r"access denied|sender address rejected|not authori[sz]ed to (relay|send)",
                           re.IGNORECASE)
_SESSION_STATUS = frozenset({(7, 0), (7, 8), (7, 9), (7, 11), (7, 14)})  # RFC 3463/4954/7504 security
_TLS_TEXT = re.compile(r"starttls|tls (is )?required|encryption (is )?required", re.IGNORECASE)


def enhanced_status(text: str) -> tuple[int, int] | None:
    """(subject, detail) of an RFC 3463 enhanced status code at the start of a reply text."""
    match = _ENHANCED.match(text)
    return (int(match.group(2)), int(match.group(3))) if match else None


_AUTH_TEXT = re.compile(r"auth|log ?in", re.IGNORECASE)


def _session_hint(reply: Reply, stage: str) -> str:
    if reply.code == 530 or _AUTH_TEXT.search(reply.text):
        return ("the server wants a login: name the user in the SMTP URL (smtp://USER@HOST:587) "
                "and set GIGO_SMTP_PASSWORD")
    if stage == "MAIL FROM" or "sender" in reply.text.lower():
        return ("the server refused the sender: check [newsletter] from in gigo-mail.toml, and that "
                "your login may send as that address")
    return ("the server will not relay for this session: log in (smtp://USER@HOST:587 with "
            "GIGO_SMTP_PASSWORD) or send through the server meant for your domain")


def _error_for(reply: Reply, stage: str, recipient: str, where: str = "the server"
               ) -> SMTPTransientError | SMTPPermanentError | SMTPSessionRefused:
    """The one place that decides whom a refusal is about.

    5xx to MAIL FROM, 530 and the security statuses (X.7.0 authentication required, ...),
    and texts like "Relay access denied" are about the session: fatal, no recipient is
    charged. X.1.x (address) and X.2.x (mailbox) are about the recipient. Anything else is
    a permanent failure of unknown scope, which the engine's refusal breaker watches.
    A 4xx is about the session on the same terms, or as a 421 or "TLS required"; any other
    4xx (450, 451, 452 to RCPT, a deferred message) is this recipient's to retry.
    """
    text = f"{recipient}: server answered {stage} with {reply}"
    status = enhanced_status(reply.text)
    # A refusal the gone rule reads as "no such mailbox" is not about the session, whatever its words
    # sound like (Exchange Online's "5.4.1 Recipient address rejected: Access denied"); the refusal
    # breaker still watches it like any refusal of unknown scope.
    gone = stage != "MAIL FROM" and mailbox_gone(reply.code, reply.text)
    about_session = not gone and (stage == "MAIL FROM" or reply.code in (421, 530)
                                  or (status is not None and status in _SESSION_STATUS)
                                  or _SESSION_TEXT.search(reply.text) is not None)
    if 400 <= reply.code < 500:
        if about_session or _TLS_TEXT.search(reply.text):
            return SMTPTransientError(f"{where} answered {stage} with {reply}", reply.code, reply.text,
                                      about_session=True)
        return SMTPTransientError(text, reply.code, reply.text)
    if about_session:
        return SMTPSessionRefused(f"{where} answered {stage} with {reply}: {_session_hint(reply, stage)}; "
                                  "no recipient was marked failed", reply.code, reply.text)
    return SMTPPermanentError(text, reply.code, reply.text,
                              about_recipient=status is not None and status[0] in (1, 2))


def common_refusal(refusals: list[tuple[int, str]]) -> tuple[str, int] | None:
    """The permanent refusal (code and enhanced status) most recipients got alike, with its count,
    when it is at least 10 of them and half of all (a code of 0: not a permanent refusal, counted
    among all only): then it was probably about the session (a
    missing login, relaying denied), not them, and they can go back in the queue. Else None."""
    replies = Counter(f"{code} {enhanced}" if (enhanced := text.split(" ", 1)[0]).count(".") == 2
                      else str(code) for code, text in refusals if code)
    if not replies:
        return None
    reply, count = replies.most_common(1)[0]
    return (reply, count) if count >= 10 and count * 2 >= len(refusals) else None
