"""Links that do not answer and images that are too heavy or too wide.

Every distinct http(s) link of the compiled HTML is asked with HEAD, then GET when a
server refuses HEAD, concurrently, each with a timeout. Images are fetched (up to just
over the size limit) so their weight and pixel width can be measured; local images are
measured from the file. Per-subscriber links (slots) are not requested.
"""

from __future__ import annotations

import io
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

from lxml import html as lxml_html

from gigo_mail.check.lookup import organizational
from gigo_mail.check.report import Finding
from gigo_mail.compose.compiled import CompiledIssue
from gigo_mail.compose.images import image_size
from gigo_mail.compose.slots import SLOT_RE
from gigo_mail.version import __version__

MAX_IMAGE_BYTES = 1024 * 1024
MAX_IMAGE_WIDTH = 1200
WORKERS = 8
USER_AGENT = f"gigo-mail-check/{__version__}"


@dataclass(frozen=True)
class Link:
    url: str
    line: int
    image: bool


def links(compiled: CompiledIssue) -> Iterator[Link]:
    """Each distinct http(s) URL of the HTML part, with the line it first appears on."""
    doc = lxml_html.fromstring(compiled.html.source)
    seen: set[str] = set()
    for element in doc.iter("a", "img"):
        url = (element.get("href") if element.tag == "a" else element.get("src")) or ""
        url = url.strip()
        if url in seen or not (url.lower().startswith(("http://", "https://")) or SLOT_RE.search(url)):
            continue
        seen.add(url)
        yield Link(url, element.sourceline or 0, element.tag == "img")


def _image_findings(subject: str, data: bytes, complete: bool) -> list[Finding]:
    findings = []
    if len(data) > MAX_IMAGE_BYTES:
        size = f"{len(data) / MAX_IMAGE_BYTES:.1f} MB" if complete else "over 1 MB"
        findings.append(Finding.fail("images", subject, f"{size}: keep images under 1 MB "
                                                        "(slow on phones, clipped by some clients)"))
    dimensions = image_size(io.BytesIO(data))
    if dimensions and dimensions[0] > MAX_IMAGE_WIDTH:
        findings.append(Finding.warn("images", subject, f"{dimensions[0]} x {dimensions[1]} px: wider than "
                                                        f"{MAX_IMAGE_WIDTH} px; Outlook may draw it at full "
                                                        "size, resize it to twice the column width"))
    return findings


def _request(url: str, method: str) -> urllib.request.Request:
    return urllib.request.Request(url, method=method, headers={"User-Agent": USER_AGENT, "Accept": "*/*"})


def _fetch(link: Link, timeout: float) -> tuple[int | str, bytes | None]:
    """(status or error text, the first bytes of an image)."""
    methods = ("GET",) if link.image else ("HEAD", "GET")
    outcome: int | str = ""
    for method in methods:
        try:
            with urllib.request.urlopen(_request(link.url, method), timeout=timeout) as response:
                body = response.read(MAX_IMAGE_BYTES + 1) if link.image else None
                return int(response.status), body
        except urllib.error.HTTPError as exc:
            outcome = exc.code  # a HEAD refused (403, 405, 501, ...) gets a second chance with GET
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            return f"no answer ({reason})", None
    return outcome, None


def _link_findings(link: Link, timeout: float) -> list[Finding]:
    status, body = _fetch(link, timeout)
    kind = "image" if link.image else "link"
    subject = f"line {link.line}: {link.url}"
    if isinstance(status, str):
        return [Finding.fail("links", subject, f"{kind}: {status}")]
    if status >= 400:
        return [Finding.fail("links", subject, f"{kind}: HTTP {status}")]
    findings = [Finding.ok("links", subject, f"HTTP {status}")]
    if body is not None:
        findings += _image_findings(subject, body, complete=len(body) <= MAX_IMAGE_BYTES)
    return findings


def third_party_images(compiled: CompiledIssue) -> list[Finding]:
    """Images the email loads from a host that is not the newsletter's (not the From domain's, not
    the site's): that host sees every open, and can change or remove the image after the send."""
    newsletter = compiled.config.newsletter
    own = {organizational(newsletter.from_domain)}
    if newsletter.site_url:
        own.add(organizational(urlsplit(newsletter.site_url).hostname or ""))
    findings = []
    for link in links(compiled):
        host = (urlsplit(link.url).hostname or "") if link.image and not SLOT_RE.search(link.url) else ""
        if host and organizational(host) not in own:
            findings.append(Finding.warn("images", f"line {link.line}: {link.url}",
                                         f"served by {host}, a third party: it sees every open and can "
                                         "change the image after the send; put the file beside the issue, "
                                         "or set [site] copy_remote_images = true so that publish serves "
                                         "it from your site"))
    return findings


def check_images(compiled: CompiledIssue) -> list[Finding]:
    """Local images of the issue, measured from their files, and remote images on third-party hosts."""
    findings = []
    for image in compiled.images:
        findings += _image_findings(image.filename, image.data, complete=True)
    return findings + third_party_images(compiled)


def check_links(compiled: CompiledIssue, timeout: float, offline: bool) -> list[Finding]:
    found = list(links(compiled))
    personal = [link for link in found if SLOT_RE.search(link.url)]
    public = [link for link in found if link not in personal]
    findings: list[Finding] = []
    if offline:
        if public:
            findings.append(Finding.skip("links", f"{len(public)} links", "not requested (--offline)"))
    else:
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            for result in pool.map(lambda link: _link_findings(link, timeout), public):
                findings += result
    if personal:
        findings.append(Finding.skip("links", f"{len(personal)} per-subscriber links",
                                     "not requested: they differ for every subscriber (unsubscribe, ...)"))
    return findings
