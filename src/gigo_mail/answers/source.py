"""Where the answers to a send arrive: an IMAP mailbox (TLS, certificate verified), a
Maildir folder or an mbox file. Each gives its messages as (id, bytes) and can move
processed ones to another folder. A file of JSON notifications from a sending service
(Amazon SES, Postmark, Mailgun) is a source too: each notification is handed on as a small
message with the JSON as its body, so it is read, proven and remembered like any answer.

Sources are named like ``imaps://user@host[:993]/INBOX``, ``maildir:PATH``, ``mbox:PATH``
(the form ``[bounces] source`` takes) and ``json:PATH``. The IMAP password comes from
``GIGO_IMAP_PASSWORD`` or a prompt, never from the URL or the command line.
"""

from __future__ import annotations

import contextlib
import imaplib
import json
import mailbox
import re
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from gigo_mail import env
from gigo_mail.config_schema import mail_source_problem
from gigo_mail.errors import ConfigError, MailSourceError

FETCH_BATCH = 100
MAX_JSON_FILE = 200 * 1024 * 1024  # a file of notifications larger than this is refused


class MailSource(Protocol):
    def messages(self) -> Iterator[tuple[str, bytes]]: ...

    def move(self, ids: list[str], folder: str) -> int: ...

    def close(self) -> None: ...


# --- Maildir and mbox ----------------------------------------------------------------------------


def _exists(path: Path) -> None:
    if not path.exists():
        raise MailSourceError(f"{path}: no such file or folder; check the path")


def _check_mbox(path: Path) -> None:
    """An mbox starts with a "From " line (or is empty); anything else (a CSV, an .eml, random bytes)
    would read as one odd message or none, and "0 messages" would hide the mistake."""
    try:
        with path.open("rb") as fh:
            start = fh.read(5)
    except OSError as exc:
        raise MailSourceError(f"{path}: cannot read it ({exc.strerror})") from None
    if start and start != b"From ":
        raise MailSourceError(f"{path} is not an mbox file (an mbox starts with a 'From ' line); "
                              "give an mbox, or a Maildir with --maildir")


class MaildirSource:
    """A Maildir (``cur``/``new``/``tmp``); ``move`` goes to the Maildir++ sub-folder ``.FOLDER``."""

    def __init__(self, path: Path) -> None:
        _exists(path)
        if not (path / "cur").is_dir() or not (path / "new").is_dir():
            raise MailSourceError(f"{path} is not a Maildir (it needs cur/ and new/ folders); "
                                  "for an mbox file use --mbox")
        self.path = path
        self.box = mailbox.Maildir(path, factory=None, create=False)

    def messages(self) -> Iterator[tuple[str, bytes]]:
        for key in sorted(self.box.iterkeys()):
            try:
                yield key, self.box.get_bytes(key)
            except KeyError:  # taken away meanwhile (another reader)
                continue

    def move(self, ids: list[str], folder: str) -> int:
        target = self.box.add_folder(folder) if folder not in self.box.list_folders() \
            else self.box.get_folder(folder)
        moved = 0
        for key in ids:
            try:
                message = self.box.get_message(key)
            except KeyError:
                continue
            target.add(message)
            self.box.discard(key)
            moved += 1
        return moved

    def close(self) -> None:
        self.box.close()


class MboxSource:
    """An mbox file, locked while it is read; ``move`` appends to ``FOLDER`` beside it."""

    def __init__(self, path: Path) -> None:
        _exists(path)
        if path.is_dir():
            raise MailSourceError(f"{path} is a folder, not an mbox file; for a Maildir use --maildir")
        _check_mbox(path)
        self.path = path
        self._keys: dict[str, str] = {}
        self.box = mailbox.mbox(path, factory=None, create=False)
        try:
            self.box.lock()
        except mailbox.ExternalClashError:
            raise MailSourceError(f"{path} is locked by another program; try again later") from None

    def messages(self) -> Iterator[tuple[str, bytes]]:
        self._keys = {str(key): key for key in self.box.iterkeys()}  # ints at run time
        for name, key in self._keys.items():
            yield name, self.box.get_bytes(key)

    def move(self, ids: list[str], folder: str) -> int:
        target_path = self.path.parent / folder
        target = mailbox.mbox(target_path, create=True)
        target.lock()
        try:
            for name in ids:
                target.add(self.box.get_message(self._keys[name]))
            target.flush()
        finally:
            target.unlock()
            target.close()
        for name in ids:
            self.box.discard(self._keys[name])
        self.box.flush()
        return len(ids)

    def close(self) -> None:
        self.box.unlock()
        self.box.close()


