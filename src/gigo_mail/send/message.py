"""Per-recipient messages as wire-ready bytes, built from parts encoded once.

The HTML and text parts are quoted-printable. QP is local: every byte encodes
on its own, and a soft line break (``=`` CRLF) decodes to nothing. So each
literal stretch between two slots is encoded once per issue, and a recipient's
message is only their few values encoded and joined between soft breaks:
no MIME library, no MJML, no premailer and no regex per recipient.

Headers are folded here (RFC 5322: lines of at most 78 characters where there is a
space to fold at, never over 998); a value that is not ASCII, or has no space to fold
at, becomes RFC 2047 encoded words of at most 75 characters each, split at character
boundaries so that it decodes to exactly what was put in. A QP line that ends where a
slot begins gets its soft break within 76 characters (RFC 2045 6.7) too.
List-Unsubscribe is written as a plain ``<URI>, <URI>`` list and folded only
between URIs: an RFC 2047-encoded List-Unsubscribe is useless to providers.
"""

from __future__ import annotations

import binascii
import html
import os
import time
from datetime import UTC, datetime
from email.utils import format_datetime, formataddr, parseaddr
from typing import TYPE_CHECKING, Protocol

from gigo_mail.compose.compiled import CompiledIssue
from gigo_mail.compose.slots import SAMPLE_VALUES, sample_fields, split
from gigo_mail.errors import ConfigError
from gigo_mail.send.msgid import MessageIds, random_message_id
from gigo_mail.send.tokens import make_token, unsubscribe_url
from gigo_mail.send.verp import UNSUBSCRIBE_CONTEXT, VerpAddresses
from gigo_mail.text import one_line
from gigo_mail.transport.wire import WireForm

if TYPE_CHECKING:  # cryptography loads only when [dkim] signs
    from gigo_mail.send.dkim import DkimSigner

CRLF = b"\r\n"
SOFT_BREAK = b"=\r\n"
TEST_PREFIX = "[TEST] "


