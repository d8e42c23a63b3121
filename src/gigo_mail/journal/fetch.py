"""One guarded GET for the suppression sync: the page's list travels behind a bearer key.

Not urllib: its redirect handler follows a ``Location`` to any origin, plain http
included, and carries every header along, ``Authorization`` too, so one redirect (a
misconfigured proxy, a hijacked page) hands the key that reads the whole opt-out list to
whoever it points at. And its timeout is per socket operation: a page that trickles a
byte a second, or never ends, holds ``send`` forever.

Here a redirect is followed only within the origin of ``sync_url`` (scheme, host and
port the same, so never from https to http and never to another host); any other is
refused before a byte goes there. One deadline covers the whole pull, every request and
every byte of every answer (a timer cuts the socket when it passes), and an answer may
not grow past ``max_bytes``.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from gigo_mail.errors import SyncError

REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of ``url``, the port filled in: what a redirect must keep."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme, 0)
    except ValueError:
        port = -1  # a port that is not a number matches nothing
    return scheme, (parts.hostname or "").lower(), port


def _shown(place: tuple[str, str, int]) -> str:
    scheme, host, port = place
    return f"{scheme}://{host}:{port}" if host else "an address without a host"


class Deadline:
    """The time left of one pull; a SyncError once it is spent."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        remaining = self.end - time.monotonic()
        if remaining <= 0:
            raise self.error()
        return remaining

    def passed(self) -> bool:
        return time.monotonic() >= self.end

    def error(self) -> SyncError:
        return SyncError(f"no complete answer within {self.seconds:g} s (the time limit of one pull)")


class HttpStatus(SyncError):
    """The page answered, with a status that is not 200 (and not a redirect it may follow)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"HTTP {status} {reason}")
        self.status = status


@dataclass(frozen=True)
class _Answer:
    status: int
    reason: str
    location: str
    body: bytes


def get(url: str, headers: dict[str, str], context: ssl.SSLContext, deadline: Deadline,
        max_bytes: int) -> bytes:
    """The body of a 200 answer to GET ``url``, following redirects within its origin only."""
    start = origin(url)
    for _ in range(MAX_REDIRECTS + 1):
        answer = _one(url, headers, context, deadline, max_bytes)
        if answer.status in REDIRECTS:
            if not answer.location:
                raise SyncError(f"HTTP {answer.status} without a Location to follow")
            target = urljoin(url, answer.location.strip())
            if origin(target) != start:
                raise SyncError(f"the page redirects to {_shown(origin(target))}, another origin than "
                                f"{_shown(start)}; the sync key is not sent there (set sync_url to the "
                                "address that answers itself)")
            url = target
            continue
        if answer.status != 200:
            raise HttpStatus(answer.status, answer.reason)
        return answer.body
    raise SyncError(f"more than {MAX_REDIRECTS} redirects")


def _cut(sock: socket.socket | None) -> None:
    """Shut the socket from the timer's thread: a blocked read returns at once."""
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed: nothing to cut
            socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain socket's, even under TLS


def _one(url: str, headers: dict[str, str], context: ssl.SSLContext, deadline: Deadline,
         max_bytes: int) -> _Answer:
    parts = urlsplit(url)
    scheme, host, port = origin(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection: http.client.HTTPConnection
    if scheme == "https":
        connection = http.client.HTTPSConnection(host, port, timeout=deadline.left(), context=context)
    else:
        connection = http.client.HTTPConnection(host, port, timeout=deadline.left())
    timer: threading.Timer | None = None
    try:
        connection.connect()
        timer = threading.Timer(deadline.left(), _cut, (connection.sock,))  # the response may own it
        timer.daemon = True
        timer.start()
        connection.request("GET", target, headers=headers)
        response = connection.getresponse()
        deadline.left()  # a cut socket ends the headers early: that is no answer
        if response.status != 200:
            return _Answer(response.status, response.reason, response.getheader("Location") or "", b"")
        chunks: list[bytes] = []
        size = 0
        while chunk := response.read1(65536):
            size += len(chunk)
            if size > max_bytes:
                raise SyncError(f"the answer is larger than any page of suppressions should be "
                                f"(over {max_bytes:,} bytes)")
            chunks.append(chunk)
            deadline.left()
        deadline.left()  # nor is a body the timer ended
        return _Answer(200, response.reason, "", b"".join(chunks))
    except (OSError, http.client.HTTPException) as exc:
        if deadline.passed():
            raise deadline.error() from None
        raise SyncError(str(exc) or type(exc).__name__) from None
    finally:
        if timer is not None:
            timer.cancel()
        connection.close()
