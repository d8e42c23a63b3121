"""The built-in capture inbox: a local SMTP server that keeps every message in a Maildir.

Why: whoever clones a newsletter repo can run the real send against it with no
SMTP account and see exactly what each subscriber would receive (like Mailpit),
then open the Maildir with any mail client. It accepts any recipient, accepts
any login (so a config with a user name works too), and never relays.

Chaos mode (``fail_rate``) answers a fraction of RCPT (or DATA) commands with a
chosen code, to rehearse a send against a flaky server. Whether an attempt fails
depends only on (seed, command, address, attempt number), so with a seed the same
recipients fail the same way however many connections the sender opens.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import threading
import weakref
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # aiosmtpd is imported when an inbox starts, not for every command
    from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from gigo_mail.config import STATE_DIR, find_root
from gigo_mail.errors import listen_failure
from gigo_mail.net import INBOX_HOST, INBOX_PORT
from gigo_mail.web.inbox_maildir import (
    CapturedMessage,
    InboxError,
    MaildirWriter,
    captured_from_head,
    clear,
    list_messages,
    load_message,
    message_parts,
    message_path,
    related_part,
)

__all__ = [
    "CapturedMessage", "InboxError", "InboxServer", "clear", "list_messages", "load_message",
    "message_parts", "message_path", "related_part", "default_maildir",
]

log = logging.getLogger(__name__)

DEFAULT_HOST = INBOX_HOST
DEFAULT_PORT = INBOX_PORT
INBOX_DIR = "inbox"
FAIL_ON = ("rcpt", "data")
_MAX_MESSAGE = 64 * 1024 * 1024


def default_maildir(root: Path | None = None) -> Path:
    """<root>/.gigo/inbox: where the inbox stores mail unless told otherwise."""
    return find_root(root) / STATE_DIR / INBOX_DIR


class Chaos:
    """Decides which commands get the injected failure code."""

    def __init__(self, rate: float, code: int, seed: int | str | None, on: str) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fail_rate must be between 0 and 1, not {rate}")
        if not 400 <= code <= 599:
            raise ValueError(f"fail_code must be a 4xx or 5xx SMTP code, not {code}")
        if on not in FAIL_ON:
            raise ValueError(f"fail_on must be one of {FAIL_ON}, not {on!r}")
        self.rate = rate
        self.code = code
        self.on = on
        self.seed = secrets.token_hex(8) if seed is None else str(seed)
        self._attempts: Counter[str] = Counter()
        self.injected = 0

    def verdict(self, command: str, key: str) -> str | None:
        """The failure reply for this attempt, or None to let it through."""
        if self.rate <= 0.0 or command != self.on:
            return None
        key = key.lower()
        attempt = self._attempts[key]
        self._attempts[key] = attempt + 1
        digest = hashlib.blake2b(f"{self.seed}\0{command}\0{key}\0{attempt}".encode(),
                                 digest_size=8).digest()
        if int.from_bytes(digest, "big") / 2.0**64 >= self.rate:
            return None
        self.injected += 1
        kind = "temporary" if self.code < 500 else "permanent"
        what = f"<{key}>" if command == "rcpt" else "this message"
        reply = (f"{self.code} {self.code // 100}.0.0 gigo-mail inbox chaos mode: simulated {kind} "
                 f"failure for {what} (--fail-rate {self.rate:g})")
        if self.code == 421:
            reply += "; closing connection"
        return reply


def _accept_any_login(*_: Any) -> AuthResult:
    """The inbox needs no login, but accepts one so a config with a user name works."""
    from aiosmtpd.smtp import AuthResult

    return AuthResult(success=True)


@cache
def _inbox_smtp() -> type[SMTP]:
    from aiosmtpd.smtp import SMTP

    class _InboxSMTP(SMTP):
        async def push(self, status: Any) -> None:
            await super().push(status)
            # RFC 5321: 421 means the server closes the channel; chaos mode honours that.
            if str(status).startswith("421") and self.transport is not None:
                self.transport.close()

    return _InboxSMTP


class _Handler:
    def __init__(self, server: InboxServer) -> None:
        self.server = server

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        reply = self.server.chaos.verdict("rcpt", address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return self.server._store(session, envelope)


class InboxServer:
    """A local SMTP server storing every message it gets in ``maildir``.

    Use ``start()``/``stop()`` (runs in a background thread; also a context
    manager) or ``async with`` (runs on the caller's event loop). ``port=0``
    picks a free port; ``.port`` has the real one once started.
    """

    def __init__(self, maildir: Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                 fail_rate: float = 0.0, fail_code: int = 451, seed: int | str | None = None,
                 on_message: Callable[[CapturedMessage], None] | None = None,
                 *, fail_on: str = "rcpt") -> None:
        self.maildir = Path(maildir)
        self.host = host
        self.requested_port = port
        self.chaos = Chaos(fail_rate, fail_code, seed, fail_on)
        self.on_message = on_message
        self.received = 0
        self._writer = MaildirWriter(self.maildir)
        self._server: asyncio.AbstractServer | None = None
        self._port: int | None = None
        self._protocols: weakref.WeakSet[SMTP] = weakref.WeakSet()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the inbox is not started")
        return self._port

    @property
    def url(self) -> str:
        """The [smtp] url a sender should use to reach this inbox."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"smtp://{host}:{self.port}"

    # -- receiving -------------------------------------------------------------------------
    def _make_protocol(self) -> SMTP:
        protocol = _inbox_smtp()(
            _Handler(self), loop=self._loop, enable_SMTPUTF8=True, decode_data=False,
            hostname="gigo-mail-inbox", ident="gigo-mail inbox", data_size_limit=_MAX_MESSAGE,
            authenticator=_accept_any_login, auth_require_tls=False,
        )
        self._protocols.add(protocol)
        return protocol

    def _store(self, session: Session, envelope: Envelope) -> str:
        reply = self.chaos.verdict("data", ",".join(sorted(envelope.rcpt_tos)))
        if reply:
            return reply
        content = envelope.original_content or b""
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer or "")
        try:
            key, stored = self._writer.deliver(
                content, mail_from=envelope.mail_from or "", recipients=list(envelope.rcpt_tos),
                helo=session.host_name or "", peer=peer)
        except OSError as exc:
            return f"451 4.3.0 gigo-mail inbox cannot store the message in {self.maildir}: {exc.strerror}"
        self.received += 1
        if self.on_message is not None:
            head_end = stored.find(b"\n\n")
            head = stored if head_end < 0 else stored[: head_end + 1]
            captured = captured_from_head(key, head, len(stored), datetime.now().astimezone(),
                                          self.maildir / "new" / key)
            try:
                self.on_message(captured)
            except Exception:  # a broken callback must not lose the sender's message
                log.exception("on_message callback failed for %s", key)
        return f"250 2.0.0 OK: queued as {key}"

    # -- async lifecycle -------------------------------------------------------------------
    async def _open(self) -> None:
        self._writer.ensure()
        self._loop = asyncio.get_running_loop()
        try:
            self._server = await self._loop.create_server(self._make_protocol, self.host,
                                                          self.requested_port)
        except OSError as exc:
            where = f"{self.host}:{self.requested_port}"
            raise InboxError(listen_failure(exc, where, "is another inbox running?")) from exc
        self._port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for protocol in list(self._protocols):
            if protocol.transport is not None:
                protocol.transport.close()
        await self._server.wait_closed()
        await asyncio.sleep(0)  # let the closed connections' handlers unwind
        self._server = None

    async def __aenter__(self) -> InboxServer:
        await self._open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._close()

    # -- threaded lifecycle ----------------------------------------------------------------
    def start(self) -> None:
        """Listen in a background thread; returns once the port is bound (InboxError if not)."""
        if self._thread is not None:
            raise RuntimeError("the inbox is already started")
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._open())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._close())
                _cancel_pending(loop)
                loop.close()

        self._thread = threading.Thread(target=run, name="gigo-mail-inbox", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]

    def stop(self) -> None:
        """Stop listening, close open connections, and wait for the thread to end."""
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._thread = None

    def __enter__(self) -> InboxServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _cancel_pending(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
