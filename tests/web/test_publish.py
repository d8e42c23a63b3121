"""The published site: which issues, what each page holds, links, privacy, reproducibility, layout."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from typer.testing import CliRunner

from gigo_mail.cli.app import app
from gigo_mail.compose.issue import find_issue
from gigo_mail.compose.site_paths import dead_view_link_warning, issue_page_exists
from gigo_mail.config import load_config
from gigo_mail.errors import ConfigError, IssueError
from gigo_mail.journal.deliveries import Journal
from gigo_mail.send.tokens import make_token
from gigo_mail.web.publish import publish
from gigo_mail.web.screenshot import Shot, find_chromium, measure_overflow, png_size, take_screenshots
from support import DATA, GIF, REPO, make_newsletter, write_issue

SITE_URL = "https://gigo.dev"
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
PERSONAL_BODY = """
## Hello {{ subscriber.first_name | default("friend") }}

Dear {{ subscriber.name }}, your address is {{ subscriber.email }} in {{ subscriber.city }}.
[Leave]({{ unsubscribe_url }}) or read [the previous issue](../011/).

![A dot](dot.gif)

| column one | column two | column three | column four | column five | column six |
| --- | --- | --- | --- | --- | --- |
| a fairly long cell value | another fairly long cell | and another one here | four | five | six |

```
a_very_long_line_of_code_that_would_push_the_page_wider_than_a_phone_if_it_did_not_scroll_inside_its_box()
```

