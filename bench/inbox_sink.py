"""How many messages per second the capture inbox can take, and what its storage costs.

Runs `gigo-mail inbox` as a separate process (as a user would) and drives it with
Postfix's smtp-source, a C client far faster than the inbox, so the inbox is the
limit. Variants: the CLI as is (one printed line per message), the server alone
(no printing), and the same server storing with mailbox.Maildir.add (one fsync
per message) for comparison.

    python bench/inbox_sink.py [--messages 5000] [--sessions 8] [--size 16000]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SERVER_ONLY = r"""
import sys, threading, mailbox
from pathlib import Path
from gigo_mail.web.inbox import InboxServer
from gigo_mail.web import inbox_maildir
if sys.argv[2] == "fsync":
    class FsyncWriter(inbox_maildir.MaildirWriter):
        def deliver(self, content, **kw):
            box = mailbox.Maildir(str(self.path))
            return box.add(content), content
    inbox_maildir_writer = FsyncWriter
else:
    inbox_maildir_writer = inbox_maildir.MaildirWriter
server = InboxServer(Path(sys.argv[1]), port=0)
server._writer = inbox_maildir_writer(Path(sys.argv[1]))
server.start()
print(f"smtp://127.0.0.1:{server.port}", flush=True)
threading.Event().wait()
"""


def run(variant: str, messages: int, sessions: int, size: int) -> float:
    maildir = Path(tempfile.mkdtemp(prefix="gigo-bench-inbox-"))
    if variant == "cli":
        cmd = [sys.executable, "-c", "from gigo_mail.cli.app import main; main()", "inbox", "--port", "0",
               "--maildir", str(maildir)]
    else:
        cmd = [sys.executable, "-c", SERVER_ONLY, str(maildir), variant]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "200"})
    try:
        assert proc.stdout is not None
        match = re.search(r"127\.0\.0\.1:(\d+)", proc.stdout.readline())
        assert match, "the inbox did not start"
        port = match.group(1)
        # keep draining the CLI's per-message lines so printing is part of the cost
        drain = subprocess.Popen(["cat"], stdin=proc.stdout, stdout=subprocess.DEVNULL)
        started = time.perf_counter()
        subprocess.run(["smtp-source", "-s", str(sessions), "-m", str(messages), "-l", str(size),
                        "-f", "news@example.org", "-t", "reader@example.org", f"127.0.0.1:{port}"],
                       check=True)
        elapsed = time.perf_counter() - started
        stored = len(os.listdir(maildir / "new"))
        assert stored == messages, f"stored {stored} of {messages}"
        return messages / elapsed
    finally:
        proc.terminate()
        proc.wait(10)
        if variant == "cli":
            drain.wait(10)
        shutil.rmtree(maildir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--size", type=int, default=16000)
    args = parser.parse_args()
    if not shutil.which("smtp-source"):
        sys.exit("needs Postfix's smtp-source (Debian package postfix)")
    for variant in ("cli", "plain", "fsync"):
        rate = run(variant, args.messages, args.sessions, args.size)
        label = {"cli": "gigo-mail inbox (CLI, prints each)", "plain": "InboxServer, no printing",
                 "fsync": "InboxServer + mailbox.Maildir.add (fsync)"}[variant]
        print(f"{label:44s} {rate:8.0f} msg/s  ({args.messages} x {args.size} B, {args.sessions} sessions)")


if __name__ == "__main__":
    main()
