"""Signup: pulling confirmations into the list, and what one signup POST costs the page.

Run: python bench/signup_bench.py [--confirmations 10000] [--posts 200] [--dir DIR]

1. ``subscribers pull`` of N confirmations into a list of 1,000 rows: straight from the page's
   store in the same folder, and from the page over HTTP on loopback with the sync key (the
   page is ``gigo-mail serve`` in its own process, as on a server). Target: under 2 s for 10,000.
2. A signup ``POST /subscribe`` over real HTTP (keep-alive off, a new connection each, as a
   browser's first form post), with proofs solved beforehand: the whole round trip, and the
   proof check alone in the same process (``ProofOfWork.check``). Target: under 50 ms besides
   the proof check. Solving uses a low ``pow_cost`` here, which changes nothing on the page's
   side: the proof's cost (PBKDF2 at ``pow_cost``) is the reader's, not the page's:
   the page checks a signed derived key, two HMACs.
The confirmation mails go to an SMTP port nobody listens on: the page queues them and a
background thread fails them, so the POST's time holds no SMTP.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import altcha

from gigo_mail.config import load_config
from gigo_mail.journal.deliveries import Journal
from gigo_mail.journal.signups import Confirmation, SignupStore
from gigo_mail.send.signups import pull_signups
from gigo_mail.web.public import ServeLimits, make_server

SECRET = "bench-secret"
CONFIG = """
[newsletter]
name = "Bench"
from = "Bench <news@bench.test>"
site_url = "https://bench.test"
unsubscribe_url = "https://bench.test/unsubscribe?token={token}"
[smtp]
url = "smtp://127.0.0.1:9"
[list]
path = "list.csv"
[signup]
enabled = true
per_ip_per_hour = 1000000
per_network_per_hour = 1000000
per_hour = 1000000
pow_cost = 100        # the page's check is two HMACs whatever the cost; a low one keeps solving quick
pow_max_counter = 10
"""


def newsletter(folder: Path, extra: str = "") -> Path:
    folder.mkdir(parents=True)
    (folder / "gigo-mail.toml").write_text(CONFIG + extra)
    rows = "".join(f"old{i}@example.org,Old {i}\n" for i in range(1000))
    (folder / "list.csv").write_text("email,name\n" + rows)
    return folder


def confirmations(n: int) -> list[Confirmation]:
    return [Confirmation(0, f"new{i}@example.org", f"new{i}@example.org", f"New {i}",
                         "2026-12-07T10:00:00.000+00:00", "2026-12-07T10:05:00.000+00:00", "1", "ab" * 32,
                         "https://bench.test/", "", "signup page")
            for i in range(n)]


def serve(root: Path) -> tuple[Any, str]:
    config = load_config(root)
    server = make_server(config, "127.0.0.1", 0, ServeLimits(loop_timeout=0.05))
    threading.Thread(target=server.run, daemon=True).start()
    return server, f"http://127.0.0.1:{server.effective_port}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def bench_pull(base: Path, n: int) -> None:
    here = newsletter(base / "here")
    with SignupStore.for_state(here / ".gigo") as store:
        store.add_confirmations(confirmations(n))
    config = load_config(here)
    with Journal.for_root(here) as journal:
        start = time.perf_counter()
        result = pull_signups(config, journal)
        local = time.perf_counter() - start
    assert result.added == n, result
    print(f"pull {n:,} from the store here:        {local:6.2f} s  ({n / local:,.0f}/s)  target < 2 s")

    page_root = newsletter(base / "page")
    with SignupStore.for_state(page_root / ".gigo") as store:
        store.add_confirmations(confirmations(n))
    port = free_port()
    page = subprocess.Popen([sys.executable, "-m", "gigo_mail", "serve", "--port", str(port)], cwd=page_root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # the page's own process
    url = f"http://127.0.0.1:{port}"
    wait_for(f"{url}/healthz")
    try:
        laptop = newsletter(base / "laptop", f'[unsubscribe]\nsync_url = "{url}/suppressions"\n')
        config = load_config(laptop)
        with Journal.for_root(laptop) as journal:
            start = time.perf_counter()
            result = pull_signups(config, journal)
            remote = time.perf_counter() - start
        assert result.added == n and result.fetched == n, result
        print(f"pull {n:,} from the page over HTTP:    {remote:6.2f} s  ({n / remote:,.0f}/s)  target < 2 s")
    finally:
        page.terminate()
        page.wait(10)


def bench_post(base: Path, posts: int) -> None:
    from gigo_mail.web.proof import ProofOfWork

    root = newsletter(base / "post")
    server, url = serve(root)
    try:
        payloads = []
        for _ in range(posts * 2):
            with urllib.request.urlopen(f"{url}/subscribe/challenge", timeout=10) as response:
                challenge = altcha.Challenge.from_dict(json.loads(response.read()))
            solution = altcha.solve_challenge(challenge)
            assert solution is not None
            payloads.append(altcha.Payload(challenge, solution).to_base64())
        checker = ProofOfWork(SECRET.encode(), load_config(root).signup.pow_cost, 1000)
        start = time.perf_counter()
        for payload in payloads[posts:]:
            assert checker.check(payload).ok
        check_ms = (time.perf_counter() - start) / posts * 1000
        times = []
        for i, payload in enumerate(payloads[:posts]):
            body = urllib.parse.urlencode({"email": f"reader{i}@example.org", "name": "R", "altcha": payload})
            start = time.perf_counter()
            with urllib.request.urlopen(f"{url}/subscribe", body.encode(), timeout=10) as response:
                response.read()
                assert response.status == 200
            times.append((time.perf_counter() - start) * 1000)
        times.sort()
        p95 = times[int(len(times) * 0.95) - 1]
        median = statistics.median(times)
        print(f"POST /subscribe, {posts} signups:       median {median:5.1f} ms, p95 {p95:5.1f} ms, "
              f"of which the proof check {check_ms:4.2f} ms  target < 50 ms besides it")
    finally:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--confirmations", type=int, default=10_000)
    parser.add_argument("--posts", type=int, default=200)
    parser.add_argument("--dir", type=Path, default=Path.cwd())
    args = parser.parse_args()
    os.environ["GIGO_UNSUBSCRIBE_SECRET"] = SECRET
    logging.getLogger("gigo_mail.signup").setLevel(logging.ERROR)  # the mails fail by design here
    logging.getLogger("waitress").setLevel(logging.CRITICAL)  # a worker finishing as the page closes
    base = Path(tempfile.mkdtemp(prefix="gigo-signup-bench-", dir=args.dir))
    try:
        bench_pull(base, args.confirmations)
        bench_post(base, args.posts)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
