"""Publish the newsletter as a static site: a page per issue, an archive, feeds, a sitemap.

Each page comes from the same compile as the email (``compile_issue``); only the
body is taken, filled with ``CompiledIssue.public_values`` (defaults and a
neutral word), so no subscriber value, token or unsubscribe link reaches the
web. The output depends only on the files: dates are UTC, issues are ordered
by date and key, and a file whose bytes did not change is not written again.

The pages are drawn in publish_pages.py from templates under ``templates/web/``
(a newsletter may override them); the feeds are in publish_feeds.py.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from gigo_mail.compose.compile import compile_issue
from gigo_mail.compose.issue import DATE_HINT, ISSUES_DIR, Issue, list_issues, parse_date
from gigo_mail.compose.site_paths import PAGE_NAME, absolute, image_path, issue_path
from gigo_mail.compose.slots import escape_html
from gigo_mail.config import STATE_DIR, Config
from gigo_mail.errors import ConfigError, IssueError
from gigo_mail.journal.deliveries import Journal
from gigo_mail.web.publish_feeds import (
    ATOM_NAME,
    JSON_NAME,
    RSS_NAME,
    SITEMAP_NAME,
    atom_feed,
    json_feed,
    rss_feed,
    sitemap,
)
from gigo_mail.web.publish_pages import STYLE_NAME, WIDGET_NAME, Pages, page_path
from gigo_mail.web.remote_images import remote_copier, rewrite_images
from gigo_mail.web.signup_pages import WIDGET_FILE
from gigo_mail.web.site_issue import WebIssue, is_relative, rewrite_urls

# Folders of the site that publish owns entirely: stale files there are removed.
OWNED_FOLDERS = ("issues", "page")


@dataclass(frozen=True)
class Skipped:
    key: str
    reason: str


@dataclass
class PublishReport:
    site_dir: Path
    issues: list[WebIssue] = field(default_factory=list)  # newest first
    skipped: list[Skipped] = field(default_factory=list)
    written: list[str] = field(default_factory=list)  # site paths
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# -- which issues ---------------------------------------------------------------------------------

def issue_datetime(issue: Issue) -> dt.datetime | None:
    """The issue's date as an aware UTC datetime; a bare date is midnight UTC. None without one."""
    text = issue.date
    if not text:
        return None
    value = parse_date(text)
    if value is None:  # load_issue checked it; this is for an Issue made some other way
        raise IssueError(f"{issue.display_path}: front matter date '{text}' is not a date — {DATE_HINT}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def is_draft(issue: Issue) -> bool:
    return issue.draft


def _sent_keys(config: Config) -> set[str]:
    journal = Journal.existing(config.root)  # reading must not create a journal
    if journal is None:  # nothing was ever sent
        return set()
    with journal:
        return {key for key in journal.issue_keys() if journal.counts(key).get("sent", 0) > 0}


def select_issues(config: Config, *, drafts: bool = False, sent_only: bool = False,
                  now: dt.datetime | None = None) -> tuple[list[Issue], list[Skipped]]:
    """The issues to publish, and why each other one is left out."""
    now = now or dt.datetime.now(dt.UTC)
    sent = _sent_keys(config) if sent_only else set()
    chosen: list[Issue] = []
    skipped: list[Skipped] = []
    for issue in list_issues(config.root):
        when = issue_datetime(issue)
        if when is None:
            skipped.append(Skipped(issue.key, "no 'date' in its front matter"))
        elif is_draft(issue) and not drafts:
            skipped.append(Skipped(issue.key, "draft (--drafts publishes it)"))
        elif when > now and not drafts:
            skipped.append(Skipped(issue.key, f"dated {issue.date}, in the future (--drafts publishes it)"))
        elif sent_only and issue.key not in sent:
            skipped.append(Skipped(issue.key, "not sent yet (--sent-only)"))
        else:
            chosen.append(issue)
    return chosen, skipped


# -- one issue --------------------------------------------------------------------------------------

def _file_publisher(issue: Issue, config: Config, files: dict[str, Path],
                    warnings: list[str]) -> Callable[[str], str]:
    """A URL rewriter that copies the local file a relative link or image names to beside the page.

    Only files under issues/ are published, never one elsewhere in the newsletter
    (a link to ../subscribers.csv must not put the list online)."""
    allowed = (config.root / ISSUES_DIR).resolve()
    page_dir = issue_path(issue.key)

    def change(url: str) -> str:
        path, sep, fragment = url.partition("#")
        path, qsep, query = path.partition("?")
        rest = (f"?{query}" if qsep else "") + (f"#{fragment}" if sep else "")
        target = (issue.folder / unquote(path)).resolve()
        if not path or not target.is_file():
            return url  # another page of the site (../010/), or a broken link the author should see
        if not target.is_relative_to(allowed) or target.suffix == ".md":
            warnings.append(f"{issue.display_path}: '{path}' is outside issues/ (or Markdown), so it is "
                            "not published; move it beside the issue")
            return url
        site_path = image_path(issue.key, path)
        files[site_path] = target
        return site_path.removeprefix(page_dir) + rest

    return change


def web_issue(config: Config, issue: Issue, warnings: list[str]) -> WebIssue:
    """Compile the issue once and keep what its public page needs."""
    compiled = compile_issue(config, issue)
    raw = compiled.public_values()
    files: dict[str, Path] = {}
    local = _file_publisher(issue, config, files, warnings)
    remote = remote_copier(config, issue, files)
    body = rewrite_images(rewrite_urls(compiled.body_html.fill(escape_html(raw)), local), remote)
    hero = issue.meta.get("hero")
    hero_src = hero_alt = ""
    if isinstance(hero, dict) and hero.get("src"):
        hero_src = str(hero["src"])
        hero_alt = str(hero.get("alt") or "")
        hero_src = local(hero_src) if is_relative(hero_src) else remote(hero_src)
    when = issue_datetime(issue)
    assert when is not None  # select_issues left out undated issues
    path = issue_path(issue.key)
    subject = compiled.subject.fill(raw)
    return WebIssue(key=issue.key, number=issue.number, subject=subject, title=issue.title or subject,
                    preheader=compiled.preheader.fill(raw), date=when, path=path,
                    url=absolute(config.newsletter.site_url, path), body=body, hero_src=hero_src,
                    hero_alt=hero_alt, files=files)


# -- the site ---------------------------------------------------------------------------------------

def site_dir_for(config: Config, out: Path | None = None) -> Path:
    """Where the site goes; never a folder whose owned subfolders would hold the newsletter's own files."""
    folder = (out if out is not None else config.site_dir).resolve()
    root = config.root.resolve()
    inside = any(folder.is_relative_to(root / name) for name in (ISSUES_DIR, "templates", STATE_DIR))
    if inside or root.is_relative_to(folder):
        raise ConfigError(f"cannot publish into {folder}: it holds the newsletter itself; "
                          "use a folder of its own, like [site] dir = \"site\"")
    return folder


def build_site(config: Config, items: list[WebIssue]) -> dict[str, bytes | Path]:
    """Every file of the site: site path -> its bytes, or the local file to copy."""

    pages = Pages(config)
    outputs: dict[str, bytes | Path] = {STYLE_NAME: pages.style()}
    if config.signup.enabled:  # the form's widget, served by the site itself, its licence beside it
        outputs[WIDGET_NAME] = WIDGET_FILE
        outputs["altcha-LICENSE.txt"] = WIDGET_FILE.with_name("LICENSE.txt")
    per_page = config.site.per_page
    chunks = [items[i:i + per_page] for i in range(0, len(items), per_page)] or [[]]
    for number, chunk in enumerate(chunks, start=1):
        outputs[page_path(number) + PAGE_NAME] = pages.archive(chunk, number, len(chunks))
    for index, item in enumerate(items):
        newer = items[index - 1] if index > 0 else None
        older = items[index + 1] if index + 1 < len(items) else None
        outputs[item.path + PAGE_NAME] = pages.issue(item, newer, older)
        outputs.update(item.files)
    outputs[ATOM_NAME] = atom_feed(config, items)
    outputs[RSS_NAME] = rss_feed(config, items)
    outputs[JSON_NAME] = json_feed(config, items)
    outputs[SITEMAP_NAME] = sitemap(config, items, [page_path(n) for n in range(1, len(chunks) + 1)])
    return outputs


def _write_if_changed(target: Path, data: bytes) -> bool:
    """Write atomically, and only when the bytes differ (so mtimes and rsync stay quiet)."""
    try:
        if target.is_file() and target.read_bytes() == data:
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as exc:
        raise ConfigError(f"cannot write {target}: {exc.strerror}") from exc
    return True


def _prune(site: Path, keep: set[str]) -> list[str]:
    """Remove files publish wrote before that no longer belong (an issue made a draft again)."""
    removed: list[str] = []
    for folder in OWNED_FOLDERS:
        base = site / folder
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*"), reverse=True):
            rel = path.relative_to(site).as_posix()
            if path.is_file() and rel not in keep:
                path.unlink()
                removed.append(rel)
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
    return sorted(removed)


def publish(config: Config, *, out: Path | None = None, drafts: bool = False, sent_only: bool = False,
            now: dt.datetime | None = None) -> PublishReport:
    """Build the site into ``out`` (default [site] dir); rewrite only what changed."""
    if not config.newsletter.site_url:
        raise ConfigError(f"{config.path}: [newsletter] has no 'site_url'; feeds and "
                          "link previews need the site's address, e.g. site_url = \"https://example.org\"")
    config.require("name")
    site = site_dir_for(config, out)
    report = PublishReport(site_dir=site)
    chosen, report.skipped = select_issues(config, drafts=drafts, sent_only=sent_only, now=now)
    items = [web_issue(config, issue, report.warnings) for issue in chosen]
    report.issues = sorted(items, key=lambda i: (i.date, i.key), reverse=True)
    outputs = build_site(config, report.issues)
    for site_path in sorted(outputs):
        value = outputs[site_path]
        data = value.read_bytes() if isinstance(value, Path) else value
        if _write_if_changed(site / site_path, data):
            report.written.append(site_path)
        else:
            report.unchanged += 1
    report.removed = _prune(site, set(outputs))
    return report
