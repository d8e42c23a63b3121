"""Which refusals say the mailbox is gone: the one rule for a reply at RCPT (the send path)
and for a failure a bounce reports later (the answers), so that both suppress the same readers."""

from __future__ import annotations

import re

__all__ = ["GONE_CODES", "enhanced_code", "hard_bounce_reason", "mailbox_gone", "says_gone"]

GONE_CODES = frozenset({"5.1.1", "5.1.2", "5.1.10", "5.2.1"})
_ENHANCED = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
# Plain-text equivalents, as common MTAs word them (Postfix, Exim, Sendmail, Exchange, Gmail...).
_GONE_TEXT = re.compile(
    r"user unknown|unknown user|no such (?:user|recipient|mailbox|person|account|address)"
    r"|(?:recipient|addressee|mailbox|user) (?:unknown|not found)|unknown (?:recipient|mailbox)"
    r"|(?:mailbox|user|account|address|recipient)(?: name)? (?:does not|doesn't|does no longer) exist"
    r"|(?:mailbox|account) (?:is )?(?:disabled|deactivated|inactive|closed)|invalid (?:recipient|mailbox)"
    r"|host (?:or domain name )?not found|domain (?:does not exist|not found)|null mx",
    re.IGNORECASE)


def enhanced_code(text: str) -> str | None:
    """The first enhanced status code (``5.1.1``) in a reply's text, if any."""
    match = _ENHANCED.search(text)
    return ".".join(match.groups()) if match else None


def says_gone(text: str) -> bool:
    """Whether a failure's words say the mailbox does not exist (or is disabled): its enhanced
    code is one of GONE_CODES, or, with no enhanced code, its text says so."""
    enhanced = enhanced_code(text)
    if enhanced is not None:
        return enhanced in GONE_CODES
    return _GONE_TEXT.search(text) is not None


def mailbox_gone(code: int | None, text: str) -> bool:
    """Whether an SMTP refusal says the mailbox is gone: a 5xx that :func:`says_gone`. The bounce
    processor applies the same words to a reported permanent failure (:attr:`Failure.mailbox_gone`)."""
    if code is None or not 500 <= code <= 599:
        return False
    return says_gone(text)


def hard_bounce_reason(code: int | None, text: str) -> str | None:
    """The suppression reason for a refusal that means the mailbox is gone, else None:
    ``bounced: 550 5.1.1 <ann@example.org>: Recipient address rejected: User unknown``."""
    if not mailbox_gone(code, text):
        return None
    return f"bounced: {code} {' '.join(text.split())}"