# --- JSON notifications --------------------------------------------------------------------------


class JsonSource:
    """A JSON file of notifications: one object, or a list of them (SNS envelopes included).
    ``move`` moves nothing: the file is the user's, and a second run is remembered anyway."""

    def __init__(self, path: Path) -> None:
        try:
            if path.stat().st_size > MAX_JSON_FILE:
                raise MailSourceError(f"{path} is larger than {MAX_JSON_FILE // 2**20} MB: split it into "
                                      "smaller JSON files")
            text = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise MailSourceError(f"{path}: cannot read it ({exc.strerror})") from None
        except UnicodeDecodeError:
            raise MailSourceError(f"{path} is not UTF-8 text: give a JSON file of notifications") from None
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise MailSourceError(f"{path} is not JSON ({exc.msg} at line {exc.lineno}): give one "
                                  "notification or a list of them") from None
        except RecursionError:
            raise MailSourceError(f"{path} nests too deeply to be a notification") from None
        self.path = path
        self.items = value if isinstance(value, list) else [value]

    def messages(self) -> Iterator[tuple[str, bytes]]:
        for index, item in enumerate(self.items):
            body = json.dumps(item, sort_keys=True, ensure_ascii=True)
            when = _when(item)
            date = f"Date: {format_datetime(when)}\r\n" if when else ""
            yield str(index), (f"{date}Subject: notification {index + 1} of {self.path.name}\r\n"
                               "Content-Type: application/json\r\n\r\n" + body + "\r\n").encode("ascii")

    def move(self, ids: list[str], folder: str) -> int:
        return 0

    def close(self) -> None:
        return None


def _when(item: object) -> datetime | None:
    """When a notification says the answer happened (a soft bounce counts at that time)."""
    if not isinstance(item, dict):
        return None
    inner = item.get("event-data")
    candidates = [item.get("Timestamp"), item.get("BouncedAt"),
                  inner.get("timestamp") if isinstance(inner, dict) else None]
    for key in ("bounce", "complaint", "mail"):
        value = item.get(key)
        candidates.append(value.get("timestamp") if isinstance(value, dict) else None)
    for value in candidates:
        try:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return datetime.fromtimestamp(value, UTC)
            if isinstance(value, str) and value:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
                return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except (ValueError, OverflowError, OSError):
            continue
    return None


# --- IMAP ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImapUrl:
    host: str
    port: int
    user: str
    folder: str

    def __str__(self) -> str:
        return f"imaps://{self.user}@{self.host}:{self.port}/{self.folder}"


def parse_imap_url(url: str) -> ImapUrl:
    parts = urlsplit(url)
    if parts.scheme != "imaps":
        raise ConfigError(f"IMAP source '{url}' must start with imaps:// (IMAP over TLS, port 993)")
    if not parts.hostname or not parts.username:
        raise ConfigError(f"IMAP source '{url}' needs a user and a host: imaps://user@host/INBOX")
    if parts.password:
        raise ConfigError(f"IMAP source '{parts.hostname}': put no password in the URL; "
                          "set GIGO_IMAP_PASSWORD (or you will be asked)")
    try:
        port = parts.port or 993
    except ValueError:
        raise ConfigError(f"IMAP source '{url}' has an invalid port") from None
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    return ImapUrl(parts.hostname, port, unquote(parts.username), folder)


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


_UID_RE = re.compile(rb"UID (\d+)")


