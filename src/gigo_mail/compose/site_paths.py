"""Where things live on the newsletter's public site.

One rule for every party that names a page or an image of the site: the email's
"View in browser" link, linked images (``images = "link"``) and ``publish``,
which writes the files there. Paths are relative to the site's root, with
forward slashes, so they are URL paths and file paths at once.
"""

from __future__ import annotations

import hashlib
import posixpath
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from gigo_mail.compose.issue import Issue
    from gigo_mail.config import Config

PAGE_NAME = "index.html"  # an issue's page in its folder on the site


def issue_path(key: str) -> str:
    """The folder of an issue's page: ``issues/011/`` (its file is ``index.html``)."""
    return f"issues/{key}/"


def image_path(key: str, src: str) -> str:
    """Where a local image of an issue is published: beside its page, at its relative path.

    A path that climbs out of the issue's folder (``../logo.png``) is kept inside it."""
    clean = posixpath.normpath(src.replace("\\", "/")).lstrip("/")
    while clean.startswith("../"):
        clean = clean[3:]
    return issue_path(key) + clean.removeprefix("./")


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg", ".avif")


def remote_image_path(key: str, url: str) -> str:
    """Where ``publish`` keeps its copy of a remote image of an issue (``[site] copy_remote_images``):
    named by a hash of the URL, with the URL's image suffix, so the email and the site agree on it."""
    name = posixpath.basename(urlsplit(url).path).lower()
    suffix = next((s for s in IMAGE_SUFFIXES if name.endswith(s)), ".img")
    return issue_path(key) + "remote/" + hashlib.sha256(url.encode("utf-8")).hexdigest()[:16] + suffix


def absolute(site_url: str, path: str) -> str:
    """``path`` under ``site_url`` (which may itself have a path, as GitHub Pages project sites do)."""
    return site_url.rstrip("/") + "/" + path.lstrip("/")


def issue_url(site_url: str, key: str) -> str:
    """The issue's public page, or '' when the newsletter has no site."""
    return absolute(site_url, issue_path(key)) if site_url else ""


def issuepage_path(config: Config, issue: Issue) -> Path:
    """Where ``publish`` writes the issue's page in the local site folder."""
    return config.site_dir / issue_path(issue.key) / PAGE_NAME


def issue_page_exists(config: Config, issue: Issue) -> bool:
    """Whether the issue's page has been published into the local site folder."""
    return issuepage_path(config, issue).is_file()


def dead_view_link_warning(config: Config, issue: Issue) -> str | None:
    """For `check`: the email links to its web page (site_url is set) but that page was never built."""
    if not config.with_overrides(issue.meta).newsletter.site_url or issue_page_exists(config, issue):
        return None
    return (f"the 'View in browser' link points at {issue_path(issue.key)} on the site, but "
            f"{issuepage_path(config, issue)} does not exist yet; run 'gigo-mail publish' and deploy "
            "the site before sending")
