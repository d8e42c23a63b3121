"""The cost of closing the loop: VERP on the send path, classifying answers, and the one-click page
under load and abuse (waitress, against the stdlib wsgiref server it replaced, in the same run).

Run: python bench/answers_bench.py [--n 20000] [--repeat 5]

1. Per recipient on the send path: MessageFactory.build (the reference) and envelope_for with and
   without VERP (one HMAC per recipient).
2. bounces: parse + classify the tests/data/answers corpus (14 formats), messages per second.
3. The page: 200 GETs with one idle TCP connection held open, waitress vs wsgiref; then the server's
   peak RSS after a POST with Content-Length: -1 followed by 300 MB.

With --journal 10000,100000,1000000 it measures instead `bounces` (process_answers) of --answers
hard bounces against journals of those sizes (built with SQL, 50,000 readers per issue, each row with
the VERP tag a send keeps), half of them proven by their VERP address, half by the original's Message-ID
they quote; beside it, in the same run, parsing and classifying the same messages (the cost no journal
can take away), and the CPU time per VERP address of finding its delivery alone (VerpIndex.resolve,
apart from the machine's load); with --untagged the same against the same journal built without the
tags (as one written before them: one HMAC per recipient of each issue named); and with --without N
the same at the smaller sizes for N answers with the journal's answer indexes left out.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from email import message_from_bytes, policy
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from gigo_mail.address import address_key  # noqa: E402
from gigo_mail.answers.classify import classify  # noqa: E402
from gigo_mail.answers.process import process_answers  # noqa: E402
from gigo_mail.compose.compile import compile_issue  # noqa: E402
from gigo_mail.compose.issue import find_issue  # noqa: E402
from gigo_mail.config import load_config  # noqa: E402
from gigo_mail.journal import store as journal_store  # noqa: E402
from gigo_mail.journal.deliveries import Journal  # noqa: E402
from gigo_mail.lists.reader import sample_subscriber  # noqa: E402
from gigo_mail.send.message import MessageFactory  # noqa: E402
from gigo_mail.send.msgid import MessageIds  # noqa: E402
from gigo_mail.send.tokens import make_token  # noqa: E402
from gigo_mail.send.verp import VerpAddresses, VerpIndex  # noqa: E402
from gigo_mail.web.public import ServeLimits, make_app  # noqa: E402
from servers import running_page  # noqa: E402
from support import make_newsletter  # noqa: E402

SECRET = "bench-secret"


def median_us(fn, items: list, repeat: int) -> float:  # type: ignore[no-untyped-def]
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        for item in items:
            fn(item)
        runs.append((time.perf_counter() - start) / len(items) * 1e6)
    return statistics.median(runs)


def send_path(root: Path, n: int, repeat: int) -> None:
    people = [sample_subscriber(f"reader{i}@example.com", f"Reader {i}") for i in range(n)]
    plain = load_config(root)
    compiled = compile_issue(plain, find_issue(root, "011"))
    factory = MessageFactory(compiled, secret=SECRET.encode())
    build = median_us(factory.build, people, repeat)
    without = median_us(factory.envelope_for, people, repeat)
    with (root / "gigo-mail.toml").open("a") as handle:
        handle.write('\n[bounces]\nreturn_path = "bounce@gigo.dev"\nverp = true\n')
    verp_compiled = compile_issue(load_config(root), find_issue(root, "011"))
    verp = MessageFactory(verp_compiled, secret=SECRET.encode())
    with_verp = median_us(verp.envelope_for, people, repeat)
    print(f"send path, per recipient (median of {repeat} x {n:,}):")
    print(f"  MessageFactory.build (reference)  {build:8.2f} us")
    print(f"  envelope_for, no VERP             {without:8.2f} us")
    print(f"  envelope_for, VERP (one HMAC)     {with_verp:8.2f} us   = {with_verp / build:.1%} of build")


def classification(repeat: int) -> None:
    corpus = [p.read_bytes() for p in sorted((REPO / "tests" / "data" / "answers").glob("*.eml"))]
    items = corpus * 50

    def one(data: bytes) -> None:
        classify(message_from_bytes(data, policy=policy.compat32), "unsubscribe@gigo.dev")

    us = median_us(one, items, repeat)
    print(f"bounces: parse + classify, {len(corpus)} formats: {us:,.0f} us/message, "
          f"{1e6 / us:,.0f} messages/s")


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def _gets_with_an_idle_client(base: str, url: str, count: int) -> str:
    host, port = base.removeprefix("http://").split(":")
    idle = socket.create_connection((host, int(port)))
    try:
        start = time.perf_counter()
        for _ in range(count):
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    response.read()
            except OSError:
                return "blocked (no answer in 2 s)"
        seconds = time.perf_counter() - start
        return f"{count / seconds:,.0f} req/s"
    finally:
        idle.close()


def page(root: Path) -> None:
    config = load_config(root)
    path = f"/unsubscribe?token={make_token(SECRET.encode(), 'ann@example.org')}"
    with running_page(config, ServeLimits(loop_timeout=0.05)) as base:
        waitress = _gets_with_an_idle_client(base, base + path, 200)
    server = make_server("127.0.0.1", 0, make_app(config), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    wsgiref = _gets_with_an_idle_client(base, base + path, 200)
    server.shutdown()
    server.server_close()
    print("page, 200 GETs while one idle TCP connection is open:")
    print(f"  waitress (gigo-mail unsubscribe --serve)  {waitress}")
    print(f"  wsgiref (the stdlib server it replaced)   {wsgiref}")
    print(f"  peak RSS after Content-Length: -1 + 300 MB: {_abuse(root)}")


def _abuse(root: Path) -> str:
    proc = subprocess.Popen([sys.executable, "-m", "gigo_mail", "unsubscribe", "--serve", "--port", "0"],
                            cwd=root, env={**os.environ, "GIGO_UNSUBSCRIBE_SECRET": SECRET},
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        port = int(line.split("127.0.0.1:")[1].split("/")[0])
        before = _rss(proc.pid)
        token = make_token(SECRET.encode(), "eve@example.org")
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(f"POST /unsubscribe?token={token} HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"
                     .encode())
        chunk = b"x" * (1 << 20)
        sent = 0
        try:
            for _ in range(300):
                sock.sendall(chunk)
                sent += 1
        except OSError:
            pass  # the server answered 400 and closed: the rest was never read
        answer = sock.recv(100).split(b"\r\n")[0].decode(errors="replace")
        sock.close()
        return f"{before} -> {_rss(proc.pid)} (VmHWM); it answered '{answer}' after {sent} MB were written"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _rss(pid: int) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return f"{int(line.split()[1]) / 1024:.0f} MB"
    return "?"


READERS_PER_ISSUE = 50_000
VERP_BASE = "bounce@gigo.dev"
ANSWER_INDEXES = ("deliveries_by_key", "deliveries_by_message_id")


def big_journal(root: Path, deliveries: int, tagged: bool = True) -> list[tuple[str, str]]:
    """A journal of ``deliveries`` sent rows written with SQL (the send path would take hours), each
    with the VERP tag a send keeps (``tagged``), else none (a journal written before the tags);
    returns the (issue, address) of every row."""
    readers = min(deliveries, READERS_PER_ISSUE)
    issues = [f"{number:03d}" for number in range(1, deliveries // readers + 1)]
    with Journal.for_root(root):
        pass  # the file, with the schema of this checkout
    db = sqlite3.connect(root / ".gigo" / "journal.sqlite3")
    db.execute("PRAGMA synchronous = OFF")
    rows = []
    for position, issue in enumerate(issues):
        at = f"2026-{1 + position // 28:02d}-{1 + position % 28:02d}T09:00:00.000+00:00"
        ids = MessageIds(SECRET.encode(), issue, "gigo.dev")
        verp = VerpAddresses(VERP_BASE, SECRET.encode(), issue)  # the tag a send keeps with "sending"
        db.executemany("INSERT INTO deliveries (issue_key, key, email, status, attempts, code, text, "
                       "message_id, first_at, updated_at, verp_tag) "
                       "VALUES (?, ?, ?, 'sent', 1, 250, 'ok', ?, ?, ?, ?)",
                       ((issue, f"reader{i}@example.com", f"reader{i}@example.com",
                         ids.make(f"reader{i}@example.com"), at, at,
                         verp.tag(verp.address(f"reader{i}@example.com")) if tagged else None)
                        for i in range(readers)))
        rows += [(issue, f"reader{i}@example.com") for i in range(readers)]
    db.commit()
    db.close()
    return rows


def _bounce(number: int, to: str, rcpt: str, quoted_id: str) -> bytes:
    template = (REPO / "tests" / "data" / "answers" / "postfix-dsn-user-unknown.eml").read_bytes()
    own_id = b"<20241112091402.4Xk2Q71Rz9z9sR@mail.example.net>"
    return (template.replace(own_id, f"<b{number}@mx.example>".encode())
            .replace(b"<672f1a2b.a1b2c3d4e5f6.7@gigo.dev>", quoted_id.encode())
            .replace(b"Delivered-To: newsletter@gigo.dev", f"Delivered-To: {to}".encode())
            .replace(b"gone@example.net", rcpt.encode()))


def bounces_for(rows: list[tuple[str, str]], count: int,
                seed: int = 23) -> tuple[list[tuple[str, bytes]], list[str]]:
    """``count`` hard bounces about random deliveries, proven by VERP or by the quoted Message-ID; and
    the VERP addresses among them."""
    chooser = random.Random(seed)
    verp: dict[str, VerpAddresses] = {}
    answers, returns = [], []
    for number in range(count):
        issue, email = rows[chooser.randrange(len(rows))]
        if number % 2 == 0:  # the report quotes nothing ours but the VERP address it came back to
            addresses = verp.setdefault(issue, VerpAddresses(VERP_BASE, SECRET.encode(), issue))
            returns.append(addresses.address(address_key(email)))
            data = _bounce(number, returns[-1], f"moved{number}@example.net",
                           f"<x{number}@elsewhere.example>")
        else:  # quotes the original's Message-ID
            quoted = MessageIds(SECRET.encode(), issue, "gigo.dev").make(email)
            data = _bounce(number, VERP_BASE, email, quoted)
        answers.append((str(number), data))
    return answers, returns


def _verp_cpu(root: Path, returns: list[str]) -> float:
    """CPU seconds per VERP address to find its delivery (VerpIndex.resolve alone, a fresh index: the
    per-issue tables, if any, are built inside), apart from the load of the machine's other work."""
    with Journal.for_root(root) as journal:
        index = VerpIndex(journal, SECRET.encode(), VERP_BASE)
        start = time.process_time()
        found = sum(1 for address in returns if index.resolve(address) is not None)
        seconds = time.process_time() - start
    assert found == len(returns), f"{found} of {len(returns)} VERP addresses found"
    return seconds / len(returns)


