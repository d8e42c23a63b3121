"""How fast does gigo-mail send to a server 50 ms away, where round trips set the pace?

Run: python bench/latency_bench.py [--rtt 50] [--messages 1200] [--repeat 3] [--postfix] [--dkim]

Postfix's smtp-sink (PIPELINING, no CHUNKING) behind ``delay_proxy.py`` (its own
process), which holds every chunk ``rtt / 2`` each way. Side by side, medians of
``--repeat`` rounds:

* gigo-mail: the real engine, default settings (8 connections, journal on), issue 011;
* smtp-source: Postfix's C load generator through the same proxy, 8 sessions, the same
  message size (it opens a connection per message and does not pipeline);
* a bare pipelined client (``--bare``, in its own process): 8 connections writing the same-sized
  prebuilt message, its final dot and the next envelope in one write and reading the four
  replies, with no journal, no message building and no list; what the proxy lets through at one
  round trip per message, so ``gigo-mail / bare`` is the engine's own cost;
* the limit: 8 connections at one round trip per message is ``8 / rtt`` msg/s.

``--postfix`` puts a private Postfix smtpd (tests/servers.py's: its own config and queue
in a temporary folder, mail discarded; needs root) behind the proxy instead: it offers
CHUNKING, so gigo-mail streams BDAT transactions (``in_flight`` 4), shown next to the same
engine with ``in_flight`` 1 (DATA, one round trip per message) and smtp-source.

``--dkim`` adds the same engine with every message RSA-2048 DKIM-signed, in every round
between the unsigned run and smtp-source.

``--whole`` adds the whole command as a user runs it (`gigo-mail send 011 --list ... --yes`,
its own process: startup, compile, the list's plan pass, then the send), its msg/s with those
fixed costs in, and its startup: from spawning the process to the first MAIL FROM the proxy sees
(``delay_proxy.py --mail-log``; what the server would see, less half a round trip), with the run's
start in the journal beside it. Its bytecode is cached, as after a user's first run (pip compiles
at install). It runs after `gigo-mail build 011` (untimed), as a user sends after
building it, so the compile is kept (``compose.cache``); ``--cold`` leaves that out.
``--reference SRC`` runs the same whole command from another
checkout's ``src`` in the same rounds, alternating (a "before"); ``--whole-only`` leaves out the
engine alone and smtp-source (the bare client stays, as the reference).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from send_bench import (
    Listening,
    Sink,
    factory_for,
    free_port,
    make_root,
    measured_child,
    smtp_source_rate,
    wait_for_port,
)

HERE = Path(__file__).resolve().parent


class Proxy(Listening):
    """delay_proxy.py in its own process, so it never shares the sender's event loop."""

    def __init__(self, rtt_ms: float, target_port: int, mail_log: Path) -> None:
        self.port = free_port()
        self.mail_log = mail_log
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "delay_proxy.py"), "--rtt", str(rtt_ms),
             "--listen", f"127.0.0.1:{self.port}", "--to", f"127.0.0.1:{target_port}",
             "--mail-log", str(mail_log)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, "delay_proxy")


