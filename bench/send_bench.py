"""How fast does `gigo-mail send` deliver, and how much memory does it take?

Run: python bench/send_bench.py [--messages 20000] [--repeat 3] [--dry-run-rows 1000000]

Into Postfix's smtp-sink on 127.0.0.1 (an aiosmtpd sink if smtp-sink is missing: it
saturates near 700 msg/s, so the figures are then the sink's, and the script says so):

* ours: the real engine with default settings (8 pipelined connections, journal on)
  sending issue 011 to a generated list; the compile and the list's pre-pass excluded;
* cli: the same, timed from the outside as the user runs it (startup and pre-pass in), after
  `gigo-mail build 011` (so the compile is kept) and with bytecode cached, as a user's second run;
* baseline: smtplib, one message at a time on a new connection each (what mailmerge
  does; 2,000 messages), with the same per-recipient bytes;
* persistent: smtplib, one message at a time on one kept connection;
* smtp-source: Postfix's C load generator, 8 sessions, same message size, for context.

Each runs in its own process; peak RSS comes from wait4(). Medians over the repeats.
Then peak RSS of a --dry-run --no-write over a generated list of --dry-run-rows rows
(every message rendered, none written: writing a million files measures the disk),
and how long `gigo-mail --help` and `gigo-mail status 011` take (medians of 5, alternating,
against `python -c "import typer, rich.console"`); `--startup-only` measures only those.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import shutil
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SINK = "/usr/sbin/smtp-sink"
SOURCE = "/usr/sbin/smtp-source"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, what: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} did not start on port {port}")


def factory_for(root: Path) -> int:
    """The size of one subscriber's message of issue 011 (what smtp-source sends)."""
    from gigo_mail.lists.reader import sample_subscriber

    _, factory = _factory(root)
    return len(factory.build(sample_subscriber("reader1@example.com", "Reader 1")).data)


