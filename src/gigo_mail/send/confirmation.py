"""The double opt-in mail: its link's token, its bytes, and the page's background mailer.

The token in ``.../confirm?token=...`` names a pending signup by a random id and carries its
expiry, both signed (HMAC-SHA256 under the newsletter's secret, its own context); nothing in
it reads as an address. The mail names the sender and says why it came, holds that one link
and no advertising (OLG München 29 U 1682/12), and is DKIM-signed like any issue
(``send.dkim.signer_for``), sent through ``[smtp]``.

The page never sends while a request waits: a signup queues its mail and answers at once, so
the answer takes the same time whether a mail goes out or not (no membership oracle by
timing), and a slow relay cannot tie up the page's threads.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import os
import queue
import struct
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from email.utils import format_datetime, make_msgid, parseaddr

from gigo_mail.config import Config
from gigo_mail.env import smtp_password
from gigo_mail.errors import ConfigError, GigoError, TokenError
from gigo_mail.send.dkim import DkimSigner, signer_for
from gigo_mail.transport import SmtpEndpoint, SmtpTransport, parse_smtp_url

_CONTEXT = b"gigo-mail confirm v1\x00"
ID_BYTES = 16
MAC_BYTES = 16
QUEUE_LIMIT = 1000  # mails waiting at once; more are dropped (the answer is the same either way)
log = logging.getLogger("gigo_mail.signup")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:
        raise ValueError("not canonical")
    return data


def new_pending_id() -> str:
    return _b64(os.urandom(ID_BYTES))


def make_confirm_token(secret: bytes, pending_id: str, expires: int) -> str:
    """``<id and expiry>.<mac>``, URL-safe; the id is random, so no address can be read from it."""
    body = _unb64(pending_id) + struct.pack(">I", expires)
    mac = hmac.new(secret, _CONTEXT + body, hashlib.sha256).digest()[:MAC_BYTES]
    return f"{_b64(body)}.{_b64(mac)}"


def verify_confirm_token(secret: bytes, token: str, now: float | None = None) -> str:
    """The pending id of a valid, unexpired token; TokenError otherwise."""
    if len(token) > 200 or token.count(".") != 1:
        raise TokenError("this confirmation link is not valid: it is malformed")
    body_part, mac_part = token.split(".")
    try:
        body, mac = _unb64(body_part), _unb64(mac_part)
    except (ValueError, binascii.Error):
        raise TokenError("this confirmation link is not valid: it is malformed") from None
    expected = hmac.new(secret, _CONTEXT + body, hashlib.sha256).digest()[:MAC_BYTES]
    if len(body) != ID_BYTES + 4 or not hmac.compare_digest(mac, expected):
        raise TokenError("this confirmation link is not valid: its signature does not match")
    (expires,) = struct.unpack(">I", body[ID_BYTES:])
    if expires < (time.time() if now is None else now):
        raise TokenError("this confirmation link has expired: sign up again for a new one")
    return _b64(body[:ID_BYTES])


def confirmation_message(config: Config, to: str, link: str, expires: int,
                         signer: DkimSigner | None) -> bytes:
    """The confirmation mail as CRLF bytes, DKIM-signed when ``[dkim]`` is set."""
    n = config.newsletter
    name = n.name or n.from_domain
    msg = EmailMessage()
    msg["From"] = n.from_addr
    msg["To"] = to
    if n.reply_to:
        msg["Reply-To"] = n.reply_to
    msg["Subject"] = f"Confirm your subscription to {name}"
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(domain=n.from_domain)
    msg["Auto-Submitted"] = "auto-generated"
    until = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%d %H:%M UTC")
    sender = parseaddr(n.from_addr)[1]
    lines = [
        "Hello,",
        "",
        f"someone, hopefully you, asked on the {name} website to receive it at this address.",
        "",
        "To confirm, open this link and press the button on the page:",
        "",
        link,
        "",
        f"The link works until {until}. If you did not ask for this, ignore this message:",
        "you will not be added, and nothing more will be sent to you.",
        "",
        "-- ",
        f"{name} <{sender}>",
    ]
    if n.postal_address:
        lines.append(n.postal_address)
    if n.contact:
        lines.append(f"Questions: {n.contact}")
    msg.set_content("\n".join(lines) + "\n", cte="quoted-printable")
    data = msg.as_bytes(policy=SMTPUTF8 if not to.isascii() else SMTP)
    return signer.sign(data) if signer is not None else data


@dataclass(frozen=True)
class _Job:
    to: str
    link: str
    expires: int


class ConfirmationMailer:
    """A daemon thread that sends queued confirmation mails through ``[smtp]``."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._signer = signer_for(config)  # a bad [dkim] stops the page at start, not at the first signup
        url = parse_smtp_url(config.smtp_url())
        if url.user and not smtp_password():
            raise ConfigError(f"{url} needs a password for the confirmation mails: set GIGO_SMTP_PASSWORD "
                              "(the page has no terminal to ask on)")
        self._endpoint = SmtpEndpoint(url=url, password=smtp_password() if url.user else None,
                                      timeout=config.smtp.timeout, data_timeout=config.smtp.data_timeout,
                                      cafile=config.smtp_cafile or None, in_flight=1)
        self._envelope = config.bounces.envelope_base(config.newsletter.from_address)
        self._queue: queue.Queue[_Job | None] = queue.Queue(QUEUE_LIMIT)
        self.sent = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._run, name="gigo-confirmations", daemon=True)
        self._thread.start()

    def submit(self, to: str, link: str, expires: int) -> bool:
        """Queue one mail; False when the queue is full (the mail is not sent)."""
        try:
            self._queue.put_nowait(_Job(to, link, expires))
        except queue.Full:
            return False
        return True

    def join(self, timeout: float = 10.0) -> None:
        """Wait until every queued mail has been tried (tests and shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        self._queue.put(None)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                self._queue.task_done()
                return
            batch = [job]
            while len(batch) < 100:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    self._queue.task_done()
                    break
                batch.append(more)
            try:
                asyncio.run(self._send(batch))
            except Exception as exc:  # the page must keep serving whatever the relay does
                self.failed += len(batch)
                log.warning("confirmation mails not sent: %s", type(exc).__name__)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _send(self, batch: list[_Job]) -> None:
        transport = SmtpTransport(self._endpoint)
        try:
            await transport.open()
        except GigoError as exc:
            self.failed += len(batch)
            log.warning("confirmation mails not sent: %s", exc)
            return
        try:
            for job in batch:
                try:
                    if not transport.is_open:
                        await transport.open()
                    data = confirmation_message(self._config, job.to, job.link, job.expires, self._signer)
                    await transport.send(self._envelope, job.to, data, smtputf8=not job.to.isascii())
                    self.sent += 1
                except GigoError:
                    self.failed += 1  # the reason may quote the address: not logged
        finally:
            await transport.close()
