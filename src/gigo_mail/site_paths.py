"""Where things live on the newsletter's public site.

One rule for every party that names a page or an image of the site: the email's
"View in browser" link, linked images (``images = "link"``) and ``publish``,
which writes the files there. Paths are relative to the site's root, with
forward slashes, so they are URL paths and file paths at once.
"""

from __future__ import annotations

import posixpath


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


def absolute(site_url: str, path: str) -> str:
    """``path`` under ``site_url`` (which may itself have a path, as GitHub Pages project sites do)."""
    return site_url.rstrip("/") + "/" + path.lstrip("/")


def issue_url(site_url: str, key: str) -> str:
    """The issue's public page, or '' when the newsletter has no site."""
    return absolute(site_url, issue_path(key)) if site_url else ""