class _Memory:
    """A mail source held in memory: the benchmark times the journal, not a Maildir's files."""

    def __init__(self, items: list[tuple[str, bytes]]) -> None:
        self.items = items

    def messages(self):  # type: ignore[no-untyped-def]
        return iter(self.items)

    def move(self, ids: list[str], folder: str) -> int:
        return 0

    def close(self) -> None:
        pass


def _answers_run(root: Path, answers: list[tuple[str, bytes]]) -> tuple[float, int]:
    shutil.rmtree(root / ".gigo" / "answers.sqlite3", ignore_errors=True)
    (root / ".gigo" / "answers.sqlite3").unlink(missing_ok=True)
    start = time.perf_counter()
    report = process_answers(load_config(root), _Memory(answers))  # type: ignore[arg-type]
    seconds = time.perf_counter() - start
    return seconds, sum(1 for outcome in report.outcomes if outcome.kind == "hard bounce")


def _classify_only(answers: list[tuple[str, bytes]]) -> float:
    start = time.perf_counter()
    for _, data in answers:
        classify(message_from_bytes(data, policy=policy.compat32), "unsubscribe@gigo.dev")
    return time.perf_counter() - start


def journal_sizes(folder: Path, sizes: list[int], count: int, without: int, untagged: bool) -> None:
    print(f"bounces: {count:,} hard bounces (half proven by VERP, half by the quoted Message-ID), "
          f"{READERS_PER_ISSUE:,} readers per issue")
    print(f"{'deliveries':>10} {'build':>7} {'bounces':>8} {'per answer':>11} {'classify':>9} {'ratio':>6}"
          f" {'found':>13} {'VERP (CPU)':>11}")
    for size in sizes:
        root = make_newsletter(folder / f"j{size}")
        with (root / "gigo-mail.toml").open("a") as handle:
            handle.write(f'\n[bounces]\nreturn_path = "{VERP_BASE}"\nverp = true\n')
        start = time.perf_counter()
        rows = big_journal(root, size)
        built = time.perf_counter() - start
        answers, returns = bounces_for(rows, count)
        del rows
        reference = _classify_only(answers)
        seconds, found = _answers_run(root, answers)
        print(f"{size:>10,} {built:>6.1f}s {seconds:>7.1f}s {seconds / count * 1e6:>9,.0f}us "
              f"{reference / count * 1e6:>7,.0f}us {seconds / reference:>5.2f}x {f'{found:,}/{count:,}':>13} "
              f"{_verp_cpu(root, returns) * 1e6:>9,.0f}us")
        if untagged:  # the same journal and answers, as a journal written before the tags
            old = make_newsletter(folder / f"u{size}")
            shutil.copyfile(root / "gigo-mail.toml", old / "gigo-mail.toml")
            start = time.perf_counter()
            big_journal(old, size, tagged=False)
            built = time.perf_counter() - start
            seconds, found = _answers_run(old, answers)
            print(f"{'':>10} {built:>6.1f}s {seconds:>7.1f}s {seconds / count * 1e6:>9,.0f}us {'':>7}   "
                  f"{seconds / reference:>5.2f}x {f'{found:,}/{count:,}':>13} "
                  f"{_verp_cpu(old, returns) * 1e6:>9,.0f}us  untagged (per-issue HMAC tables)")
            shutil.rmtree(old, ignore_errors=True)
        if without and size <= 100_000:
            schema = journal_store.SCHEMA
            db = sqlite3.connect(root / ".gigo" / "journal.sqlite3")
            for name in ANSWER_INDEXES:
                db.execute(f"DROP INDEX {name}")
            db.close()
            journal_store.SCHEMA = "\n".join(line for line in schema.splitlines()
                                              if not any(name in line for name in ANSWER_INDEXES))
            try:
                seconds, found = _answers_run(root, answers[:without])
            finally:
                journal_store.SCHEMA = schema
            print(f"{'':>10} {'':>7} {seconds:>7.1f}s {seconds / without * 1e6:>9,.0f}us  without the "
                  f"answer indexes, {without:,} answers, {found:,} found")
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--journal", help="journal sizes, e.g. 10000,100000,1000000: measure bounces only")
    parser.add_argument("--answers", type=int, default=10_000)
    parser.add_argument("--without", type=int, default=0)
    parser.add_argument("--untagged", action="store_true", help="also with the journal's VERP tags cleared")
    args = parser.parse_args()
    os.environ["GIGO_UNSUBSCRIBE_SECRET"] = SECRET
    folder = Path(tempfile.mkdtemp(prefix="gigo-answers-bench-"))
    if args.journal:
        try:
            journal_sizes(folder, [int(size) for size in args.journal.split(",")], args.answers, args.without,
                          args.untagged)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    try:
        root = make_newsletter(folder / "nl")
        send_path(root, args.n, args.repeat)
        classification(args.repeat)
        page(make_newsletter(folder / "page"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