https://example.org/a/very/long/url/without/any/spaces/that/must/wrap/instead/of/widening/the/page/at/all
"""


def add_issues(root: Path, order: tuple[str, ...] = ("010", "012", "013", "014")) -> None:
    """Beside 011 (2024-02-20, remote hero): an older one, a folder issue with an image and
    per-subscriber values, a draft, and one dated in the future."""
    for key in order:
        if key == "010":
            write_issue(root, "010.md", "subject: The tenth\npreheader: Ten\ndate: 2024-01-05",
                        "## Ten\n\nOlder news.\n")
        elif key == "012":
            folder = root / "issues" / "012"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "dot.gif").write_bytes(GIF)
            write_issue(root, "012/index.md",
                        "subject: For {{ subscriber.first_name | default('you') }}\n"
                        "preheader: Twelve for {{ subscriber.name }}\ndate: 2024-03-05T09:30:00+01:00\n"
                        "hero:\n  src: dot.gif\n  alt: The dot", PERSONAL_BODY)
        elif key == "013":
            write_issue(root, "013.md", "subject: Unfinished\ndate: 2024-03-10\ndraft: true", "Draft.\n")
        elif key == "014":
            write_issue(root, "014.md", "subject: Tomorrow\ndate: 2099-01-01", "Later.\n")


def set_site(root: Path, extra: str) -> None:
    config = root / "gigo-mail.toml"
    config.write_text(config.read_text().replace("[smtp]", f"[site]\n{extra}\n\n[smtp]"))


@pytest.fixture
def newsletter(tmp_path: Path) -> Path:
    root = make_newsletter(tmp_path / "news")
    add_issues(root)
    set_site(root, 'per_page = 2\nsubscribe_url = "https://forms.example.org/gigo"')
    return root


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_newsletter(tmp_path_factory.mktemp("site") / "news")
    add_issues(root)
    set_site(root, 'per_page = 2\nsubscribe_url = "https://forms.example.org/gigo"')
    report = publish(load_config(root), now=NOW)
    assert [item.key for item in report.issues] == ["012", "011", "010"]
    return report.site_dir


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# -- which issues -----------------------------------------------------------------------------------

def test_drafts_and_future_issues_stay_out_unless_asked(newsletter: Path) -> None:
    report = publish(load_config(newsletter), now=NOW)
    assert {s.key: s.reason.split()[0] for s in report.skipped} == {"013": "draft", "014": "dated"}
    assert not (report.site_dir / "issues" / "013").exists()
    with_drafts = publish(load_config(newsletter), drafts=True, now=NOW)
    assert [i.key for i in with_drafts.issues] == ["014", "013", "012", "011", "010"]
    assert (report.site_dir / "issues" / "013" / "index.html").is_file()
    again = publish(load_config(newsletter), now=NOW)  # drafts off again: their pages go
    assert again.removed == ["issues/013/index.html", "issues/014/index.html", "page/3/index.html"]
    assert not (report.site_dir / "issues" / "013").exists()


def test_a_date_that_is_not_a_date_names_the_file(newsletter: Path) -> None:
    write_issue(newsletter, "015.md", "subject: s\ndate: next Tuesday", "x\n")
    with pytest.raises(IssueError, match=r"015\.md:3: front matter date 'next Tuesday' is not a date"):
        publish(load_config(newsletter), now=NOW)


def test_sent_only_publishes_what_the_journal_says_was_sent(newsletter: Path) -> None:
    config = load_config(newsletter)
    assert publish(config, sent_only=True, now=NOW).issues == []
    assert not (newsletter / ".gigo" / "journal.sqlite3").exists()  # reading created no journal
    with Journal.for_root(newsletter) as journal:
        journal.mark_sent("011", "ana@example.org", "ana@example.org", "<m1@gigo.dev>", 250, "ok")
        journal.mark_failed("010", "ana@example.org", "ana@example.org", 550, "no", permanent=True)
    report = publish(config, sent_only=True, now=NOW)
    assert [i.key for i in report.issues] == ["011"]
    assert {s.key for s in report.skipped if "not sent" in s.reason} == {"010", "012"}


# -- what a page holds ------------------------------------------------------------------------------

def test_issue_page_has_body_cards_feeds_and_subscribe_block(published: Path) -> None:
    page = (published / "issues" / "012" / "index.html").read_text()
    assert "<title>For you</title>" in page  # the subject's default(...), not a subscriber
    assert "<h1>Hello friend</h1>" in page  # the body's `##` title is the page's h1
    assert "Dear reader, your address is reader in reader." in page
    assert '<meta property="og:title" content="For you">' in page
    assert '<meta property="og:description" content="Twelve for reader">' in page
    assert '<meta property="og:image" content="https://gigo.dev/issues/012/dot.gif">' in page
    assert '<meta name="twitter:card" content="summary_large_image">' in page
    assert '<link rel="canonical" href="https://gigo.dev/issues/012/">' in page
    for kind, name in (("atom+xml", "feed.xml"), ("rss+xml", "rss.xml"), ("feed+json", "feed.json")):
        assert re.search(rf'<link rel="alternate" type="application/{re.escape(kind)}"[^>]*'
                         rf'href="\.\./\.\./{name}"', page), kind
    assert 'href="https://forms.example.org/gigo"' in page
    assert '<time datetime="2024-03-05">5 March 2024</time>' in page  # 09:30+01:00 is 08:30 UTC
    assert (published / "issues" / "012" / "dot.gif").read_bytes() == GIF
    eleven = (published / "issues" / "011" / "index.html").read_text()
    assert "Sora takes a short text description" in eleven
    assert "View in browser" not in eleven and "Unsubscribe" not in eleven


def test_archive_is_newest_first_and_paginated(published: Path) -> None:
    first = (published / "index.html").read_text()
    assert first.index("For you") < first.index("Text-to-video takes another")
    assert "The tenth" not in first and 'href="page/2/"' in first
    second = (published / "page" / "2" / "index.html").read_text()
    assert "The tenth" in second and "Ten" in second and "Page 2 of 2" in second
    assert not (published / "page" / "3").exists()
    sitemap = (published / "sitemap.xml").read_text()
    for url in ("https://gigo.dev/", "https://gigo.dev/page/2/", "https://gigo.dev/issues/010/"):
        assert f"<loc>{url}</loc>" in sitemap
    assert "<lastmod>2024-01-05</lastmod>" in sitemap


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and ((name == "href" and tag in ("a", "link"))
                          or (name == "src" and tag in ("img", "script"))
                          or (name == "content" and value.startswith(SITE_URL))):
                self.urls.append(value)


def _target(published: Path, page: Path, url: str) -> Path | None:
    """The file a link of ``page`` names inside the site, or None for an external link."""
    if url.startswith(SITE_URL + "/"):
        path = published / unquote(urlsplit(url).path).lstrip("/")
    elif re.match(r"^([a-z][a-z0-9+.-]*:|//|#)", url, re.I):
        return None
    else:
        path = page.parent / unquote(urlsplit(url).path)
    return path / "index.html" if path.is_dir() or url.split("#")[0].endswith("/") else path


def test_every_internal_link_and_image_resolves_to_a_file(published: Path) -> None:
    pages = sorted(published.rglob("*.html"))
    assert len(pages) == 5  # two archive pages, three issues
    checked = 0
    for page in pages:
        parser = _Links()
        parser.feed(page.read_text())
        for url in parser.urls:
            target = _target(published, page, url)
            if target is None:
                continue
            checked += 1
            assert target.resolve().is_relative_to(published.resolve()), (page, url)
            assert target.is_file(), f"{page.relative_to(published)}: {url} -> {target} is missing"
    assert checked > 60
    for feed in ("feed.xml", "rss.xml", "feed.json", "sitemap.xml"):
        for url in re.findall(r"https://gigo\.dev/[^\s\"<&\\]*", (published / feed).read_text()):
            target = _target(published, published / feed, url)
            assert target is not None and target.is_file(), f"{feed}: {url}"


def test_nothing_personal_reaches_the_site(published: Path) -> None:
    lists = [REPO / "subscribers.csv", *DATA.glob("*.csv")]
    text = "\n".join(p.read_text(encoding="utf-8-sig", errors="replace") for p in lists)
    addresses = set(re.findall(r"[\w.+-]+@[\w-]+\.[\w.]+", text))
    assert len(addresses) >= 5
    secret = load_config(published.parent).secret()  # the newsletter's own, made on first use
    tokens = {make_token(secret, a) for a in addresses}
    names = {"Ana Souza", "Björn", "Lisbon", "Uppsala", "Ada Lovelace", "ada@example.org", "preview-token"}
    everything = b"\n".join(files_of(published).values()).decode("utf-8", errors="replace")
    for needle in addresses | tokens | names | {"gigo:slot:", "/unsubscribe", "token="}:
        assert needle not in everything, needle
    assert "<script" not in everything  # no tracking, no scripts at all


# -- incremental and reproducible ---------------------------------------------------------------------

def test_second_run_rewrites_nothing(newsletter: Path) -> None:
    config = load_config(newsletter)
    first = publish(config, now=NOW)
    assert "issues/012/dot.gif" in first.written and "feed.xml" in first.written
    stamps = {p: p.stat().st_mtime_ns for p in first.site_dir.rglob("*") if p.is_file()}
    second = publish(config, now=NOW)
    assert second.written == [] and second.removed == [] and second.unchanged == len(stamps)
    assert stamps == {p: p.stat().st_mtime_ns for p in first.site_dir.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_same_bytes_across_time_zones_and_file_order(tmp_path: Path) -> None:
    trees = []
    runs = (("a", "Pacific/Kiritimati", ("010", "012")), ("b", "America/Adak", ("012", "010")))
    for name, tz, order in runs:
        root = make_newsletter(tmp_path / name)
        add_issues(root, order)
        env = {**os.environ, "TZ": tz}
        done = subprocess.run([sys.executable, "-m", "gigo_mail", "publish"], cwd=root, env=env,
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        trees.append(files_of(root / "site"))
    assert trees[0] == trees[1]
    assert len(trees[0]) == 10  # archive, 3 issue pages, an image, style, 3 feeds, sitemap


# -- config, errors, the check helper ---------------------------------------------------------------

def test_publish_needs_site_url_and_refuses_the_newsletters_own_folders(newsletter: Path) -> None:
    config = load_config(newsletter)
    for out in (newsletter, newsletter / "issues", newsletter / "templates" / "x", newsletter.parent):
        with pytest.raises(ConfigError, match="holds the newsletter itself"):
            publish(config, out=out, now=NOW)
    text = (newsletter / "gigo-mail.toml").read_text()
    (newsletter / "gigo-mail.toml").write_text(text.replace('site_url = "https://gigo.dev"\n', ""))
    with pytest.raises(ConfigError, match="no 'site_url'"):
        publish(load_config(newsletter), now=NOW)


def test_check_helper_says_the_view_link_is_dead_until_published(newsletter: Path) -> None:
    config = load_config(newsletter)
    issue = find_issue(newsletter, "011")
    assert not issue_page_exists(config, issue)
    assert "View in browser" in (dead_view_link_warning(config, issue) or "")
    publish(config, now=NOW)
    assert issue_page_exists(config, issue) and dead_view_link_warning(config, issue) is None


def test_cli_publish_reports_and_fails_in_one_line(newsletter: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(newsletter)
    runner = CliRunner()
    result = runner.invoke(app, ["publish", "--out", "public"])
    assert result.exit_code == 0, result.output
    assert "3 (012, 011, 010)" in result.output and "left out 013: draft" in result.output
    assert (newsletter / "public" / "feed.json").is_file()
    assert "0 written" in runner.invoke(app, ["publish", "--out", "public"]).output
    bad = runner.invoke(app, ["publish", "--out", "issues"])
    assert bad.exit_code == 1 and "holds the newsletter itself" in bad.output
    assert "Traceback" not in bad.output


# -- layout in a real browser -------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.skipif(find_chromium() is None, reason="no Chromium installed")
def test_issue_page_fits_a_phone_and_a_desktop_in_light_and_dark(published: Path, tmp_path: Path) -> None:
    page = published / "issues" / "012" / "index.html"
    for width in (375, 1280):
        assert measure_overflow(page, width) == 0, width
    shots = take_screenshots(page, tmp_path, shots=(Shot("phone", 375), Shot("desktop", 1280),
                                                    Shot("phone-dark", 375, dark=True)))
    assert png_size(shots["phone"])[0] == 375 and png_size(shots["desktop"])[0] == 1280
    assert shots["phone"].read_bytes() != shots["phone-dark"].read_bytes()


def test_pages_say_which_way_the_language_is_written(newsletter: Path) -> None:
    config_file = newsletter / "gigo-mail.toml"
    page = publish(load_config(newsletter), now=NOW).site_dir / "issues" / "011" / "index.html"
    assert '<html lang="en" dir="ltr">' in page.read_text(encoding="utf-8")
    config_file.write_text(config_file.read_text(encoding="utf-8").replace('lang = "en"', 'lang = "he"'),
                           encoding="utf-8")
    site = publish(load_config(newsletter), now=NOW).site_dir
    for path in (site / "issues" / "011" / "index.html", site / "index.html"):
        assert '<html lang="he" dir="rtl">' in path.read_text(encoding="utf-8"), path
