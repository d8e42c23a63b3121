"""The preview's HTML pages, drawn with Jinja2 with autoescaping on for every template.

Nothing from an issue or a captured message reaches a page unescaped: email HTML
is only ever shown inside a sandboxed iframe that loads it from its own URL.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2

from gigo_mail.compose.compile import GMAIL_CLIP_BYTES, clip_level
from gigo_mail.errors import InboxUnavailable
from gigo_mail.web.inbox_maildir import list_messages, load_message, message_parts, related_part
from gigo_mail.web.preview import PreviewState

DESKTOP_WIDTH = 720  # a desktop client's reading pane; the email itself is 600 px wide
MOBILE_WIDTH = 375  # an iPhone's CSS width
IMPORTANT_HEADERS = ("from", "to", "subject", "date", "message-id", "list-unsubscribe",
                     "list-unsubscribe-post", "list-id", "reply-to", "return-path", "mime-version",
                     "content-type")
_ID_RE = re.compile(r"^[A-Za-z0-9._,=+-]{1,255}$")
_CID_RE = re.compile(r"""(\b(?:src|background)\s*=\s*["']?)cid:([^"'\s>]+)""", re.I)



@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("gigo_mail", "static"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["kb"] = lambda n: f"{n / 1024:.1f} KB"
    env.filters["urlpart"] = lambda s: quote(str(s), safe="")
    env.filters["when"] = _when
    return env


def _render(name: str, **context: Any) -> str:
    return _env().get_template(name).render(desktop_width=DESKTOP_WIDTH, mobile_width=MOBILE_WIDTH,
                                            **context)


def _when(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value).strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def preview_page(state: PreviewState, *, inbox_enabled: bool) -> str:
    """The issue page: widths side by side, text, source, report, and live reload."""
    current = state.current
    return _render(
        "preview.html",
        title=(current.subject or f"Issue {current.key}") if current else "Preview",
        current=current,
        error=state.error,
        version=state.version,
        inbox_version=state.inbox_version,
        built_at=_when(state.built_at) if state.built_at else "",
        clip_limit=GMAIL_CLIP_BYTES,
        clip_level=clip_level(current.html_bytes) if current else "ok",
        clip_percent=round(100 * current.clip_ratio) if current else 0,
        inbox_enabled=inbox_enabled,
    )


_STYLE_BLOCK = re.compile(r"(<style\b[^>]*>)(.*?)(</style>)", re.I | re.S)
_SCHEME_QUERY = re.compile(r"\(\s*prefers-color-scheme\s*:\s*(dark|light)\s*\)", re.I)
_SCHEME_META = re.compile(r"""(<meta\b[^>]*name=["'](?:supported-)?color-scheme["'][^>]*content=["'])"""
                          r"""([^"']*\bdark\b[^"']*)(["'])""", re.I)


def as_in_dark_mode(email_html: str) -> str:
    """The email as a dark-mode client that honours its own styles shows it, in any browser:
    ``prefers-color-scheme: dark`` rules always apply, ``light`` ones never, and a page that
    declares dark support gets the browser's dark defaults. What Gmail or Outlook do on top
    (inverting colours their own way) is not simulated."""
    def media(match: re.Match[str]) -> str:
        return "(min-width: 0px)" if match.group(1).lower() == "dark" else "(max-width: -1px)"

    def block(match: re.Match[str]) -> str:
        return match.group(1) + _SCHEME_QUERY.sub(media, match.group(2)) + match.group(3)

    dark = _STYLE_BLOCK.sub(block, email_html)
    return _SCHEME_META.sub(lambda m: m.group(1) + "dark" + m.group(3), dark)


def placeholder_email(error: str) -> str:
    """What the iframes show before the first successful compile."""
    return ("<!doctype html><meta charset=utf-8><body style='font:14px sans-serif;color:#a00;padding:1em'>"
            f"<p>Not compiled yet: {html.escape(error or 'waiting for the first build')}</p>")


def error_page(status: int, what: str) -> str:
    return _render("error.html", title=f"{status}", status=status, what=what, version=None)


# -- the inbox -----------------------------------------------------------------------

def inbox_page(state: PreviewState, maildir: Path | None) -> str:
    """Captured messages, newest first; each row opens the message page."""
    messages: list[Any] = []
    problem = ""
    if maildir is None:
        problem = "No inbox folder is configured."
    elif not maildir.is_dir():
        problem = f"{maildir} does not exist yet: start the inbox with 'gigo-mail inbox' and send to it."
    else:
        try:
            messages = list(list_messages(maildir))
        except OSError as exc:
            problem = str(exc)
    return _render("inbox.html", title="Inbox", messages=messages, problem=problem,
                   maildir=str(maildir or ""), version=state.version, inbox_version=state.inbox_version)


def _load(maildir: Path, msg_id: str) -> EmailMessage:
    if not _ID_RE.match(msg_id):
        raise InboxUnavailable(f"no message '{msg_id}' in {maildir}")
    try:
        msg: EmailMessage = load_message(maildir, msg_id)
    except (KeyError, FileNotFoundError):
        raise InboxUnavailable(f"no message '{msg_id}' in {maildir}") from None
    return msg


def _raw_source(maildir: Path, msg_id: str, msg: EmailMessage) -> str:
    """The stored bytes as text (not a re-serialisation, which could hide what was sent)."""
    for sub in ("new", "cur"):
        for path in (maildir / sub).glob(f"{glob_escape(msg_id)}*"):
            if path.name == msg_id or path.name.startswith(msg_id + ":"):
                return path.read_bytes().decode("utf-8", "replace")
    return msg.as_bytes().decode("utf-8", "replace")


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


@dataclass(frozen=True)
class HeaderRow:
    name: str
    value: str
    important: bool


def _header_rows(msg: EmailMessage) -> list[HeaderRow]:
    rows = []
    for name, value in msg.items():
        text = " ".join(str(value).split())
        rows.append(HeaderRow(name, text, name.lower() in IMPORTANT_HEADERS))
    return rows


def message_page(state: PreviewState, maildir: Path, msg_id: str) -> str:
    """One captured message: both widths, plain text, headers table, raw source."""
    msg = _load(maildir, msg_id)
    html_body, text_body = message_parts(msg)
    headers = _header_rows(msg)
    missing = [name for name in ("Message-ID", "Date", "From", "To", "Subject", "List-Unsubscribe")
               if msg.get(name) is None]
    return _render(
        "message.html",
        title=str(msg.get("Subject", "(no subject)")),
        msg_id=msg_id,
        subject=" ".join(str(msg.get("Subject", "")).split()),
        from_header=str(msg.get("From", "")),
        to=str(msg.get("To", "")),
        has_html=html_body is not None,
        text=text_body,
        headers=headers,
        missing=missing,
        raw=_raw_source(maildir, msg_id, msg),
        version=state.version,
        inbox_version=state.inbox_version,
    )


def message_html(maildir: Path, msg_id: str) -> str:
    """The HTML part with cid: images pointed at this server (the iframe's src)."""
    msg = _load(maildir, msg_id)
    html_body, _text = message_parts(msg)
    if html_body is None:
        raise InboxUnavailable(f"message '{msg_id}' has no HTML part")
    prefix = f"/inbox/{quote(msg_id, safe='')}/cid/"
    return _CID_RE.sub(lambda m: m.group(1) + prefix + quote(m.group(2), safe="@._-"), html_body)


def message_part(maildir: Path, msg_id: str, content_id: str) -> tuple[str, bytes]:
    """(content type, bytes) of the part with this Content-ID."""
    found = related_part(_load(maildir, msg_id), content_id)
    if found is None:
        raise InboxUnavailable(f"message '{msg_id}' has no part <{content_id.strip().strip('<>')}>")
    return found
