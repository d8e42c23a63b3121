"""One issue as the site shows it (``WebIssue``), and the rewriting of its relative URLs.

Its own module so that the pages and the feeds, which draw it, and ``publish``, which
makes it, do not import each other."""

from __future__ import annotations

import datetime as dt
import html as html_lib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

__all__ = ["WebIssue", "is_relative", "rewrite_urls"]

_ATTR_URL = re.compile(r'(\b(?:src|href)=")([^"]*)(")', re.IGNORECASE)
_ABSOLUTE = re.compile(r"^([a-z][a-z0-9+.-]*:|//|#|/|\?)", re.IGNORECASE)
_FIRST_IMG = re.compile(r'<img\b[^>]*?\bsrc="([^"]+)"', re.IGNORECASE)


def is_relative(url: str) -> bool:
    return bool(url) and not _ABSOLUTE.match(url) and not url.startswith("gigo:slot:")


def rewrite_urls(fragment: str, change: Callable[[str], str]) -> str:
    """Apply ``change`` to every relative src/href value (unescaped in, escaped out)."""
    def replace(match: re.Match[str]) -> str:
        url = html_lib.unescape(match.group(2))
        if not is_relative(url):
            return match.group(0)
        return f"{match.group(1)}{html_lib.escape(change(url))}{match.group(3)}"

    return _ATTR_URL.sub(replace, fragment)


@dataclass(frozen=True)
class WebIssue:
    """One issue as the site shows it; every text is already public (no subscriber values)."""

    key: str
    number: int | None
    subject: str
    title: str
    preheader: str
    date: dt.datetime  # UTC
    path: str  # "issues/011/"
    url: str  # absolute
    body: str  # HTML, URLs relative to the page
    hero_src: str = ""  # as the page refers to it
    hero_alt: str = ""
    files: dict[str, Path] = field(default_factory=dict)  # site path -> local file to copy

    @property
    def day(self) -> str:
        return self.date.date().isoformat()

    def absolute(self, url: str) -> str:
        return urljoin(self.url, url) if url else ""

    @property
    def image_url(self) -> str:
        """The picture for link previews: the hero, else the first image of the body."""
        if self.hero_src:
            return self.absolute(self.hero_src)
        match = _FIRST_IMG.search(self.body)
        return self.absolute(html_lib.unescape(match.group(1))) if match else ""

    def content_html(self) -> str:
        """The full issue for feeds: hero and body, every URL absolute (feed readers have no page)."""
        hero = (f'<p><img src="{html_lib.escape(self.hero_src)}" alt="{html_lib.escape(self.hero_alt)}">'
                "</p>\n" if self.hero_src else "")
        return rewrite_urls(hero + self.body, lambda url: self.absolute(url))
