"""SpamAssassin's local score for the issue as a subscriber receives it.

Only this machine's SpamAssassin is asked (``spamc`` when a spamd answers on
127.0.0.1:783, else ``spamassassin -L``, local rules, no network tests): the message is
never sent to a hosted checker. Without SpamAssassin the check says so and how to get it.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess

from gigo_mail.check.report import Finding
from gigo_mail.compose.compiled import CompiledIssue
from gigo_mail.errors import GigoError
from gigo_mail.lists.reader import sample_subscriber
from gigo_mail.send.message import MessageFactory

SPAM_THRESHOLD = 5.0
WARN_AT = 2.5
TIMEOUT = 120.0
_SUMMARY = re.compile(r"\((-?\d+(?:\.\d+)?) points?, (-?\d+(?:\.\d+)?) required\)")
_RULE = re.compile(r"^\s*(-?\d+\.\d+)\s+([A-Z0-9_]+)\s+(.*)$")
INSTALL_HINT = "install it to see the local score: apt-get install spamassassin (Debian, Ubuntu)"


def _spamd_running() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 783), timeout=0.3).close()
        return True
    except OSError:
        return False


def _command() -> list[str] | None:
    spamc = shutil.which("spamc")
    if spamc and _spamd_running():
        return [spamc, "-R", "-x", "-d", "127.0.0.1"]
    spamassassin = shutil.which("spamassassin")
    if spamassassin:
        return [spamassassin, "-L", "-t"]
    return None


def parse_report(text: str) -> tuple[float, float, list[tuple[float, str, str]]]:
    """(score, threshold, [(points, rule, description)]) from a SpamAssassin report."""
    summary = _SUMMARY.search(text)
    if summary is None:
        raise ValueError("no 'points, required' summary in SpamAssassin's output")
    rules = []
    table = text[summary.end():]
    for line in table.splitlines():
        match = _RULE.match(line)
        if match:
            rules.append((float(match.group(1)), match.group(2), match.group(3).strip()))
        elif rules and line.startswith(" " * 10) and line.strip():
            points, rule, description = rules[-1]  # a wrapped description
            rules[-1] = (points, rule, f"{description} {line.strip()}")
    return float(summary.group(1)), float(summary.group(2)), rules


def check_spam(compiled: CompiledIssue) -> list[Finding]:
    command = _command()
    if command is None:
        return [Finding.skip("spam", "SpamAssassin", f"not installed; {INSTALL_HINT}")]
    try:
        factory = MessageFactory(compiled, secret=b"check")
    except GigoError as exc:  # no From or unsubscribe address: the issue part says so too
        return [Finding.skip("spam", "SpamAssassin", f"no message to score: {exc}")]
    message = factory.build(sample_subscriber("reader@example.org", "Ada Lovelace")).data
    try:
        done = subprocess.run(command, input=message, capture_output=True, timeout=TIMEOUT)
        score, threshold, rules = parse_report(done.stdout.decode("utf-8", "replace"))
    except subprocess.TimeoutExpired:
        return [Finding.skip("spam", "SpamAssassin", f"gave no score within {TIMEOUT:.0f} s")]
    except (OSError, ValueError) as exc:
        return [Finding.skip("spam", "SpamAssassin", f"could not score the message: {exc}")]
    fired = ", ".join(f"{rule} {points:+.1f}" for points, rule, _ in rules if points) or "no rule scored"
    subject = f"score {score:.1f} (spam from {threshold:.1f})"
    if score >= threshold:
        level = Finding.fail
    elif score >= WARN_AT:
        level = Finding.warn
    else:
        level = Finding.ok
    findings = [level("spam", subject, fired)]
    findings += [Finding.ok("spam", rule, f"{points:+.1f} {description}")
                 for points, rule, description in rules if points > 0]
    return findings
