"""The cost of closing the loop: VERP on the send path, classifying answers, and the one-click page
under load and abuse (waitress, against the stdlib wsgiref server it replaced, in the same run).

Run: python bench/answers_bench.py [--n 20000] [--repeat 5]

1. Per recipient on the send path: MessageFactory.build (the reference) and envelope_for with and
   without VERP (one HMAC per recipient).
2. bounces: parse + classify the tests/data/answers corpus (14 formats), messages per second.
3. The page: 200 GETs with one idle TCP connection held open, waitress vs wsgiref; then the server's
   peak RSS after a POST with Content-Length: -1 followed by 300 MB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
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

from gigo_mail.answers.classify import classify  # noqa: E402
from gigo_mail.compose.compile import compile_issue  # noqa: E402
from gigo_mail.compose.issue import find_issue  # noqa: E402
from gigo_mail.config import load_config  # noqa: E402
from gigo_mail.lists.reader import sample_subscriber  # noqa: E402
from gigo_mail.send.message import MessageFactory  # noqa: E402
from gigo_mail.send.tokens import make_token  # noqa: E402
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    os.environ["GIGO_UNSUBSCRIBE_SECRET"] = SECRET
    folder = Path(tempfile.mkdtemp(prefix="gigo-answers-bench-"))
    try:
        root = make_newsletter(folder / "nl")
        send_path(root, args.n, args.repeat)
        classification(args.repeat)
        page(make_newsletter(folder / "page"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