def make_root(folder: Path, rows: int, repo: Path = REPO) -> Path:
    """A newsletter with ``repo``'s config, templates and issues and a generated list."""
    folder.mkdir(parents=True)
    for name in ("gigo-mail.toml", "templates", "issues"):
        source = repo / name
        if source.is_dir():
            shutil.copytree(source, folder / name)
        else:
            shutil.copy(source, folder / name)
    with (folder / "list.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "name", "city"])
        for i in range(rows):
            writer.writerow([f"reader{i}@example.com", f"Reader {i}", "Springfield"])
    return folder


# --- children (each measured in its own process) ------------------------------------------------

SIGNING = ("unsigned", "rsa", "rsa+ed25519")


def _factory(root: Path, signing: str = "unsigned"):  # type: ignore[no-untyped-def]
    """Issue 011's MessageFactory; ``signing`` "rsa" adds a DKIM signature (a fresh 2048-bit
    key), "rsa+ed25519" an Ed25519 one beside it."""
    from gigo_mail.compose.compile import compile_issue
    from gigo_mail.compose.issue import find_issue
    from gigo_mail.config import load_config
    from gigo_mail.send.message import MessageFactory

    config = load_config(root)
    compiled = compile_issue(config, find_issue(config.root, "011"))
    signer = None
    if signing != "unsigned":
        from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

        from gigo_mail.send.dkim import DkimKey, DkimSigner

        keys = [DkimKey("s1", rsa.generate_private_key(public_exponent=65537, key_size=2048))]
        if signing == "rsa+ed25519":
            keys.append(DkimKey("e1", ed25519.Ed25519PrivateKey.generate()))
        signer = DkimSigner("gigo.dev", keys)
    return compiled, MessageFactory(compiled, secret=b"bench", signer=signer)


def child_ours(root: Path, url: str, in_flight: int = 4, signing: str = "unsigned") -> dict[str, float]:
    from gigo_mail.journal.deliveries import Journal
    from gigo_mail.lists.reader import read_subscribers
    from gigo_mail.send.engine import Sender, SendOptions
    from gigo_mail.transport import SmtpEndpoint, SmtpTransport, parse_smtp_url

    compiled, factory = _factory(root, signing)
    endpoint = SmtpEndpoint(parse_smtp_url(url), in_flight=in_flight)
    with Journal.for_root(root) as journal:
        sender = Sender(issue_key="011", envelope_from=factory.envelope_from, build=factory.build,
                        transport_factory=lambda: SmtpTransport(endpoint), options=SendOptions(),
                        journal=journal)
        start = time.perf_counter()
        result = asyncio.run(sender.run(read_subscribers(root / "list.csv", journal.is_suppressed)))
        seconds = time.perf_counter() - start
    return {"sent": result.stats.sent, "seconds": seconds}


def child_baseline(root: Path, url: str, count: int, reconnect: bool) -> dict[str, float]:
    """smtplib, one message at a time; ``reconnect``: a new connection per message (mailmerge)."""
    from gigo_mail.lists.reader import Subscriber, read_subscribers

    _, factory = _factory(root)
    host, port = url.rsplit("/", 1)[1].split(":")
    start = time.perf_counter()
    sent = 0
    client = smtplib.SMTP(host, int(port))
    for row in read_subscribers(root / "list.csv"):
        if not isinstance(row, Subscriber):
            continue
        message = factory.build(row)
        if reconnect and sent:
            client.quit()
            client = smtplib.SMTP(host, int(port))
        client.sendmail(factory.envelope_from, [row.smtp_address], message.data)
        sent += 1
        if sent >= count:
            break
    client.quit()
    return {"sent": sent, "seconds": time.perf_counter() - start}


def _finish(process: subprocess.Popen[bytes], out: bytes, err: bytes) -> dict[str, float]:
    if process.returncode not in (0, 1):
        raise SystemExit(f"child failed ({process.returncode}): {err.decode()[-2000:]}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    return result  # type: ignore[no-any-return]


def timed(command: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
          ) -> tuple[float, float, int, bytes]:
    """(seconds, peak RSS MB, exit code, stderr) of a child process, via wait4."""
    seconds, peak, code, err, _ = timed_cpu(command, cwd, env)
    return seconds, peak, code, err


def smtp_source_rate(port: int, messages: int, size: int) -> float | None:
    """The reference every benchmark here stands beside: Postfix's ``smtp-source`` (C), 8 sessions,
    ``messages`` of ``size`` bytes to 127.0.0.1:``port``, in msg/s; None when it is not installed
    or fails."""
    if not os.path.exists(SOURCE):
        return None
    seconds, _, code, _ = timed([SOURCE, "-s", "8", "-m", str(messages), "-l", str(size),
                                 "-d", f"127.0.0.1:{port}"])
    return messages / seconds if code == 0 else None


def timed_cpu(command: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
              ) -> tuple[float, float, int, bytes, float]:
    """timed(), and the CPU seconds (user + system) the child used."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert process.stderr is not None
    err = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    return seconds, usage.ru_maxrss / 1024, process.returncode, err, usage.ru_utime + usage.ru_stime


def startup(root: Path, repeat: int = 15, *, bytecode_cached: bool = True) -> dict[str, float]:
    """Median seconds of `gigo-mail --help`, of `gigo-mail status 011` in ``root``, of importing
    typer and rich.console (what any Typer + rich CLI pays) and of `python -c pass` (the floor).
    The four alternate in every round, so the machine's load falls on all of them alike.

    ``bytecode_cached`` measures what a user sees after the first run: Python writes each module's
    compiled bytecode once and reuses it (into a private folder here, so the checkout is left alone).
    Without it, a PYTHONDONTWRITEBYTECODE in the environment makes every run compile the package's
    own modules again (pip compiles site-packages at install, so those are cached either way)."""
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="gigo-pycache-") as cache:
        if bytecode_cached:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = cache
        gigo = [sys.executable, "-c", "from gigo_mail.cli.app import main; main()"]
        commands = {"--help": [*gigo, "--help"], "status 011": [*gigo, "status", "011"],
                    "import typer, rich.console": [sys.executable, "-c", "import typer, rich.console"],
                    "pass": [sys.executable, "-c", "pass"]}
        runs: dict[str, list[float]] = {name: [] for name in commands}
        for round_ in range(repeat + 1):
            for name, command in commands.items():
                start = time.perf_counter()
                subprocess.run(command, stdout=subprocess.DEVNULL, check=True, cwd=root, env=env)
                if round_:  # the first round only fills the bytecode cache
                    runs[name].append(time.perf_counter() - start)
    return {name: statistics.median(seconds) for name, seconds in runs.items()}


def print_startup(root: Path) -> None:
    for cached in (True, False):
        seconds = startup(root, bytecode_cached=cached)
        ms = {name: f"{value * 1000:.0f} ms" for name, value in seconds.items()}
        label = "bytecode cached, as after an install" if cached else "this environment as it is"
        ratio = seconds["--help"] / seconds["import typer, rich.console"]
        print(f"{label}: gigo-mail --help: {ms['--help']} ({ratio:.2f}x the reference), "
              f"status 011 (no journal yet): {ms['status 011']} (medians of 15; target < 250 ms); "
              f"reference python -c \"import typer, rich.console\": {ms['import typer, rich.console']}; "
              f"python -c pass: {ms['pass']}")


def measured_child(mode: str, root: Path, url: str, count: int, in_flight: int = 4,
                   signing: str = "unsigned") -> dict[str, float]:
    command = [sys.executable, __file__, "--child", mode, "--root", str(root), "--url", url,
               "--messages", str(count), "--in-flight", str(in_flight), "--signing", signing]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    out = process.stdout.read()
    err = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    result = _finish(process, out, err)
    result["rss_mb"] = usage.ru_maxrss / 1024
    return result


# --- sinks ------------------------------------------------------------------------------------------

class Listening:
    """A helper process listening on 127.0.0.1:``port``."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(5)


class Sink(Listening):
    def __init__(self) -> None:
        self.port = free_port()
        self.kind = "smtp-sink" if os.path.exists(SINK) else "aiosmtpd"
        if self.kind == "smtp-sink":
            command = [SINK, "-u", "root" if os.geteuid() == 0 else os.environ.get("USER", "nobody"),
                       f"127.0.0.1:{self.port}", "1000"]
        else:
            command = [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{self.port}", "-c",
                       "aiosmtpd.handlers.Sink"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, self.kind)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dry-run-rows", type=int, default=1_000_000, help="0 to skip")
    parser.add_argument("--startup-only", action="store_true", help="only time --help and status")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--in-flight", type=int, default=4, help=argparse.SUPPRESS)
    parser.add_argument("--signing", choices=SIGNING, default="unsigned", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child == "ours":
        print(json.dumps(child_ours(args.root, args.url, args.in_flight, args.signing)))
        return
    if args.child in ("baseline", "persistent"):
        print(json.dumps(child_baseline(args.root, args.url, args.messages, args.child == "baseline")))
        return

    work = Path(tempfile.mkdtemp(prefix="gigo-send-bench-"))
    try:
        if args.startup_only:
            print_startup(make_root(work / "nl", 10))
            return
        root = make_root(work / "nl", args.messages)
        size = factory_for(root)
        sink = Sink()
        print(f"sink: {sink.kind} on 127.0.0.1:{sink.port}; {args.messages:,} messages of issue 011, "
              f"{size / 1024:.1f} KB each; {args.repeat} repeats; {os.cpu_count()} CPUs")
        if sink.kind != "smtp-sink":
            print("warning: Postfix smtp-sink not found; the aiosmtpd sink limits every figure below")
        figures: dict[str, list[float]] = {"ours": [], "cli": [], "baseline": [], "persistent": [],
                                           "smtp-source": []}
        rss: dict[str, list[float]] = {"ours": [], "cli": [], "baseline": [], "persistent": []}
        cpu_us: list[float] = []  # CPU of the whole command per message
        env = {**os.environ, "GIGO_UNSUBSCRIBE_SECRET": "bench"}
        # The whole command as a user's second run: bytecode cached (pip compiles at install), in a
        # private folder, and after `gigo-mail build 011` (untimed), so the compile is kept.
        user_env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
        user_env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        gigo = [sys.executable, "-c", "from gigo_mail.cli.app import main; main()"]
        for round_ in range(1, args.repeat + 1):
            shutil.rmtree(root / ".gigo", ignore_errors=True)
            ours = measured_child("ours", root, sink.url, args.messages)
            assert ours["sent"] == args.messages, ours
            figures["ours"].append(ours["sent"] / ours["seconds"])
            rss["ours"].append(ours["rss_mb"])

            shutil.rmtree(root / ".gigo", ignore_errors=True)
            subprocess.run([*gigo, "build", "011"], cwd=root, env=user_env, check=True,
                           stdout=subprocess.DEVNULL)
            seconds, peak, code, err, cpu = timed_cpu([*gigo, "send", "011", "--list", "list.csv", "--yes",
                                                       "--smtp", sink.url], cwd=root, env=user_env)
            if code != 0:
                raise SystemExit(f"gigo-mail send failed: {err.decode()[-1000:]}")
            figures["cli"].append(args.messages / seconds)
            rss["cli"].append(peak)
            cpu_us.append(cpu / args.messages * 1e6)

            # smtplib is slow: 2,000 (a connection each) and 5,000 messages give a stable rate
            for mode, count in (("baseline", min(args.messages, 2000)),
                                ("persistent", min(args.messages, 5000))):
                base = measured_child(mode, root, sink.url, count)
                figures[mode].append(base["sent"] / base["seconds"])
                rss[mode].append(base["rss_mb"])

            if (rate := smtp_source_rate(sink.port, args.messages, size)) is not None:
                figures["smtp-source"].append(rate)
            print(f"round {round_}: " + ", ".join(f"{k} {v[-1]:,.0f} msg/s" for k, v in figures.items() if v))
        sink.stop()

        print()
        print(f"{'client':<44} {'msg/s (median)':>15} {'peak RSS MB':>12}")
        labels = {"ours": "gigo-mail engine (defaults, journal on)",
                  "cli": "gigo-mail send, whole command",
                  "baseline": "smtplib, connection per message (mailmerge)",
                  "persistent": "smtplib, one connection, one at a time",
                  "smtp-source": "smtp-source (C), 8 sessions"}
        for key, label in labels.items():
            if figures[key]:
                memory = f"{statistics.median(rss[key]):12.0f}" if rss.get(key) else f"{'':>12}"
                print(f"{label:<44} {statistics.median(figures[key]):15,.0f} {memory}")
        ratio = statistics.median(figures["ours"]) / statistics.median(figures["baseline"])
        print(f"ratio ours / baseline: {ratio:.1f}x")
        print(f"whole command: {statistics.median(cpu_us):.0f} µs of CPU per message, "
              f"peak RSS {statistics.median(rss['cli']):.0f} MB (target < 150 MB)")
        if figures["smtp-source"]:
            versus = statistics.median(figures["cli"]) / statistics.median(figures["smtp-source"])
            print(f"whole command / smtp-source: {versus:.2f}x (target >= 0.35x)")

        if args.dry_run_rows:
            big = make_root(work / "big", args.dry_run_rows)
            seconds, peak, code, err = timed([*gigo, "send", "011", "--list", "list.csv", "--dry-run",
                                              "--no-write"], cwd=big, env=env)
            if code != 0:
                raise SystemExit(f"dry run failed: {err.decode()[-1000:]}")
            print(f"dry run, {args.dry_run_rows:,} rows rendered (--no-write): {seconds:.0f} s, "
                  f"{args.dry_run_rows / seconds:,.0f} msg/s, peak RSS {peak:.0f} MB")
        print_startup(root)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
