"""The public page under hostile load, over real sockets on loopback against the page as
``--serve`` runs it: 1,000 clients trickling header lines and 1,000 idle sockets at once, while a
normal client still gets its answer in under a second; a request that trickles is cut after its
time limit however busy it looks; one address cannot hold more than its share.

The probe is bounded: loopback only, a fixed number of sockets, a fixed time, and it closes all
it opened whatever happens."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

import gigo_mail
from gigo_mail.config import load_config
from gigo_mail.web.guard import connection_limit
from gigo_mail.web.public import DEFAULT_LIMITS, ServeLimits
from servers import running_page
from support import make_newsletter

SLOW = 1000
IDLE = 1000
PER_ADDRESS = 25  # under the default per_client, so the cap is not what saves the page here


@pytest.fixture
def page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[str]:
    monkeypatch.setenv("GIGO_UNSUBSCRIBE_SECRET", "load-secret")
    limits = getattr(request, "param", replace(DEFAULT_LIMITS, loop_timeout=0.05))
    with running_page(load_config(make_newsletter(tmp_path)), limits) as base:
        yield base


def port_of(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


def connect_from(source: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


def still_open(sock: socket.socket) -> bool:
    """Whether the server has not closed this socket (nothing to read, no end of stream)."""
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def timed_get(base: str) -> float:
    started = time.monotonic()
    with urllib.request.urlopen(f"{base}/healthz", timeout=5) as response:
        assert response.status == 200 and response.read() == b"ok\n"
    return time.monotonic() - started


@contextlib.contextmanager
def attackers(port: int, count: int, first_octet: int) -> Iterator[list[socket.socket]]:
    """``count`` sockets from 127.0.<first_octet>.x, PER_ADDRESS to an address; all closed after."""
    opened: list[socket.socket] = []
    try:
        for index in range(count):
            host = f"127.0.{first_octet + index // (PER_ADDRESS * 250)}.{1 + (index // PER_ADDRESS) % 250}"
            opened.append(connect_from(host, port))
        yield opened
    finally:
        for sock in opened:
            sock.close()


@contextlib.contextmanager
def slow_client_probe(port: int, request_start: bytes) -> Iterator[list[socket.socket]]:
    """SLOW clients that each start a request and send one more header line every 3 s, and IDLE
    sockets that send nothing, all held open while the block runs; yields every socket."""
    stop = threading.Event()
    with attackers(port, SLOW, 1) as slow, attackers(port, IDLE, 9) as idle:
        for sock in slow:
            sock.send(request_start)

        def trickle() -> None:
            while not stop.wait(0.02):
                for sock in slow[int(time.monotonic() / 0.02) % 150::150]:  # each every 3 s
                    with contextlib.suppress(OSError):
                        sock.send(b"X-Slow: 1\r\n")

        worker = threading.Thread(target=trickle, daemon=True)
        worker.start()
        try:
            yield slow + idle
        finally:
            stop.set()
            worker.join(5)


def test_a_low_soft_descriptor_limit_is_raised_for_the_connections() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < DEFAULT_LIMITS.connection_limit + 64:
        pytest.skip(f"the hard limit ({hard}) is below what the default needs")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    try:
        assert connection_limit(DEFAULT_LIMITS) == DEFAULT_LIMITS.connection_limit
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= DEFAULT_LIMITS.connection_limit + 64
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.slow
def test_a_low_hard_descriptor_limit_lowers_the_connection_limit() -> None:
    """A process that may open only 300 files holds at most 236 connections, rather than
    failing to accept (and spinning) once the descriptors run out."""
    code = ("import resource; resource.setrlimit(resource.RLIMIT_NOFILE, (300, 300)); "
            "from gigo_mail.web.guard import DEFAULT_LIMITS, connection_limit; "
            "print(connection_limit(DEFAULT_LIMITS))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(Path(gigo_mail.__file__).parents[1])})
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == 300 - 64


@pytest.mark.slow
def test_a_normal_client_is_served_under_slow_and_idle_clients(page: str) -> None:
    """1,000 clients each sending a header line every 3 s and 1,000 idle sockets, all held open at
    once (checked from the client side): five normal requests each answered in under 1 s."""
    start = b"GET /unsubscribe?token=x HTTP/1.1\r\nHost: gigo.dev\r\n"
    with slow_client_probe(port_of(page), start) as sockets:
        times = []
        for _ in range(5):
            time.sleep(0.8)
            times.append(timed_get(page))
        held = sum(still_open(sock) for sock in sockets)
    assert held >= 0.98 * (SLOW + IDLE), f"only {held} of the attack's sockets were held"
    assert max(times) < 1.0, times


@pytest.mark.slow
@pytest.mark.parametrize("page", [replace(DEFAULT_LIMITS, request_timeout=1.0, cleanup_interval=0.2,
                                          channel_timeout=30.0, loop_timeout=0.05)], indirect=True)
def test_a_trickling_request_is_cut_after_its_time_limit(page: str) -> None:
    """A header line every 0.2 s never looks idle; it is closed after request_timeout (1 s)."""
    sock = connect_from("127.0.0.1", port_of(page))
    try:
        sock.send(b"GET /healthz HTTP/1.1\r\n")
        started = time.monotonic()
        while time.monotonic() - started < 6:
            time.sleep(0.2)
            try:
                sock.send(b"X-Slow: 1\r\n")
            except OSError as exc:
                assert exc.errno in (errno.EPIPE, errno.ECONNRESET)
                break
            if not still_open(sock):
                break
        took = time.monotonic() - started
    finally:
        sock.close()
    assert took < 2.5


@pytest.mark.slow
@pytest.mark.parametrize("page", [ServeLimits(per_client=8, loop_timeout=0.05)], indirect=True)
def test_one_address_holds_no_more_than_its_share(page: str) -> None:
    port = port_of(page)
    with attackers(port, 1, 20) as probe:
        greedy = [connect_from(f"127.0.30.{1}", port) for _ in range(12)]
        try:
            time.sleep(0.5)
            assert [still_open(sock) for sock in greedy] == [True] * 8 + [False] * 4
            assert still_open(probe[0])
            assert timed_get(page) < 1.0  # another address is served
        finally:
            for sock in greedy:
                sock.close()
        time.sleep(0.3)
        again = connect_from("127.0.30.1", port)  # closed ones are counted off
        try:
            time.sleep(0.3)
            assert still_open(again)
        finally:
            again.close()
