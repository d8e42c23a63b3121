"""The capture inbox's storage: a plain Maildir any mail client can open.

Writing follows the Maildir protocol (a file in tmp/, renamed into new/) but
skips the fsync that ``mailbox.Maildir.add`` does for every message: this is a
disposable rehearsal inbox that may take thousands of messages a minute, and
one fsync per message would make the disk, not SMTP, the bottleneck.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.policy import Compat32
from email.utils import format_datetime, getaddresses
from pathlib import Path
from typing import cast

from gigo_mail.errors import InboxError
from gigo_mail.private import private_dir

SUBDIRS = ("tmp", "new", "cur")
_HEAD_LIMIT = 256 * 1024  # headers larger than this are not worth listing
_PARSER = BytesParser(policy=policy.default)



@dataclass(frozen=True)
class CapturedMessage:
    """One message in the inbox, as listed: enough to draw a row without reading the body."""

    id: str                      # the Maildir key (file name without the ":2,flags" suffix)
    received: datetime           # when the inbox stored it (local time zone)
    mail_from: str               # envelope MAIL FROM (Return-Path), else the From address
    to: str                      # the To header as written, else the envelope recipients
    subject: str
    size: int                    # bytes of the stored file
    from_header: str = ""
    message_id: str = ""
    recipients: tuple[str, ...] = ()   # envelope RCPT TO addresses
    path: Path | None = None     # the file itself, for "open in a mail client"


class _RawHeaders(Compat32):
    """Header values exactly as stored: decoding only the few we show is 10x faster
    than letting ``policy.default`` parse every header of every message."""

    def header_fetch_parse(self, name: str, value: str) -> str:
        return value


_HEAD_PARSER = BytesParser(policy=_RawHeaders())
_ADDRESS_HEADERS = {"from", "to", "cc", "reply-to", "sender"}


def _clean(name: str, value: str | None) -> str:
    """A header value as readable text: encoded words and raw UTF-8 (SMTPUTF8) decoded."""
    if not value:
        return ""
    if any("\udc80" <= ch <= "\udcff" for ch in value):
        value = value.encode("ascii", "surrogateescape").decode("utf-8", "replace")
    elif "=?" in value:
        try:
            if name.lower() in _ADDRESS_HEADERS:
                value = str(policy.default.header_factory(name, value))
            else:
                value = str(make_header(decode_header(value)))
        except (ValueError, LookupError, HeaderParseError):
            pass  # show it as it is rather than not at all
    return " ".join(value.split())


def _read_head(path: str) -> bytes:
    """The header block of a stored message, without reading a large body."""
    with open(path, "rb") as fh:
        head = b""
        while len(head) < _HEAD_LIMIT:
            chunk = fh.read(8192)
            if not chunk:
                break
            head += chunk
            end = head.find(b"\n\n")
            if end < 0:
                end = head.find(b"\r\n\r\n")
            if end >= 0:
                return head[: end + 1]
        return head


def captured_from_head(key: str, head: bytes, size: int, received: datetime,
                       path: Path | None = None) -> CapturedMessage:
    """Build the listing row from a message's header block."""
    msg = _HEAD_PARSER.parsebytes(head, headersonly=True)
    recipients = tuple(_clean("Delivered-To", v) for v in msg.get_all("Delivered-To", []))
    return_path = _clean("Return-Path", msg.get("Return-Path")).strip("<>")
    from_header = _clean("From", msg.get("From"))
    if not return_path:
        addresses = getaddresses([from_header])
        return_path = addresses[0][1] if addresses else ""
    to = _clean("To", msg.get("To")) or ", ".join(recipients)
    return CapturedMessage(
        id=key, received=received, mail_from=return_path, to=to,
        subject=_clean("Subject", msg.get("Subject")), size=size, from_header=from_header,
        message_id=_clean("Message-ID", msg.get("Message-ID")), recipients=recipients, path=path,
    )


