"""A private Postfix smtpd for tests: its own config, queue and log in a temporary folder
(never the machine's), on 127.0.0.1 and a free port. It offers PIPELINING and CHUNKING;
accepted mail goes to the discard transport. Needs root (Postfix drops privileges itself)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

POSTFIX = Path("/usr/sbin/postfix")
_MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def require_postfix() -> None:
    if not POSTFIX.exists():
        pytest.skip("postfix is not installed")
    if os.geteuid() != 0:
        pytest.skip("running a private Postfix instance needs root")


class PostfixServer:
    def __init__(self, *, reject: tuple[str, ...] = ()) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="gigo-postfix-"))  # the postfix user must reach it
        self.folder.chmod(0o755)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        conf, data = self.folder / "conf", self.folder / "data"
        for sub in (conf, data, self.folder / "queue"):
            sub.mkdir()
        shutil.chown(data, "postfix")
        refused = " ".join(f"{address}=REJECT no such user" for address in reject)
        recipient_checks = f"check_recipient_access inline:{{ {{ {refused} }} }}" if reject else ""
        (conf / "main.cf").write_text(f"""\
compatibility_level = 3.6
queue_directory = {self.folder}/queue
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.gigo.test
mydestination =
mynetworks = 127.0.0.0/8
relay_domains =
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = {recipient_checks}
default_transport = discard:
relay_transport = discard:
maillog_file_prefixes = {self.folder}
maillog_file = {data}/maillog
""")
        (conf / "master.cf").write_text(_MASTER_CF.format(port=self.port))
        self.conf = conf

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        path = self.folder / "data" / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_for_log(self, text: str, count: int, seconds: float = 10.0) -> str:
        """The log once ``text`` is in it ``count`` times (Postfix writes it as it goes)."""
        deadline = time.monotonic() + seconds
        while (log := self.log).count(text) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return log

    def _postfix(self, command: str) -> None:
        subprocess.run([str(POSTFIX), "-c", str(self.conf), command], check=False, capture_output=True,
                       timeout=30)

    def start(self) -> PostfixServer:
        self._postfix("start")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Postfix did not start on 127.0.0.1:{self.port}:\n{self.log}")

    def stop(self) -> None:
        self._postfix("stop")
        shutil.rmtree(self.folder, ignore_errors=True)
