"""The feeds as feed readers see them: feedparser for Atom and RSS, JSON Feed 1.1's required fields."""

from __future__ import annotations

import calendar
import datetime as dt
import json
from pathlib import Path

import feedparser
import pytest
from test_publish import NOW, add_issues

from gigo_mail.config import load_config
from gigo_mail.web.publish import publish
from support import make_newsletter

# key -> (subject, page URL, UTC date, a sentence of its content)
EXPECTED = {
    "012": ("For you", "https://gigo.dev/issues/012/", dt.datetime(2024, 3, 5, 8, 30, tzinfo=dt.UTC),
            "Dear reader, your address is reader in reader."),
    "011": ("Text-to-video takes another massive leap forward | GIGO Tech Trends 011",
            "https://gigo.dev/issues/011/", dt.datetime(2024, 2, 20, tzinfo=dt.UTC),
            "Sora takes a short text description"),
    "010": ("The tenth", "https://gigo.dev/issues/010/", dt.datetime(2024, 1, 5, tzinfo=dt.UTC),
            "Older news."),
}


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_newsletter(tmp_path_factory.mktemp("feeds") / "news")
    add_issues(root)
    return publish(load_config(root), now=NOW).site_dir


@pytest.mark.parametrize("name", ["feed.xml", "rss.xml"])
def test_atom_and_rss_parse_cleanly_with_one_entry_per_issue(published: Path, name: str) -> None:
    feed = feedparser.parse((published / name).read_bytes())
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == ("atom10" if name == "feed.xml" else "rss20")
    assert feed.feed.title == "GIGO Tech Trends" and feed.feed.link == "https://gigo.dev/"
    assert len(feed.entries) == len(EXPECTED)
    for entry, (subject, url, when, sentence) in zip(feed.entries, EXPECTED.values(), strict=True):
        assert entry.title == subject
        assert entry.link == url and entry.id == url
        assert calendar.timegm(entry.published_parsed) == int(when.timestamp())
        assert sentence in entry.content[0].value
    # relative images made absolute: a feed reader has no page to resolve them from
    assert 'src="https://gigo.dev/issues/012/dot.gif"' in feed.entries[0].content[0].value
    updated = feed.feed.get("updated_parsed")
    assert calendar.timegm(updated) == int(EXPECTED["012"][2].timestamp())  # the newest issue, not "now"


def test_json_feed_has_the_required_fields_of_version_1_1(published: Path) -> None:
    feed = json.loads((published / "feed.json").read_text(encoding="utf-8"))
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert isinstance(feed["title"], str) and feed["title"]
    assert isinstance(feed["items"], list) and len(feed["items"]) == len(EXPECTED)
    assert feed["home_page_url"] == "https://gigo.dev/" and feed["feed_url"] == "https://gigo.dev/feed.json"
    assert all(isinstance(a.get("name"), str) for a in feed["authors"])
    for item, (subject, url, when, sentence) in zip(feed["items"], EXPECTED.values(), strict=True):
        assert isinstance(item["id"], str) and item["id"] == url and item["url"] == url
        assert isinstance(item.get("content_html") or item.get("content_text"), str)
        assert sentence in item["content_html"] and item["title"] == subject
        assert dt.datetime.fromisoformat(item["date_published"]) == when  # RFC 3339
    assert feed["items"][0]["image"] == "https://gigo.dev/issues/012/dot.gif"
    assert feed["items"][0]["summary"] == "Twelve for reader"
