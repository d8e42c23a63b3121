"""Shared fixtures: a real aiosmtpd server on 127.0.0.1 (port 0) that records what it
receives and can misbehave on demand.

Usage::

    def test_x(smtp_server):                       # plain server, default behaviour
        ...smtp_server.url, smtp_server.messages

    def test_y(start_smtp):                        # any options (see SmtpServer)
        server = start_smtp(pipelining=True, password="s3cret", tls="starttls")
        server.handler.rcpt_reply["bob@example.com"] = "550 5.1.1 no such user"

The server runs in its own thread and event loop, so a test may drive it from
asyncio.run() or typer's CliRunner alike.

Also the capture inbox (``inbox``: a real InboxServer and what it received), shared by the
inbox, Maildir and inbox-command tests; and the preview (``site``: a tiny newsletter as the
current folder; ``running``: its live preview served on 127.0.0.1), shared by the preview,
preview HTTP, preview pages and preview-command tests.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import urllib.error
import urllib.request
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from gigo_mail.web.inbox import CapturedMessage, InboxServer
from gigo_mail.web.preview import IssueBuilder, PreviewState
from gigo_mail.web.preview_http import PreviewHTTPServer, start_server
from servers import LoopServer
from support import PREVIEW_CONFIG, PREVIEW_ISSUE

SERVER_NAME = "mx.gigo.test"


@dataclass
class Received:
    """One message as the server saw it."""

    session: int
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    mail_options: list[str]

    def parse(self) -> EmailMessage:
        return message_from_bytes(self.data, policy=policy.default)  # type: ignore[return-value]


@dataclass
class FaultyHandler:
    """aiosmtpd handler that records envelopes and raw bytes, and injects faults."""

    pipelining: bool = False
    # recipient -> reply sent for its RCPT every time (e.g. "550 5.1.1 no such user")
    rcpt_reply: dict[str, str] = field(default_factory=dict)
    # recipient -> [tries left, reply]: reply for the first N RCPTs, then accept
    rcpt_fail_first: dict[str, list[Any]] = field(default_factory=dict)
    # reply to MAIL FROM for the next N transactions overall: [N, "454 4.7.0 TLS required"]
    mail_fail_first: list[Any] | None = None
    # session number -> greeting sent instead of the 220, then the connection is closed
    greeting_reply: dict[int, str] = field(default_factory=dict)
    # reply to the final dot of the first N messages overall, e.g. (3, "451 4.3.0 slow down")
    data_fail_first: tuple[int, str] | None = None
    # abort the connection, unanswered, when a session's message number N+1 arrives
    drop_after: int | None = None
    # where drop_after strikes: "rcpt" (before the final dot), "dot" (after it, message
    # lost) or "kept" (after it, message stored: a queued message whose 250 was lost)
    drop_at: str = "dot"
    # called with the envelope when a message's final dot has arrived, before the reply
    on_data: Callable[[Any], None] | None = None
    messages: list[Received] = field(default_factory=list)
    sessions: int = 0
    rcpt_attempts: Counter[str] = field(default_factory=Counter)
    _per_session: Counter[int] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(self, server: SMTP, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server: SMTP, session: Any, envelope: Any, address: str,
                          mail_options: list[str]) -> str:
        with self._lock:
            pending = self.mail_fail_first
            if pending and pending[0] > 0:
                pending[0] -= 1
                return str(pending[1])
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        with self._lock:
            self.rcpt_attempts[address] += 1
            number = session.gigo_number
            if (self.drop_at == "rcpt" and self.drop_after is not None
                    and self._per_session[number] >= self.drop_after):
                server.transport.abort()
                return "421 gone"
            if address in self.rcpt_reply:
                return self.rcpt_reply[address]
            pending = self.rcpt_fail_first.get(address)
            if pending and pending[0] > 0:
                pending[0] -= 1
                return str(pending[1])
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        number = session.gigo_number
        if self.on_data is not None:
            self.on_data(envelope)
        with self._lock:
            dropping = self.drop_after is not None and self._per_session[number] >= self.drop_after
            if dropping and self.drop_at == "dot":
                server.transport.abort()
                return "421 gone"
            if self.data_fail_first and self.data_fail_first[0] > 0:
                left, reply = self.data_fail_first
                self.data_fail_first = (left - 1, reply)
                return reply
            self._per_session[number] += 1
            self.messages.append(Received(number, envelope.mail_from, list(envelope.rcpt_tos),
                                          bytes(envelope.original_content), list(envelope.mail_options)))
            if dropping and self.drop_at == "kept":
                server.transport.abort()
                return "421 gone"
        return "250 2.0.0 Ok: queued"

    def delivered_to(self) -> Counter[str]:
        """How many times each recipient received a message."""
        return Counter(r for m in self.messages for r in m.rcpt_tos)


class _CountingSMTP(SMTP):
    def __init__(self, handler: FaultyHandler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._gigo_handler = handler

    def _create_session(self) -> Any:
        session = super()._create_session()
        with self._gigo_handler._lock:
            self._gigo_handler.sessions += 1
            session.gigo_number = self._gigo_handler.sessions
        return session

    async def _handle_client(self) -> None:
        refusal = self._gigo_handler.greeting_reply.get(self.session.gigo_number)
        if refusal is None:
            await super()._handle_client()
            return
        await self.push(refusal)
        self.transport.close()


@dataclass
class TlsFiles:
    ca_file: Path
    server_context: ssl.SSLContext


class SmtpServer(LoopServer):
    """aiosmtpd in a background thread on 127.0.0.1, port 0."""

    def __init__(self, handler: FaultyHandler, *, tls: str | None = None, tls_files: TlsFiles | None = None,
                 password: str | None = None, user: str = "ann", smtputf8: bool = True) -> None:
        super().__init__()
        self.handler = handler
        self.tls = tls  # None, "starttls" or "implicit"
        self.tls_files = tls_files
        self.user = user
        self.password = password
        self.smtputf8 = smtputf8

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    @property
    def url(self) -> str:
        scheme = "smtps" if self.tls == "implicit" else "smtp"
        user = f"{self.user}@" if self.password is not None else ""
        return f"{scheme}://{user}{self.host}:{self.port}"

    def _authenticate(self, server: SMTP, session: Any, envelope: Any, mechanism: str,
                      auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == self.user.encode()
              and auth_data.password == (self.password or "").encode())
        return AuthResult(success=ok, handled=False)

    def _factory(self) -> SMTP:
        kwargs: dict[str, Any] = {"hostname": SERVER_NAME, "loop": self._loop,
                                  "enable_SMTPUTF8": self.smtputf8}
        if self.tls == "starttls" and self.tls_files:
            kwargs.update(tls_context=self.tls_files.server_context, require_starttls=True)
        if self.password is not None:
            kwargs.update(authenticator=self._authenticate, auth_required=True, auth_require_tls=False)
        with warnings.catch_warnings():  # AUTH without TLS is deliberate in some tests
            warnings.simplefilter("ignore", UserWarning)
            return _CountingSMTP(self.handler, **kwargs)

    async def _listen(self) -> asyncio.AbstractServer:
        ssl_context = self.tls_files.server_context if self.tls == "implicit" and self.tls_files else None
        return await self._loop.create_server(self._factory, self.host, 0, ssl=ssl_context)


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A trustme CA and a server certificate for 127.0.0.1 / localhost."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca_file = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return TlsFiles(ca_file, context)


@pytest.fixture(scope="session")
def untrusted_tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A server certificate from a CA nobody trusts."""
    import trustme

    rogue = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    rogue.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    trusted = trustme.CA()
    ca_file = tmp_path_factory.mktemp("ca2") / "ca.pem"
    trusted.cert_pem.write_to_path(str(ca_file))
    return TlsFiles(ca_file, context)


