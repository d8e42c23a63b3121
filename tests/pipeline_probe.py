"""A bare SMTP server on 127.0.0.1 (port 0) that watches whether a client pipelines across
transactions (RFC 2920): after each final dot it waits for the client's next bytes before
it answers, and records whether the next MAIL FROM came first. A client that waits for the
250 instead is answered when ``patience`` runs out, so it is slowed, never stuck."""

from __future__ import annotations

import asyncio
import threading


class PipelineProbe:
    def __init__(self, *, expect: int, patience: float = 2.0, refuse: frozenset[str] = frozenset()) -> None:
        self.expect = expect  # messages in all: after the last one there is nothing to wait for
        self.patience = patience
        self.refuse = refuse  # recipients whose RCPT gets 550
        self.ahead: list[bool] = []  # per message: the next MAIL FROM arrived before our 250
        self.delivered: list[str] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 probe.test ESMTP\r\n")
        recipients: list[str] = []
        line: bytes | None = None
        try:
            while True:
                if line is None:
                    line = await reader.readline()
                if not line:
                    break
                verb, current, line = line[:4].upper(), line, None
                if verb in (b"EHLO", b"HELO"):
                    writer.write(b"250-probe.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
                elif verb == b"MAIL":
                    recipients = []
                    writer.write(b"250 OK\r\n")
                elif verb == b"RCPT":
                    address = current.decode().split("<", 1)[1].split(">", 1)[0]
                    if address in self.refuse:
                        writer.write(b"550 5.1.1 no such user\r\n")
                    else:
                        recipients.append(address)
                        writer.write(b"250 OK\r\n")
                elif verb == b"DATA":
                    if not recipients:
                        writer.write(b"554 no valid recipients\r\n")
                        await writer.drain()
                        continue
                    writer.write(b"354 go on\r\n")
                    await writer.drain()
                    while await reader.readline() not in (b".\r\n", b""):
                        pass
                    self.delivered += recipients
                    if len(self.delivered) < self.expect:
                        try:
                            line = await asyncio.wait_for(reader.readline(), self.patience)
                        except TimeoutError:
                            line = None
                        self.ahead.append(line is not None and line[:4].upper() == b"MAIL")
                    writer.write(b"250 2.0.0 queued\r\n")
                elif verb == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    break
                else:
                    writer.write(b"250 OK\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def start(self) -> PipelineProbe:
        self._thread.start()

        async def serve() -> int:
            self._server = await asyncio.start_server(self._session, "127.0.0.1", 0)
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