class Recipient(Protocol):
    """What the builder needs of a subscriber (see ``subscribers.Subscriber``)."""

    @property
    def email(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def smtp_address(self) -> str: ...
    @property
    def needs_smtputf8(self) -> bool: ...
    @property
    def name(self) -> str: ...
    @property
    def fields(self) -> dict[str, str]: ...


class BuiltMessage:
    """One recipient's message: ``data`` as RFC 5322 bytes (CRLF, not dot-stuffed, what
    BDAT and files take), ``wire`` as DATA sends it (dot-stuffed, with its final dot)."""

    __slots__ = ("message_id", "data", "_pieces", "_form")

    def __init__(self, message_id: str, pieces: list[bytes], form: WireForm) -> None:
        self.message_id = message_id
        self.data = b"".join(pieces)
        self._pieces = pieces
        self._form = form

    @property
    def wire(self) -> bytes:
        """The DATA payload; the shared stretches were stuffed once per issue."""
        return self._form.payload(self._pieces)


QP_LINE = 76  # RFC 2045 6.7, the "=" of a soft break included
FOLD_AT = 78  # RFC 5322 2.1.1: lines should be at most 78 characters
WORD_BYTES = 45  # UTF-8 bytes per encoded word: "=?utf-8?b?" + 60 base64 characters + "?=" = 72


def _tokens(line: bytes) -> list[bytes]:
    """A QP line as its units: an ``=XX`` escape or one literal byte (a final lone "=" is a soft break)."""
    out, i = [], 0
    while i < len(line):
        step = 3 if line[i:i + 1] == b"=" and i + 3 <= len(line) else 1
        out.append(line[i:i + step])
        i += step
    return out


def _rewrap(line: bytes, limit: int) -> bytes:
    """``line`` cut by soft breaks so that no piece passes ``limit`` (its "=" included); never inside
    an escape. binascii leaves 77-78 characters where a 74-76-character line ends in an encoded blank."""
    if len(line) <= limit:
        return line
    soft = line.endswith(b"=") and not line.endswith(b"==") and line[-3:-2] != b"="
    body = line[:-1] if soft else line
    pieces, current = [], b""
    for token in _tokens(body):
        if len(current) + len(token) > limit - 1:  # room for the "=" of the soft break after it
            pieces.append(current)
            current = b""
        current += token
    if soft and len(current) + 1 > limit:
        *head, tail = _tokens(current)
        pieces.append(b"".join(head))
        current = tail
    pieces.append(current + (b"=" if soft else b""))
    return SOFT_BREAK.join(pieces)


def qp(data: bytes) -> bytes:
    """Quoted-printable with CRLF line endings (input must use LF), ready to be followed by
    a soft break: no line exceeds 76 characters (RFC 2045 6.7), blanks at a line's end are
    encoded, and the last line leaves room for the "=" that follows it."""
    lines = binascii.b2a_qp(data, istext=True).split(b"\n")
    lines = [_rewrap(line, QP_LINE) for line in lines[:-1]] + [_rewrap(lines[-1], QP_LINE - 1)]
    return CRLF.join(lines)


def encoded_words(value: str) -> list[str]:
    """RFC 2047 "B" encoded words of at most 72 characters, cut at character boundaries."""
    words: list[str] = []
    chunk = bytearray()
    for char in value:
        encoded = char.encode("utf-8")
        if len(chunk) + len(encoded) > WORD_BYTES:
            words.append(f"=?utf-8?b?{binascii.b2a_base64(chunk, newline=False).decode()}?=")
            chunk.clear()
        chunk += encoded
    if chunk:
        words.append(f"=?utf-8?b?{binascii.b2a_base64(chunk, newline=False).decode()}?=")
    return words


def _fold(name: str, words: list[str], tail: str = "") -> bytes:
    """``Name: w1 w2 ... tail``, folded before a word that would pass 78 characters."""
    lines: list[str] = []
    line = f"{name}:"
    for word in words:
        if len(line) + 1 + len(word) > FOLD_AT and line != f"{name}:":
            lines.append(line)
            line = ""
        line += f" {word}"
    if tail:
        if len(line) + 1 + len(tail) > FOLD_AT and line != f"{name}:":
            lines.append(line)
            line = ""
        line += f" {tail}"
    lines.append(line)
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


class _EncodedPart:
    """A text split at its slots, each literal stretch QP-encoded once."""

    __slots__ = ("literals", "indexes")

    def __init__(self, source: str) -> None:
        literals, self.indexes = split(source.replace("\r\n", "\n"))
        self.literals = [qp(p.encode("utf-8")) for p in literals]

    def render(self, values: list[bytes]) -> list[bytes]:
        out = [self.literals[0]]
        for index, literal in zip(self.indexes, self.literals[1:], strict=True):
            out += (SOFT_BREAK, values[index], SOFT_BREAK, literal)
        return out


def _header(name: str, value: str) -> bytes:
    """An unstructured header (Subject, List-Id), folded at its spaces; encoded words when
    it is not ASCII, or when a run of text without a space would pass 998 octets."""
    value = one_line(value)
    if value.isascii():
        if len(name) + len(value) < FOLD_AT:
            return f"{name}: {value}\r\n".encode("ascii")
        words = value.split(" ")
        if all(word and len(word) < 990 for word in words):  # folding keeps every space
            return _fold(name, words)
    return _fold(name, encoded_words(value))


def _address_header(name: str, display: str, address: str) -> bytes:
    """``Name: display <address>``; a long or non-ASCII display name becomes encoded words
    (for an SMTPUTF8 address too: the address stays UTF-8 as it is, RFC 6532)."""
    display = one_line(display)
    if not display:
        return f"{name}: {address}\r\n".encode()
    if display.isascii() and len(display) + len(address) < 60:
        return f"{name}: {formataddr((display, address))}\r\n".encode()
    return _fold(name, encoded_words(display), f"<{address}>")


class MessageFactory:
    """Builds each subscriber's message from one compiled issue."""

    def __init__(self, compiled: CompiledIssue, *, secret: bytes, test: bool = False,
                 signer: DkimSigner | None = None) -> None:
        newsletter = compiled.config.newsletter
        compiled.config.require("from_addr")
        if not (newsletter.unsubscribe_url or newsletter.unsubscribe_mailto):
            raise ConfigError(f"{compiled.config.path}: [newsletter] needs "
                              "'unsubscribe_url' or 'unsubscribe_mailto'; bulk mail must carry one")
        self.compiled = compiled
        self.test = test
        self._secret = secret
        self._newsletter = newsletter
        display, self.from_address = parseaddr(newsletter.from_addr)
        if "@" not in self.from_address:
            raise ConfigError(f"[newsletter] from = '{newsletter.from_addr}' has no valid address")
        bounces = compiled.config.bounces
        self.envelope_from = bounces.envelope_base(self.from_address)
        verp = VerpAddresses(self.envelope_from, secret, compiled.issue.key)
        self._verp = verp if bounces.verp and not test and verp.enabled else None
        self._domain = newsletter.from_domain
        self._ids = MessageIds(secret, compiled.issue.key, self._domain)
        self._date_second = -1
        self._date_header = b""
        self._html = _EncodedPart(compiled.html.source)
        self._text = _EncodedPart(compiled.text.source)
        self._subject_slots = bool(compiled.subject.slots_used)
        subject = compiled.subject.source
        self._subject_static = _header("Subject", (TEST_PREFIX if test else "") + subject)
        self._static_head, self._skeleton = self._prebuild(display)
        mailbox = newsletter.unsubscribe_mailto
        tokens = VerpAddresses(mailbox, secret, compiled.issue.key, UNSUBSCRIBE_CONTEXT) if mailbox else None
        wanted = compiled.config.unsubscribe.mailto_token and not test
        self._unsubscribe_tokens = tokens if tokens is not None and tokens.enabled and wanted else None
        mailto = f"<mailto:{mailbox}?subject=unsubscribe>" if mailbox else ""
        self._unsubscribe_tail = (f",\r\n {mailto}" if mailto else "").encode("ascii") + CRLF
        self._unsubscribe_mailto_only = f"List-Unsubscribe: {mailto}\r\n".encode("ascii")
        self._signer = signer
        if signer is not None:
            signer.prepare([*self._skeleton, *self._text.literals, *self._html.literals, SOFT_BREAK])
        self._wire = WireForm([*self._html.literals, *self._text.literals, *self._skeleton, SOFT_BREAK, CRLF,
                               self._static_head, self._subject_static, self._unsubscribe_mailto_only])

    def _prebuild(self, display: str) -> tuple[bytes, tuple[bytes, bytes, bytes]]:
        n = self._newsletter
        boundary = f"=_gigo_{os.urandom(8).hex()}"
        head = [_address_header("From", display, self.from_address)]
        if n.reply_to:
            rname, raddr = parseaddr(n.reply_to)
            head.append(_address_header("Reply-To", rname, raddr))
        list_id = n.list_id or f"{self.compiled.issue.key}.list.{self._domain}"
        head.append(_header("List-Id", f"{n.name} <{list_id}>"))
        if n.unsubscribe_url:
            head.append(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
        head.append(b"MIME-Version: 1.0\r\n")
        head.append(f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n'.encode())
        text_head = (f"--{boundary}\r\nContent-Type: text/plain; charset=\"utf-8\"\r\n"
                     "Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode()
        html_part_head = (b'Content-Type: text/html; charset="utf-8"\r\n'
                          b"Content-Transfer-Encoding: quoted-printable\r\n\r\n")
        embedded = [image for image in self.compiled.images if image.embedded]
        if embedded:
            related = f"=_gigo_rel_{os.urandom(8).hex()}"
            html_head = (f"\r\n--{boundary}\r\nContent-Type: multipart/related; "
                         f'boundary="{related}"\r\n\r\n--{related}\r\n').encode() + html_part_head
            tail = [b""]
            for image in embedded:
                data = binascii.b2a_base64(image.data, newline=False)
                lines = CRLF.join(data[i:i + 76] for i in range(0, len(data), 76))
                tail.append(f"--{related}\r\nContent-Type: {image.content_type}\r\n"
                            "Content-Transfer-Encoding: base64\r\n"
                            f"Content-ID: <{image.cid}>\r\n"
                            f'Content-Disposition: inline; filename="{image.filename}"\r\n\r\n'.encode()
                            + lines + CRLF)
            tail.append(f"--{related}--\r\n--{boundary}--\r\n".encode())
            end = CRLF.join(tail)
        else:
            html_head = f"\r\n--{boundary}\r\n".encode() + html_part_head
            end = f"\r\n--{boundary}--\r\n".encode()
        return b"".join(head), (text_head, html_head, end)

    def _date(self) -> bytes:
        now = int(time.time())
        if now != self._date_second:
            self._date_second = now
            stamp = format_datetime(datetime.fromtimestamp(now, UTC))  # "+0000", not "-0000"
            self._date_header = f"Date: {stamp}\r\n".encode()
        return self._date_header

    def envelope_for(self, subscriber: Recipient) -> str:
        """The envelope sender for one recipient: its VERP address when enabled, else the return path."""
        if self._verp is None:
            return self.envelope_from
        return self._verp.address(subscriber.key)

    def verp_tag(self, envelope: str) -> int | None:
        """The journal's lookup tag of a return path :meth:`envelope_for` gave (its ``sending`` mark
        keeps it, so that a bounce to it is found by index); None without VERP."""
        return None if self._verp is None else self._verp.tag(envelope)

    def unsubscribe_mailto(self, key: str) -> str:
        """``mailto:unsubscribe+<issue>.<mac>@domain?subject=unsubscribe``: writing to it proves
        the reader (``answers.proof``); the plain address for test copies, or when the
        issue key cannot be a token."""
        mailbox = self._newsletter.unsubscribe_mailto
        if self._unsubscribe_tokens is not None:
            mailbox = self._unsubscribe_tokens.address(key)
        return f"mailto:{mailbox}?subject=unsubscribe"

    def unsubscribe_link(self, email: str, key: str = "") -> str:
        pattern = self._newsletter.unsubscribe_url
        if not pattern:
            return self.unsubscribe_mailto(key)
        return unsubscribe_url(pattern, make_token(self._secret, email), email)

    def _list_unsubscribe(self, url: str, key: str) -> bytes:
        """A plain ``<URI>`` list, never encoded words: the https URI first (one-click, RFC 8058),
        then the reader's own tokenised mailto."""
        if self._unsubscribe_tokens is None:
            if not self._newsletter.unsubscribe_url:
                return self._unsubscribe_mailto_only
            return b"List-Unsubscribe: <" + url.encode("ascii") + b">" + self._unsubscribe_tail
        mailto = f"<{self.unsubscribe_mailto(key)}>"
        if not self._newsletter.unsubscribe_url:
            return f"List-Unsubscribe: {mailto}\r\n".encode("ascii")
        return f"List-Unsubscribe: <{url}>,\r\n {mailto}\r\n".encode("ascii")

    def build(self, subscriber: Recipient, message_id: str | None = None) -> BuiltMessage:
        """The complete message for one subscriber; tens of microseconds. ``message_id``
        re-sends a first, uncertain attempt as the same message."""
        fields = subscriber.fields
        if self.test:
            fields = sample_fields(self.compiled.required_columns, fields)
        name = subscriber.name or (SAMPLE_VALUES["name"] if self.test else "")
        url = self.unsubscribe_link(subscriber.email, subscriber.key)
        raw = self.compiled.values(fields, name, subscriber.email, url)
        html_values = [qp(html.escape(v, quote=True).encode("utf-8")) for v in raw]
        text_values = [qp(v.encode("utf-8")) for v in raw]
        if not message_id:
            message_id = random_message_id(self._domain) if self.test else self._ids.make(subscriber.key)
        if self._subject_slots:
            subject = (TEST_PREFIX if self.test else "") + self.compiled.subject.fill(raw)
            subject_header = _header("Subject", subject)
        else:
            subject_header = self._subject_static
        text_head, html_head, end = self._skeleton
        head = [
            _address_header("To", subscriber.name, subscriber.smtp_address),
            subject_header,
            self._date(),
            f"Message-ID: {message_id}\r\n".encode(),
            self._list_unsubscribe(url, subscriber.key),
            self._static_head,
        ]
        body = [text_head, *self._text.render(text_values), html_head, *self._html.render(html_values), end]
        if self._signer is not None:  # the bytes are final here: sign exactly what is sent
            head.insert(0, self._signer.signature_fields(b"".join(head), body))
        return BuiltMessage(message_id, [*head, CRLF, *body], self._wire)
