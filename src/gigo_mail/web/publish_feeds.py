"""The site's feeds (Atom, RSS 2.0, JSON Feed 1.1) and its sitemap.

Atom and RSS come from feedgen. Nothing in them comes from the clock: the
feed's "updated" is the newest issue's date, so publishing twice gives the same
bytes. Entry IDs are the issues' page URLs, which never change for an issue.
"""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

from feedgen.feed import FeedGenerator

from gigo_mail.compose.site_paths import absolute
from gigo_mail.config import Config
from gigo_mail.version import __version__

if TYPE_CHECKING:
    from gigo_mail.web.site_issue import WebIssue

ATOM_NAME, RSS_NAME, JSON_NAME, SITEMAP_NAME = "feed.xml", "rss.xml", "feed.json", "sitemap.xml"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
# When there is no issue yet, the feeds still need a fixed "updated".
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _updated(items: list[WebIssue]) -> dt.datetime:
    return max((item.date for item in items), default=EPOCH)


def _description(config: Config) -> str:
    return config.site.description or config.newsletter.name


def _generator(config: Config, items: list[WebIssue], self_path: str) -> FeedGenerator:
    newsletter = config.newsletter
    home = absolute(newsletter.site_url, "")
    fg = FeedGenerator()
    fg.id(home)
    fg.title(newsletter.name)
    fg.subtitle(_description(config))
    fg.description(_description(config))
    fg.author({"name": newsletter.name})
    fg.link(href=absolute(newsletter.site_url, self_path), rel="self")
    fg.link(href=home, rel="alternate")  # last: it is also RSS's channel <link>
    fg.language(newsletter.lang)
    fg.generator("gigo-mail", __version__)
    fg.updated(_updated(items))
    fg.lastBuildDate(_updated(items))
    for item in items:  # newest first, as the archive
        entry = fg.add_entry(order="append")
        entry.id(item.url)
        entry.guid(item.url, permalink=True)
        entry.title(item.subject)
        entry.link(href=item.url, rel="alternate")
        entry.published(item.date)
        entry.updated(item.date)
        if item.preheader:
            entry.summary(item.preheader)
        entry.content(item.content_html(), type="html")
    return fg


def atom_feed(config: Config, items: list[WebIssue]) -> bytes:
    return bytes(_generator(config, items, ATOM_NAME).atom_str(pretty=True))


def rss_feed(config: Config, items: list[WebIssue]) -> bytes:
    return bytes(_generator(config, items, RSS_NAME).rss_str(pretty=True))


def json_feed(config: Config, items: list[WebIssue]) -> bytes:
    """JSON Feed 1.1 (https://www.jsonfeed.org/version/1.1/): plain JSON, no generator needed."""
    newsletter = config.newsletter
    feed: dict[str, Any] = {
        "version": JSON_FEED_VERSION,
        "title": newsletter.name,
        "home_page_url": absolute(newsletter.site_url, ""),
        "feed_url": absolute(newsletter.site_url, JSON_NAME),
        "description": _description(config),
        "language": newsletter.lang,
        "authors": [{"name": newsletter.name}],
        "items": [],
    }
    for item in items:
        entry: dict[str, Any] = {"id": item.url, "url": item.url, "title": item.subject,
                                 "content_html": item.content_html(),
                                 "date_published": item.date.isoformat()}
        if item.preheader:
            entry["summary"] = item.preheader
        if item.image_url:
            entry["image"] = item.image_url
        feed["items"].append(entry)
    return (json.dumps(feed, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def sitemap(config: Config, items: list[WebIssue], archive_paths: list[str]) -> bytes:
    """sitemap.xml: the archive pages and every issue page, with the issue's date."""
    ET.register_namespace("", SITEMAP_NS)
    urlset = ET.Element(f"{{{SITEMAP_NS}}}urlset")
    newest = _updated(items).date().isoformat() if items else ""
    rows = [(path, newest) for path in archive_paths] + [(item.path, item.day) for item in items]
    for path, day in rows:
        url = ET.SubElement(urlset, f"{{{SITEMAP_NS}}}url")
        ET.SubElement(url, f"{{{SITEMAP_NS}}}loc").text = absolute(config.newsletter.site_url, path)
        if day:
            ET.SubElement(url, f"{{{SITEMAP_NS}}}lastmod").text = day
    ET.indent(urlset)
    return ET.tostring(urlset, encoding="utf-8", xml_declaration=True) + b"\n"
