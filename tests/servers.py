"""Real servers for tests, each on 127.0.0.1 and a free port, stopped afterwards.

* ``LoopServer``: the base of the test SMTP servers written in Python (asyncio in its own thread).
* ``running_page(config, limits)``: the one-click unsubscribe page under waitress.
* ``Dovecot``: a private IMAP server (TLS only, a trustme certificate) with one passwd-file user.
* ``Postfix``: a private MTA with its own config, queue and log in a tmp folder, delivering a few
  virtual mailboxes and bouncing unknown users with real DSNs (or, with ``elsewhere="discard:"``,
  taking everything into its discard transport); ``wait_for_log`` waits for its deliveries.

``require(binary)`` skips a test only when the server is not installed.
"""

from __future__ import annotations

import asyncio
import grp
import os
import pwd
import selectors
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import pytest

from gigo_mail.config import Config
from gigo_mail.web.public import DEFAULT_LIMITS, ServeLimits, make_server


class LoopServer:
    """An asyncio server on 127.0.0.1 (port 0) with its own event loop in a daemon thread, so a
    test's client (which runs its own loop) talks to it over a real socket. A subclass writes
    ``_session`` (one connection) or ``_listen`` (how to make the server)."""

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def _listen(self) -> asyncio.AbstractServer:
        return await asyncio.start_server(self._session, self.host, 0)

    def start(self) -> Self:
        self._thread.start()

        async def serve() -> int:
            self._server = await self._listen()
            return int(self._server.sockets[0].getsockname()[1])

        self.port = asyncio.run_coroutine_threadsafe(serve(), self._loop).result(10)
        return self

    def stop(self) -> None:
        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@contextmanager
def running_page(config: Config, limits: ServeLimits = DEFAULT_LIMITS) -> Iterator[str]:
    """The page served by waitress in a thread; yields its base URL (http://127.0.0.1:PORT)."""
    server: Any = make_server(config, "127.0.0.1", 0, limits)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.close()
        thread.join(timeout=5)



@contextmanager
def tls_front(context: ssl.SSLContext, target_port: int) -> Iterator[int]:
    """TLS on 127.0.0.1 in front of a plain-HTTP server, as a reverse proxy puts the page on the
    internet; yields its port. A client that rejects the certificate simply gets no answer."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def pump(client: socket.socket) -> None:
        with client:
            try:
                secure = context.wrap_socket(client, server_side=True)
            except (ssl.SSLError, OSError):
                return  # the handshake failed: what the client's verification is for
            with (secure, socket.create_connection(("127.0.0.1", target_port)) as upstream,
                  selectors.DefaultSelector() as selector):
                selector.register(secure, selectors.EVENT_READ, upstream)
                selector.register(upstream, selectors.EVENT_READ, secure)
                while not stop.is_set():
                    for key, _ in selector.select(0.2):
                        try:
                            data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                        except (ssl.SSLError, OSError):
                            return
                        if not data:
                            return
                        key.data.sendall(data)

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            client.settimeout(10)
            threading.Thread(target=pump, args=(client,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


# --- Dovecot and Postfix ---------------------------------------------------------------------------


def require(binary: str) -> str:
    """The binary's path; skips the test when it is not installed."""
    path = shutil.which(binary) or (f"/usr/sbin/{binary}" if os.path.exists(f"/usr/sbin/{binary}") else None)
    if path is None:
        pytest.skip(f"{binary} is not installed")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes] | None, log: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            text = log.read_text() if log.exists() else ""
            raise RuntimeError(f"server exited ({proc.returncode}): {text}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}: {log.read_text() if log.exists() else ''}")


def server_dir() -> Path:
    """A folder the servers' unprivileged users can reach (pytest's tmp_path is 0700 for root)."""
    path = Path(tempfile.mkdtemp(prefix="gigo-servers-"))
    path.chmod(0o755)
    return path


def mail_user() -> tuple[int, int]:
    """The uid/gid mailboxes belong to: nobody when running as root, else ourselves."""
    if os.geteuid() == 0:
        entry = pwd.getpwnam("nobody")
        return entry.pw_uid, entry.pw_gid
    return os.getuid(), os.getgid()