def measured_rtt(port: int, samples: int = 10) -> float:
    """The median round trip of an SMTP NOOP through the proxy, in seconds (the proxy is a
    Python process on a shared machine: its real delay can exceed the one asked for)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        reader = sock.makefile("rb")
        reader.readline()  # the greeting
        times = []
        for _ in range(samples):
            start = time.perf_counter()
            sock.sendall(b"NOOP\r\n")
            reader.readline()
            times.append(time.perf_counter() - start)
        sock.sendall(b"QUIT\r\n")
        return statistics.median(times)


async def _bare_connection(port: int, count: int, payload: bytes) -> None:
    import asyncio

    envelope = b"MAIL FROM:<bench@example.com>\r\nRCPT TO:<reader@example.com>\r\nDATA\r\n"
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def replies(n: int) -> None:
        while n:
            line = await reader.readline()
            if not line:
                raise SystemExit("the server closed the connection")
            n -= line[3:4] == b" "

    await replies(1)
    writer.write(b"EHLO bench.example.com\r\n")
    await replies(1)
    writer.write(envelope)
    await replies(3)
    for i in range(count):
        last = i == count - 1
        writer.write(payload if last else payload + envelope)
        await replies(1 if last else 4)
    writer.write(b"QUIT\r\n")
    await replies(1)
    writer.close()


def bare_client(port: int, count: int, size: int) -> float:
    """msg/s of the bare pipelined client (see the module's docstring), 8 connections."""
    import asyncio

    line = b"x" * 76 + b"\r\n"
    payload = b"Subject: bench\r\n\r\n" + line * (size // len(line)) + b".\r\n"
    start = time.perf_counter()

    async def all_of_them() -> None:
        await asyncio.gather(*(_bare_connection(port, count // 8, payload) for _ in range(8)))

    asyncio.run(all_of_them())
    return (count // 8 * 8) / (time.perf_counter() - start)


def whole_command(root: Path, url: str, count: int, mail_log: Path,
                  src: str | None = None, *, built: bool = True) -> tuple[float, float, float]:
    """(msg/s, seconds from spawning to the run's start in the journal, seconds from spawning to
    the first MAIL FROM through the proxy) of `gigo-mail send` as a user runs it, from this
    checkout's ``src`` or from ``src``; ``built``: after a `gigo-mail build 011` (not timed)."""
    # this checkout's package, not whichever the environment has installed
    env = {**os.environ, "GIGO_UNSUBSCRIBE_SECRET": "bench", "PYTHONPATH": src or str(HERE.parent / "src")}
    # What a user runs: bytecode written once and reused (pip compiles at install), into a private
    # folder beside the list, whatever PYTHONDONTWRITEBYTECODE the environment sets.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(root.parent / "pycache")
    if built:  # as a user does before a list send: the compile is then kept (.gigo/compiled), untimed
        subprocess.run([sys.executable, "-c", "from gigo_mail.cli.app import main; main()", "build", "011"],
                       cwd=root, env=env, check=True, stdout=subprocess.DEVNULL)
    mail_log.unlink(missing_ok=True)
    spawned = time.time()
    subprocess.run([sys.executable, "-c", "from gigo_mail.cli.app import main; main()", "send", "011",
                    "--list", "list.csv", "--yes", "--smtp", url], cwd=root, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    seconds = time.time() - spawned
    first_mail = min(float(line) for line in mail_log.read_text().split()) - spawned
    db = sqlite3.connect(root / ".gigo" / "journal.sqlite3")
    started, sent = db.execute("SELECT started, (SELECT COUNT(*) FROM deliveries WHERE status = 'sent') "
                               "FROM runs ORDER BY id DESC LIMIT 1").fetchone()
    db.close()
    assert sent == count, (sent, count)
    return count / seconds, dt.datetime.fromisoformat(started).timestamp() - spawned, first_mail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rtt", type=float, default=50.0, help="round trip in milliseconds")
    parser.add_argument("--messages", type=int, default=1200)
    parser.add_argument("--source-messages", type=int, default=240)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postfix", action="store_true", help="a private Postfix smtpd (CHUNKING); root")
    parser.add_argument("--dkim", action="store_true", help="also send RSA-signed, in the same rounds")
    parser.add_argument("--whole", action="store_true", help="also the whole command, startup included")
    parser.add_argument("--whole-only", action="store_true",
                        help="the whole command and the bare client only (implies --whole)")
    parser.add_argument("--reference", metavar="SRC",
                        help="also the whole command from this src folder, alternating (implies --whole)")
    parser.add_argument("--cold", action="store_true",
                        help="the whole command without a `build 011` before it (nothing compiled yet)")
    parser.add_argument("--bare", nargs=3, type=int, metavar=("PORT", "COUNT", "SIZE"),
                        help=argparse.SUPPRESS)  # the bare client's own process
    args = parser.parse_args()
    if args.bare:
        print(bare_client(*args.bare))
        return
    args.whole = args.whole or args.whole_only or bool(args.reference)

    work = Path(tempfile.mkdtemp(prefix="gigo-latency-bench-"))
    sink = proxy = None
    try:
        root = make_root(work / "nl", args.messages)
        past = time.time() - 60  # a newsletter's files are older than a second or two (compose.cache)
        for path in root.rglob("*"):
            os.utime(path, (past, past))
        size = factory_for(root)
        if args.postfix:
            sys.path.insert(0, str(HERE.parent / "tests"))
            from servers import Postfix

            work.chmod(0o755)  # the postfix user must reach its queue
            (work / "postfix").mkdir()
            sink = Postfix(work / "postfix", work / "postfix" / "mail", elsewhere="discard:").start()
        else:
            sink = Sink()
            if sink.kind != "smtp-sink":
                raise SystemExit("this benchmark needs Postfix's smtp-sink (apt-get install postfix)")
        mail_log = work / "first-mail.log"
        proxy = Proxy(args.rtt, sink.port, mail_log)
        limit = 8 / (args.rtt / 1000)
        server = "Postfix smtpd (CHUNKING)" if args.postfix else "smtp-sink"
        print(f"{server} behind a {args.rtt:g} ms round-trip proxy; {args.messages:,} messages of issue 011 "
              f"({size / 1024:.1f} KB); {args.repeat} repeats; {os.cpu_count()} CPUs")
        ours: list[float] = []
        one: list[float] = []  # --postfix: in_flight 1
        signed: list[float] = []  # --dkim
        source: list[float] = []
        bare: list[float] = []
        rtts: list[float] = []
        whole: list[tuple[float, float, float]] = []  # --whole: (msg/s, to the run's start, to MAIL FROM)
        before: list[tuple[float, float, float]] = []  # --reference: the same
        for round_ in range(1, args.repeat + 1):
            rtts.append(measured_rtt(proxy.port))
            if not args.whole_only:
                shutil.rmtree(root / ".gigo", ignore_errors=True)
                result = measured_child("ours", root, proxy.url, args.messages)
                assert result["sent"] == args.messages, result
                ours.append(result["sent"] / result["seconds"])
            if args.postfix:
                shutil.rmtree(root / ".gigo", ignore_errors=True)
                result = measured_child("ours", root, proxy.url, args.messages, in_flight=1)
                one.append(result["sent"] / result["seconds"])
            if args.dkim:
                shutil.rmtree(root / ".gigo", ignore_errors=True)
                result = measured_child("ours", root, proxy.url, args.messages, signing="rsa")
                assert result["sent"] == args.messages, result
                signed.append(result["sent"] / result["seconds"])
            pair = [(whole, None), (before, args.reference)] if args.reference else [(whole, None)]
            for into, src in pair if round_ % 2 else pair[::-1]:  # alternate which goes first
                shutil.rmtree(root / ".gigo", ignore_errors=True)
                into.append(whole_command(root, proxy.url, args.messages, mail_log, src, built=not args.cold))
            if not args.postfix:
                out = subprocess.run([sys.executable, __file__, "--bare", str(proxy.port), str(args.messages),
                                      str(size)], capture_output=True, text=True, check=True).stdout
                bare.append(float(out))
            if not args.whole_only and (rate := smtp_source_rate(proxy.port, args.source_messages,
                                                                 size)) is not None:
                source.append(rate)
            line = ((f", gigo-mail {ours[-1]:,.1f} msg/s" if ours else "")
                  + (f", in_flight 1 {one[-1]:,.1f} msg/s" if one else "")
                  + (f", DKIM-signed {signed[-1]:,.1f} msg/s" if signed else "")
                  + (f", whole command {whole[-1][0]:,.1f} msg/s (first MAIL FROM after {whole[-1][2]:.2f} s,"
                     f" run started after {whole[-1][1]:.2f} s)" if whole else "")
                  + (f", reference {before[-1][0]:,.1f} msg/s (first MAIL FROM after {before[-1][2]:.2f} s,"
                     f" run started after {before[-1][1]:.2f} s)" if before else "")
                  + (f", bare pipelined client {bare[-1]:,.1f} msg/s" if bare else "")
                  + (f", smtp-source {source[-1]:,.1f} msg/s" if source else ""))
            print(f"round {round_}: {line[2:]}", flush=True)
        print()
        median = statistics.median(ours) if ours else 0.0
        print(f"{'client':<52} {'msg/s (median)':>15}")
        label = "gigo-mail engine, 8 connections" + (", in_flight 4 (BDAT)" if args.postfix else "")
        if ours:
            print(f"{label:<52} {median:15,.1f}")
        if one:
            label = "gigo-mail engine, 8 connections, in_flight 1 (DATA)"
            print(f"{label:<52} {statistics.median(one):15,.1f}")
        if signed:
            label = "gigo-mail engine, 8 connections, DKIM RSA-2048"
            print(f"{label:<52} {statistics.median(signed):15,.1f}")
        for name, runs in (("gigo-mail send", whole), ("reference send", before)):
            if runs:
                label = f"{name}, whole command (startup, compile, plan)"
                print(f"{label:<52} {statistics.median(w[0] for w in runs):15,.1f}")
                print(f"{'  its start to the first MAIL FROM (s, median)':<52} "
                      f"{statistics.median(w[2] for w in runs):15,.2f}")
                print(f"{'  its start to the run start in the journal (s)':<52} "
                      f"{statistics.median(w[1] for w in runs):15,.2f}")
        if bare:
            label = "bare pipelined client (no journal, prebuilt bytes)"
            print(f"{label:<52} {statistics.median(bare):15,.1f}")
        if source:
            print(f"{'smtp-source (C), 8 sessions':<52} {statistics.median(source):15,.1f}")
        print(f"{'limit at 1 round trip per message (8 / RTT)':<52} {limit:15,.1f}")
        rtt = statistics.median(rtts)
        print(f"measured round trip through the proxy: {rtt * 1000:.1f} ms (asked {args.rtt:g} ms); "
              f"8 / measured RTT = {8 / rtt:,.1f} msg/s")
        if ours:
            print(f"gigo-mail / one-round-trip limit: {median / limit:.2f}"
                  + (f"; gigo-mail / smtp-source: {median / statistics.median(source):.1f}x"
                     if source else ""))
        if bare and ours:
            print(f"gigo-mail / bare pipelined client: {median / statistics.median(bare):.2f}")
        if bare and whole:
            print(f"whole command / bare pipelined client: "
                  f"{statistics.median(w[0] for w in whole) / statistics.median(bare):.2f}"
                  + (f" (reference: {statistics.median(w[0] for w in before) / statistics.median(bare):.2f})"
                     if before else ""))
        if signed:
            print(f"DKIM-signed / unsigned: {statistics.median(signed) / median:.2f}")
    finally:
        for server in (proxy, sink):
            if server is not None:
                server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
