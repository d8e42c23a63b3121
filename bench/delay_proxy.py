"""A TCP proxy on loopback that adds a fixed delay each way: a distant server, nearby.

Run: python bench/delay_proxy.py --rtt 50 --listen 127.0.0.1:0 --to 127.0.0.1:2525

Every chunk read from one side is written to the other ``rtt / 2`` later, in order, so
a command and its reply cost one round trip of ``rtt`` milliseconds, as they would to a
provider that far away. Bandwidth is not limited (loopback's). No traffic leaves the
machine: both ends must be loopback addresses.

``tc netem`` would do this in the kernel, but needs sch_netem, which this machine lacks.

``--mail-log FILE`` appends one line per connection: the wall-clock time (``time.time()``) at
which the client's first ``MAIL FROM`` reached the proxy, so a benchmark can tell how long a
process took from its start to its first transaction (``latency_bench.py --whole``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import sys
import time


def _loopback(host: str) -> str:
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        raise SystemExit(f"{host} is not a loopback address; this proxy only runs on loopback")
    return host


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float,
                mail_log: str | None = None) -> None:
    """Forward reader -> writer, each chunk ``delay`` seconds after it arrived; with ``mail_log``,
    note when the first MAIL FROM of this direction arrived."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def forward() -> None:
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                with contextlib.suppress(OSError):
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(forward())
    try:
        while True:
            data = await reader.read(256 * 1024)
            if mail_log is not None and b"MAIL FROM" in data.upper():
                with open(mail_log, "a", encoding="ascii") as log:
                    log.write(f"{time.time():.6f}\n")
                mail_log = None
            queue.put_nowait((loop.time() + delay, data))
            if not data:
                break
        await sender
    except (OSError, asyncio.IncompleteReadError):
        sender.cancel()


class DelayProxy:
    """``async with DelayProxy(rtt, target_host, target_port) as proxy: proxy.port``."""

    def __init__(self, rtt: float, target_host: str, target_port: int, host: str = "127.0.0.1",
                 port: int = 0, mail_log: str | None = None) -> None:
        self.delay = rtt / 2
        self.mail_log = mail_log
        self.target = (_loopback(target_host), target_port)
        self.host, self.requested_port = _loopback(host), port
        self.port = 0
        self._server: asyncio.AbstractServer | None = None

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            # the TCP handshake to a distant server takes a round trip too
            await asyncio.sleep(2 * self.delay)
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        try:
            await asyncio.gather(_pump(client_reader, server_writer, self.delay, self.mail_log),
                                 _pump(server_reader, client_writer, self.delay))
        finally:
            for writer in (client_writer, server_writer):
                writer.close()

    async def __aenter__(self) -> DelayProxy:
        self._server = await asyncio.start_server(self._handle, self.host, self.requested_port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()


async def _main(args: argparse.Namespace) -> None:
    host, _, port = args.listen.rpartition(":")
    target_host, _, target_port = args.to.rpartition(":")
    async with DelayProxy(args.rtt / 1000, target_host, int(target_port), host, int(port),
                          args.mail_log) as proxy:
        print(f"127.0.0.1:{proxy.port} -> {args.to}, {args.rtt:g} ms round trip", flush=True)
        started = time.monotonic()
        while args.seconds <= 0 or time.monotonic() - started < args.seconds:
            await asyncio.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rtt", type=float, default=50.0, help="round trip in milliseconds")
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--to", required=True, help="HOST:PORT of the real server (loopback)")
    parser.add_argument("--seconds", type=float, default=0.0, help="stop after this long (0 = never)")
    parser.add_argument("--mail-log", help="append the time of each connection's first MAIL FROM here")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args))
    sys.exit(0)


if __name__ == "__main__":
    main()