class ImapSource:
    """One IMAP folder over TLS. Reads with BODY.PEEK (nothing is marked seen); moves with MOVE
    (RFC 6851) when the server has it, else COPY, \\Deleted and EXPUNGE."""

    def __init__(self, url: ImapUrl, password: str, *, cafile: str | None = None,
                 timeout: float = 30) -> None:
        self.url = url
        context = ssl.create_default_context()
        if cafile:
            try:
                context.load_verify_locations(cafile)
            except (OSError, ssl.SSLError) as exc:
                raise MailSourceError(f"cannot load the CA file {cafile}: {exc}") from None
        try:
            self.imap = imaplib.IMAP4_SSL(url.host, url.port, ssl_context=context, timeout=timeout)
        except ssl.SSLCertVerificationError as exc:
            raise MailSourceError(f"{url.host}:{url.port}: the certificate does not verify "
                                  f"({exc.verify_message}); set [bounces] cafile for a private CA") from None
        except (OSError, imaplib.IMAP4.error) as exc:
            raise MailSourceError(f"cannot connect to {url.host}:{url.port}: {exc}") from None
        try:
            self.imap.login(url.user, password)
        except imaplib.IMAP4.error:
            self.imap.shutdown()
            raise MailSourceError(f"{url.host} refused the login for {url.user}; check GIGO_IMAP_PASSWORD") \
                from None
        status, _ = self.imap.select(_quote(url.folder))
        if status != "OK":
            self.imap.logout()
            raise MailSourceError(f"{url.host} has no folder '{url.folder}'")

    def _check(self, reply: tuple[str, list[object]], action: str) -> list[object]:
        status, data = reply
        if status != "OK":
            raise MailSourceError(f"{self.url.host}: cannot {action}: {data}")
        return data

    def messages(self) -> Iterator[tuple[str, bytes]]:
        data = self._check(self.imap.uid("SEARCH", "ALL"), "list the messages")
        uids = [u.decode() for u in (data[0] or b"").split()] if isinstance(data[0], bytes) else []
        for start in range(0, len(uids), FETCH_BATCH):
            batch = ",".join(uids[start:start + FETCH_BATCH])
            fetched = self._check(self.imap.uid("FETCH", batch, "(UID BODY.PEEK[])"),
                                  "fetch messages")
            for item in fetched:
                if isinstance(item, tuple) and len(item) == 2:
                    match = _UID_RE.search(item[0])
                    if match:
                        yield match.group(1).decode(), bytes(item[1])

    def move(self, ids: list[str], folder: str) -> int:
        self.imap.create(_quote(folder))  # "already exists" is fine
        uids = ",".join(ids)
        capabilities = self.imap.capabilities
        if "MOVE" in capabilities:
            self._check(self.imap.uid("MOVE", uids, _quote(folder)), f"move messages to {folder}")
        else:
            self._check(self.imap.uid("COPY", uids, _quote(folder)), f"copy messages to {folder}")
            self._check(self.imap.uid("STORE", uids, "+FLAGS.SILENT", r"(\Deleted)"), "flag messages")
            self._check(self.imap.expunge(), "expunge")
        return len(ids)

    def close(self) -> None:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            self.imap.logout()


def open_source(spec: str, password: Callable[[str], str], cafile: str | None = None) -> MailSource:
    """A source from its name (see the module docs); ``password(prompt)`` is asked only for IMAP."""
    if spec.startswith("imaps://") or spec.startswith("imap://"):
        url = parse_imap_url(spec)
        prompt = f"IMAP password for {url.user} at {url.host}"
        secret = env.imap_password() or password(prompt)
        return ImapSource(url, secret, cafile=cafile)
    kind, colon, path = spec.partition(":")
    if colon and kind == "maildir":
        return MaildirSource(Path(path).expanduser())
    if colon and kind == "mbox":
        return MboxSource(Path(path).expanduser())
    if colon and kind == "json":
        return JsonSource(Path(path).expanduser())
    raise ConfigError(f"mail source {mail_source_problem(spec) or repr(spec)}")
