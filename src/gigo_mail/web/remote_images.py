"""Copies of an issue's remote images on the newsletter's own site (``[site] copy_remote_images``).

An image on a CDN or another site is fetched by every reader's mail client from that host:
it sees each open, and may change or remove the picture after the send. With the setting
on, the email points at the site's copy (``compile`` rewrites the src by the same rule,
``site_paths.remote_image_path``) and ``publish`` makes that copy. Each image is fetched
once into ``.gigo/remote-images/`` and reused; a fetch that fails stops the publish,
because the email would otherwise point at a file the site does not have.
"""

from __future__ import annotations

import hashlib
import html as html_lib
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from gigo_mail.compose.issue import Issue
from gigo_mail.compose.site_paths import issue_path, remote_image_path
from gigo_mail.config import STATE_DIR, Config
from gigo_mail.errors import PublishError
from gigo_mail.version import __version__

MAX_BYTES = 10 * 1024 * 1024
TIMEOUT = 20.0
CACHE_DIR = "remote-images"


def fetch_image(url: str, timeout: float = TIMEOUT) -> bytes:
    """The image at ``url``: HTTP 200, an image/* type, at most 10 MB; else one clear error."""
    request = urllib.request.Request(url, headers={"User-Agent": f"gigo-mail-publish/{__version__}",
                                                   "Accept": "image/*"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            kind = response.headers.get_content_type()
            data = response.read(MAX_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise PublishError(f"cannot copy the image {url} into the site: HTTP {exc.code}; fix the link, or "
                           "set [site] copy_remote_images = false") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PublishError(f"cannot copy the image {url} into the site: {reason}; check the network, or "
                           "set [site] copy_remote_images = false") from exc
    if not kind.startswith("image/"):
        raise PublishError(f"cannot copy {url} into the site: it is {kind}, not an image")
    if len(data) > MAX_BYTES:
        raise PublishError(f"cannot copy the image {url} into the site: over {MAX_BYTES // 2**20} MB")
    return data


def remote_copier(config: Config, issue: Issue, files: dict[str, Path]) -> Callable[[str], str]:
    """A URL rewriter for the issue's page: a remote image becomes its copy beside the page
    (fetched now, or taken from the cache), recorded in ``files``. Anything else is left as it is."""
    cache = config.root / STATE_DIR / CACHE_DIR
    page_dir = issue_path(issue.key)
    own = config.newsletter.site_url.rstrip("/") + "/"

    def change(url: str) -> str:
        if not config.site.copy_remote_images or not url.lower().startswith(("http://", "https://")) \
                or url.startswith(own):
            return url
        site_path = remote_image_path(issue.key, url)
        copy = cache / hashlib.sha256(url.encode("utf-8")).hexdigest()
        if not copy.is_file():
            data = fetch_image(url)
            cache.mkdir(parents=True, exist_ok=True)
            partial = copy.with_suffix(".part")
            partial.write_bytes(data)
            partial.replace(copy)
        files[site_path] = copy
        return site_path.removeprefix(page_dir)

    return change


_IMG_SRC = re.compile(r'(<img\b[^>]*?\bsrc=")([^"]+)(")', re.IGNORECASE)


def rewrite_images(fragment: str, change: Callable[[str], str]) -> str:
    """Apply ``change`` to every <img src> of an HTML fragment (unescaped in, escaped out)."""
    def replace(match: re.Match[str]) -> str:
        return f"{match.group(1)}{html_lib.escape(change(html_lib.unescape(match.group(2))))}{match.group(3)}"

    return _IMG_SRC.sub(replace, fragment)
