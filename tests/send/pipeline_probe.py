"""A bare SMTP server on 127.0.0.1 (port 0) that watches whether a client pipelines across
transactions (RFC 2920): after each final dot it waits for the client's next bytes before
it answers, and records whether the next MAIL FROM came first. A client that waits for the
250 instead is answered when ``patience`` runs out, so it is slowed, never stuck."""

from __future__ import annotations

import asyncio

from servers import LoopServer


class PipelineProbe(LoopServer):
    def __init__(self, *, expect: int, patience: float = 2.0, refuse: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.expect = expect  # messages in all: after the last one there is nothing to wait for
        self.patience = patience
        self.refuse = refuse  # recipients whose RCPT gets 550
        self.ahead: list[bool] = []  # per message: the next MAIL FROM arrived before our 250
        self.delivered: list[str] = []

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