@pytest.fixture
def start_smtp() -> Iterator[Callable[..., SmtpServer]]:
    """Factory: start_smtp(pipelining=..., tls=..., tls_files=..., password=..., smtputf8=...)."""
    servers: list[SmtpServer] = []

    def start(*, pipelining: bool = False, **kwargs: Any) -> SmtpServer:
        server = SmtpServer(FaultyHandler(pipelining=pipelining), **kwargs).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def smtp_server(start_smtp: Callable[..., SmtpServer]) -> SmtpServer:
    """A plain local server without PIPELINING."""
    return start_smtp()


@pytest.fixture(params=[False, True], ids=["sequential", "pipelining"])
def any_smtp_server(request: pytest.FixtureRequest, start_smtp: Callable[..., SmtpServer]) -> SmtpServer:
    """The same test against a server with and without PIPELINING."""
    return start_smtp(pipelining=request.param)


@pytest.fixture
def inbox(tmp_path: Path) -> Iterator[tuple[InboxServer, list[CapturedMessage]]]:
    seen: list[CapturedMessage] = []
    server = InboxServer(tmp_path / "inbox", port=0, on_message=seen.append)
    with server:
        yield server, seen


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny newsletter using the built-in template, as the current folder."""
    root = tmp_path / "site"
    (root / "issues").mkdir(parents=True)
    (root / "gigo-mail.toml").write_text(PREVIEW_CONFIG, encoding="utf-8")
    (root / "issues" / "007.md").write_text(PREVIEW_ISSUE, encoding="utf-8")
    monkeypatch.chdir(root)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    return root


@dataclass
class Running:
    server: PreviewHTTPServer
    state: PreviewState
    builder: IssueBuilder
    maildir: Path

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
        request = urllib.request.Request(self.server.url.rstrip("/") + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, dict(response.headers), response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read().decode("utf-8", "replace")


@pytest.fixture
def running(site: Path) -> Iterator[Running]:
    builder = IssueBuilder(site, "7")
    state = PreviewState(builder.build)
    maildir = site / ".gigo" / "inbox"
    server = start_server(state, 0, maildir)
    state.rebuild()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Running(server, state, builder, maildir)
    finally:
        server.stopping = True
        state.wake_all()
        server.shutdown()
        server.server_close()
        thread.join(5)


class StalledServer(LoopServer):
    """A bare SMTP server on 127.0.0.1 (port 0) that answers every command up to the final
    dot and then stalls: forever (``reply_delay`` None) or for ``reply_delay`` seconds before
    its 250. ``stall_at="greeting"`` stalls before the greeting instead. ``received`` lists
    the recipient of every message it read to the final dot."""

    def __init__(self, *, stall_at: str = "dot", reply_delay: float | None = None) -> None:
        super().__init__()
        self.stall_at = stall_at
        self.reply_delay = reply_delay
        self.received: list[str] = []
        self.sessions = 0
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    async def _stall(self, seconds: float | None) -> None:
        await asyncio.sleep(seconds if seconds is not None else 3600)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self._lock:
            self.sessions += 1
        try:
            if self.stall_at == "greeting":
                await self._stall(None)
            writer.write(b"220 stalled.test ESMTP\r\n")
            recipient = ""
            while line := await reader.readline():
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    writer.write(b"250-stalled.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
                elif verb == b"RCPT":
                    recipient = line.decode().split("<", 1)[1].split(">", 1)[0]
                    writer.write(b"250 OK\r\n")
                elif verb == b"DATA":
                    writer.write(b"354 go on\r\n")
                    while await reader.readline() not in (b".\r\n", b""):
                        pass
                    with self._lock:
                        self.received.append(recipient)
                    await self._stall(self.reply_delay)
                    writer.write(b"250 2.0.0 queued at last\r\n")
                elif verb == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    break
                else:
                    writer.write(b"250 OK\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()



@pytest.fixture
def start_stalled() -> Iterator[Callable[..., StalledServer]]:
    """Factory: start_stalled(stall_at="dot" | "greeting", reply_delay=None | seconds)."""
    servers: list[StalledServer] = []

    def start(**kwargs: Any) -> StalledServer:
        server = StalledServer(**kwargs).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def start_postfix() -> Iterator[Callable[..., Any]]:
    """Factory: start_postfix(restrictions="permit_mynetworks, reject") -> a running servers.Postfix
    that takes all it accepts into its discard transport. Skips without Postfix (or without the
    root it needs to run its own instance)."""
    import shutil

    from servers import Postfix, server_dir

    servers: list[Any] = []

    def start(restrictions: str) -> Any:
        root = server_dir()
        server = Postfix(root, root / "mail", restrictions=restrictions, elsewhere="discard:")
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


class DnsServer:
    """dnsmasq on 127.0.0.1 serving only the records a test gives it (no upstream, no /etc/hosts)."""

    BINARY = "/usr/sbin/dnsmasq"

    def __init__(self, folder: Path, zones: list[str], lines: list[str]) -> None:
        import shutil
        import socket
        import subprocess

        binary = shutil.which("dnsmasq") or (self.BINARY if Path(self.BINARY).exists() else None)
        if binary is None:
            pytest.skip("dnsmasq is not installed (Debian: dnsmasq-base)")
        conf = folder / "dnsmasq.conf"
        conf.write_text("\n".join([*(f"local=/{zone}/" for zone in zones), *lines]) + "\n")
        for _ in range(5):  # a free UDP port may be taken between probe and bind: try again
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.bind(("127.0.0.1", 0))
                self.port = int(probe.getsockname()[1])
            self.process = subprocess.Popen(
                [binary, "--keep-in-foreground", "--no-resolv", "--no-hosts", "--no-poll",
                 f"--port={self.port}",
                 "--listen-address=127.0.0.1", "--bind-interfaces", f"--conf-file={conf}",
                 f"--pid-file={folder / 'dnsmasq.pid'}", "--user=" + _current_user(), "--log-facility=-"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if self._ready():
                return
            self.process.kill()
            self.process.wait()
        raise RuntimeError("dnsmasq did not start")

    def _ready(self) -> bool:
        import dns.exception
        import dns.message
        import dns.query

        for _ in range(100):
            if self.process.poll() is not None:
                return False
            try:
                dns.query.udp(dns.message.make_query("ready.invalid.", "A"), "127.0.0.1", port=self.port,
                              timeout=0.1)
                return True
            except (dns.exception.Timeout, dns.exception.FormError, dns.query.BadResponse, OSError):
                continue  # not answering yet, or an answer not to this probe (seen once in CI): ask again
        return False

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(5)
        if self.process.stderr is not None:
            self.process.stderr.close()


def _current_user() -> str:
    import os
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


@pytest.fixture
def start_dns(tmp_path: Path) -> Iterator[Callable[[list[str], list[str]], DnsServer]]:
    """Factory: start_dns(zones, dnsmasq config lines) -> a running DnsServer."""
    servers: list[DnsServer] = []

    def start(zones: list[str], lines: list[str]) -> DnsServer:
        folder = tmp_path / f"dns{len(servers)}"
        folder.mkdir()
        server = DnsServer(folder, zones, lines)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()

@pytest.fixture
def server_root() -> Iterator[Path]:
    """A folder for private Postfix and Dovecot instances (reachable by their unprivileged users)."""
    import shutil

    from servers import server_dir

    path = server_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def dovecot_server() -> Iterator[Any]:
    """One private Dovecot for the session: IMAP over TLS on 127.0.0.1 (trustme certificate), one user."""
    import shutil

    from servers import Dovecot, server_dir

    path = server_dir()
    server = Dovecot(path).start()
    yield server
    server.stop()
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def dovecot(dovecot_server: Any) -> Any:
    """The session's Dovecot with an empty mailbox."""
    dovecot_server.empty()
    return dovecot_server


# -- the slow marker ----------------------------------------------------------------------------
# A test that starts a real server (SMTP, Postfix, Dovecot, DNS, the preview or the public page),
# a browser or a subprocess is slow; `pytest -m "not slow"` leaves them out and runs in well under a
# minute. The rule lives here, by fixture, so that a new server test is marked without remembering to.
SLOW_FIXTURES = frozenset({
    "start_smtp", "smtp_server", "any_smtp_server", "inbox", "running", "start_stalled", "start_postfix",
    "start_dns", "dovecot_server", "dovecot", "server_root",
})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    slow = pytest.mark.slow
    for item in items:
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(slow)