@dataclass
class Dovecot:
    """A private Dovecot (IMAP over TLS only) with one passwd-file user whose Maildir is ``maildir``."""

    root: Path
    user: str = "gigo"
    password: str = "imap-pass-1"
    port: int = 0
    cafile: Path = field(default_factory=Path)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def home(self) -> Path:
        return self.root / "mail" / self.user

    @property
    def maildir(self) -> Path:
        return self.home / "Maildir"

    @property
    def url(self) -> str:
        return f"imaps://{self.user}@127.0.0.1:{self.port}/INBOX"

    @property
    def auth_socket(self) -> Path:
        """Dovecot's authentication for an MTA (Postfix's ``smtpd_sasl_type = dovecot``): the same
        passwd-file user logs in to send as to read."""
        return self.root / "auth-smtpd"

    def start(self) -> Dovecot:
        import trustme

        binary = require("dovecot")
        uid, gid = mail_user()
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self.cafile = self.root / "dovecot-ca.pem"
        ca.cert_pem.write_to_path(str(self.cafile))
        cert.cert_chain_pems[0].write_to_path(str(self.root / "dovecot-cert.pem"))
        cert.private_key_pem.write_to_path(str(self.root / "dovecot-key.pem"))
        for folder in ("cur", "new", "tmp"):
            (self.maildir / folder).mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            for path in (self.root / "mail", self.home, self.maildir,
                         *(self.maildir / f for f in ("cur", "new", "tmp"))):
                os.chown(path, uid, gid)
        entry = f"{self.user}:{{PLAIN}}{self.password}:{uid}:{gid}::{self.home}::\n"
        (self.root / "passwd").write_text(entry)
        self.port = free_port()
        me = pwd.getpwuid(os.getuid()).pw_name
        internal, login = ("dovecot", "dovenull") if os.geteuid() == 0 else (me, me)
        log = self.root / "dovecot.log"
        (self.root / "dovecot.conf").write_text(f"""
base_dir = {self.root}/dovecot-run
state_dir = {self.root}/dovecot-state
log_path = {log}
protocols = imap
listen = 127.0.0.1
default_internal_user = {internal}
default_internal_group = {internal}
default_login_user = {login}
ssl = required
ssl_cert = <{self.root}/dovecot-cert.pem
ssl_key = <{self.root}/dovecot-key.pem
ssl_min_protocol = TLSv1.2
auth_mechanisms = plain login
auth_failure_delay = 0
first_valid_uid = 1
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.root}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {self.root}/passwd
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.port}
    ssl = yes
  }}
}}
service auth {{
  unix_listener {self.auth_socket} {{
    mode = 0666
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
""")
        self.proc = subprocess.Popen([binary, "-F", "-c", str(self.root / "dovecot.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for_port(self.port, self.proc, log)
        return self

    def empty(self) -> None:
        """Remove every message and folder, so the next test starts with an empty mailbox."""
        import imaplib
        import ssl

        client = imaplib.IMAP4_SSL("127.0.0.1", self.port,
                                   ssl_context=ssl.create_default_context(cafile=str(self.cafile)))
        client.login(self.user, self.password)
        _, folders = client.list()
        for line in folders:
            name = line.decode().rsplit(' "." ', 1)[-1] if isinstance(line, bytes) else ""
            if name and name.strip('"') != "INBOX":
                client.delete(name)
        _, data = client.select("INBOX")
        if data[0] != b"0":
            client.store("1:*", "+FLAGS.SILENT", r"(\Deleted)")
            client.expunge()
        client.logout()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


MASTER_CF = """\
{listen} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
tlsmgr    unix  - - n 1000? 1 tlsmgr
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
local     unix  - n n - - local
virtual   unix  - n n - - virtual
lmtp      unix  - - n - - lmtp
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


@dataclass
class Postfix:
    """A private Postfix on 127.0.0.1:``port`` that delivers the virtual domains in ``mailboxes``
    (address -> Maildir path below ``mail_base``, ending in /) and bounces everything else in those
    domains with a real DSN (unknown users are accepted first, then bounced, as a relay would).
    Mail for other domains goes to the ``elsewhere`` transport; ``restrictions`` are smtpd's relay
    restrictions (what a session may send at all)."""

    root: Path
    mail_base: Path
    mailboxes: dict[str, str] = field(default_factory=dict)
    hostname: str = "mx.gigo.test"
    restrictions: str = "permit_mynetworks, reject"
    elsewhere: str = "error:this test server delivers nowhere else"
    sasl: Dovecot | None = None  # AUTH through this Dovecot, after STARTTLS only (``tls`` then required)
    tls: tuple[Path, Path] | None = None  # certificate chain and key files for STARTTLS
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.root / "postfix.log"

    @property
    def log(self) -> str:
        """The maillog so far ("" before Postfix wrote any)."""
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def start(self) -> Postfix:
        binary = require("postfix")
        if os.geteuid() != 0:
            pytest.skip("a private Postfix needs root (its master runs as root)")
        uid, gid = mail_user()
        conf = self.root / "postfix"
        conf.mkdir(exist_ok=True)
        self.mail_base.mkdir(parents=True, exist_ok=True)
        os.chown(self.mail_base, uid, gid)
        domains = sorted({address.rpartition("@")[2] for address in self.mailboxes})
        (conf / "vmailbox").write_text("".join(f"{a} {p}\n" for a, p in self.mailboxes.items()))
        self.port = free_port()
        (conf / "main.cf").write_text(f"""
compatibility_level = 3.6
queue_directory = {self.root}/postfix-queue
data_directory = {self.root}/postfix-data
mail_owner = postfix
setgid_group = postdrop
myhostname = {self.hostname}
mydomain = gigo.test
myorigin = $mydomain
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains =
default_transport = {self.elsewhere}
virtual_mailbox_domains = {" ".join(domains)}
virtual_mailbox_base = {self.mail_base}
virtual_mailbox_maps = texthash:{conf}/vmailbox
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
virtual_minimum_uid = 1
recipient_delimiter = +
smtpd_reject_unlisted_recipient = no
smtpd_relay_restrictions = {self.restrictions}
alias_maps =
alias_database =
biff = no
maillog_file = {self.log_file}
maillog_file_prefixes = {self.root}
smtputf8_enable = yes
delay_warning_time = 0
queue_run_delay = 1s
minimal_backoff_time = 1s
""" + self._tls_and_sasl())
        (conf / "master.cf").write_text(MASTER_CF.format(listen=f"127.0.0.1:{self.port}"))
        (self.root / "postfix-queue").mkdir(exist_ok=True)
        (self.root / "postfix-data").mkdir(exist_ok=True)
        owner = pwd.getpwnam("postfix")
        os.chown(self.root / "postfix-data", owner.pw_uid, owner.pw_gid)
        env = {**os.environ, "MAIL_CONFIG": str(conf)}
        self._make_queue()
        self.proc = subprocess.Popen([binary, "-c", str(conf), "start-fg"], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for_port(self.port, self.proc, self.log_file)
        return self

    def _tls_and_sasl(self) -> str:
        lines = []
        if self.tls is not None:
            chain, key = self.tls
            lines += ["smtpd_tls_security_level = may", f"smtpd_tls_cert_file = {chain}",
                      f"smtpd_tls_key_file = {key}"]
        if self.sasl is not None:
            lines += ["smtpd_sasl_auth_enable = yes", "smtpd_sasl_type = dovecot",
                      f"smtpd_sasl_path = {self.sasl.auth_socket}", "smtpd_tls_auth_only = yes",
                      "smtpd_sasl_authenticated_header = no"]
        return "".join(f"{line}\n" for line in lines)

    def _make_queue(self) -> None:
        """The queue folders as ``postfix check`` would make them (it takes seconds), and the
        "quick-start" mark that lets start skip its integrity scan."""
        queue = self.root / "postfix-queue"
        owner, drop = pwd.getpwnam("postfix"), grp.getgrnam("postdrop")
        private = ("incoming", "active", "deferred", "bounce", "defer", "flush", "hold", "corrupt", "trace",
                   "private", "saved")
        for name, mode, gid in (("maildrop", 0o730, drop.gr_gid), ("public", 0o710, drop.gr_gid),
                                *((n, 0o700, owner.pw_gid) for n in private)):
            (queue / name).mkdir(exist_ok=True)
            os.chown(queue / name, owner.pw_uid, gid)
            (queue / name).chmod(mode)
        (queue / "pid").mkdir(exist_ok=True)
        (queue / "quick-start").touch()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            subprocess.run([require("postfix"), "-c", str(self.root / "postfix"), "stop"],
                           capture_output=True)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_for_messages(maildir: Path, count: int, timeout: float = 30) -> list[Path]:
    """The files in a Maildir's new/ and cur/ once there are ``count`` of them."""
    deadline = time.monotonic() + timeout
    while True:
        files = [p for sub in ("new", "cur") if (maildir / sub).is_dir() for p in (maildir / sub).iterdir()]
        if len(files) >= count or time.monotonic() > deadline:
            return files
        time.sleep(0.05)


def wait_for_log(postfix: Postfix, text: str, count: int, timeout: float = 30) -> int:
    """How often ``text`` is in Postfix's maillog once it is there ``count`` times (or at the
    deadline): Postfix delivers after it has accepted, so a count read once can be short."""
    deadline = time.monotonic() + timeout
    while True:
        seen = postfix.log.count(text)
        if seen >= count or time.monotonic() > deadline:
            return seen
        time.sleep(0.05)