class MaildirWriter:
    """Delivers messages into ``<path>/new`` the Maildir way, without fsync."""

    def __init__(self, path: Path) -> None:
        self.path = path
        host = socket.gethostname() or "localhost"
        self._host = host.replace("/", r"\057").replace(":", r"\072")
        self._pid = os.getpid()
        self._counter = itertools.count()
        self._tmp = str(path / "tmp")
        self._new = str(path / "new")

    def ensure(self) -> None:
        """Create the Maildir if needed and prove it is writable (an InboxError if not).

        Writing a probe file is the only honest check: access() lies for root and
        on read-only mounts.
        """
        try:
            private_dir(self.path)  # every message holds its recipients' addresses
            for sub in SUBDIRS:
                private_dir(self.path / sub)
            probe = self.path / "tmp" / f".probe-{self._pid}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise InboxError(f"inbox folder {self.path} is not writable: {reason}; "
                             "fix its permissions or pick another with --maildir") from exc

    def _new_key(self) -> str:
        now = time.time()
        return f"{int(now)}.M{int(now % 1 * 1e6):06d}P{self._pid}Q{next(self._counter)}.{self._host}"

    def deliver(self, content: bytes, *, mail_from: str, recipients: list[str],
                helo: str = "", peer: str = "") -> tuple[str, bytes]:
        """Store one message with trace headers prepended; returns (key, stored bytes).

        Line endings become LF, the Maildir convention on Unix.
        """
        now = datetime.now().astimezone()
        key = self._new_key()
        trace = [f"Return-Path: <{mail_from}>"]
        trace += [f"Delivered-To: {rcpt}" for rcpt in recipients]
        trace.append(f"Received: from {helo or 'unknown'} ({peer or 'unknown'})\n"
                     f"\tby gigo-mail-inbox with ESMTP id {key};\n\t{format_datetime(now)}")
        data = ("\n".join(trace) + "\n").encode("utf-8") + content.replace(b"\r\n", b"\n")
        tmp = os.path.join(self._tmp, key)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.rename(tmp, os.path.join(self._new, key))
        except BaseException:
            with suppress(OSError):
                os.unlink(tmp)
            raise
        return key, data


def _message_files(maildir: Path) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """(key, entry) for each message file in new/ and cur/."""
    for sub in ("new", "cur"):
        try:
            entries = os.scandir(maildir / sub)
        except (FileNotFoundError, NotADirectoryError):
            continue
        with entries:
            for entry in entries:
                if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                    continue
                yield entry.name.split(":", 1)[0], entry


def list_messages(maildir: Path) -> list[CapturedMessage]:
    """Every message in the inbox, newest first (headers only, bodies are not read)."""
    rows: list[tuple[int, CapturedMessage]] = []
    for key, entry in _message_files(maildir):
        try:
            stat = entry.stat()
            head = _read_head(entry.path)
        except FileNotFoundError:  # removed while we were listing
            continue
        received = datetime.fromtimestamp(stat.st_mtime).astimezone()
        rows.append((stat.st_mtime_ns,
                     captured_from_head(key, head, stat.st_size, received, Path(entry.path))))
    rows.sort(key=lambda row: (row[0], row[1].id), reverse=True)
    return [message for _, message in rows]


def message_path(maildir: Path, msg_id: str) -> Path:
    """The file holding message ``msg_id``; KeyError if there is none."""
    if not msg_id or "/" in msg_id or "\\" in msg_id or msg_id.startswith(".") or ":" in msg_id:
        raise KeyError(msg_id)
    candidate = maildir / "new" / msg_id
    if candidate.is_file():
        return candidate
    for key, entry in _message_files(maildir):
        if key == msg_id:
            return Path(entry.path)
    raise KeyError(msg_id)


def load_message(maildir: Path, msg_id: str) -> EmailMessage:
    """Parse one stored message in full; KeyError if ``msg_id`` is unknown."""
    path = message_path(maildir, msg_id)
    try:
        with path.open("rb") as fh:
            return cast(EmailMessage, _PARSER.parse(fh))
    except FileNotFoundError:
        raise KeyError(msg_id) from None


def _decoded(part: Message) -> str:
    try:
        return cast(str, cast(EmailMessage, part).get_content())
    except (LookupError, UnicodeError, AttributeError):
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            return payload.decode(part.get_content_charset() or "utf-8", "replace")
        return str(part.get_payload())


def message_parts(msg: EmailMessage) -> tuple[str | None, str | None]:
    """(html, text) bodies of a message, decoded to str; None where a part is absent."""
    html_part = msg.get_body(preferencelist=("html",))
    text_part = msg.get_body(preferencelist=("plain",))
    html = _decoded(html_part) if html_part is not None else None
    text = _decoded(text_part) if text_part is not None else None
    return html, text


def related_part(msg: EmailMessage, content_id: str) -> tuple[str, bytes] | None:
    """(content type, bytes) of the part a ``cid:`` URL points at, so a preview can show
    embedded images; None if the message has no such part."""
    wanted = content_id.strip().strip("<>")
    for part in msg.walk():
        cid = str(part.get("Content-ID", "")).strip().strip("<>")
        if cid and cid == wanted:
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return part.get_content_type(), payload
    return None


def clear(maildir: Path) -> int:
    """Delete every message (and stale tmp/ files); returns how many messages were removed."""
    removed = 0
    for _key, entry in list(_message_files(maildir)):
        try:
            os.unlink(entry.path)
            removed += 1
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise InboxError(f"cannot remove {entry.path}: {exc.strerror}") from exc
    try:
        with os.scandir(maildir / "tmp") as entries:
            for entry in entries:
                if entry.is_file(follow_symlinks=False):
                    with suppress(OSError):
                        os.unlink(entry.path)
    except (FileNotFoundError, NotADirectoryError):
        pass
    return removed
