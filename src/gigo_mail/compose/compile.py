"""Compile an issue once: Markdown -> Jinja2 -> MJML -> premailer -> HTML + text.

The result keeps per-recipient values as slot tokens (see ``slots``, the slot
contract), so sending fills them and never compiles again. Compiling
touches no network: MJML is asked for no web fonts, and premailer may not fetch.
premailer, cssutils, lxml and mjml are imported here when compiling, not at import
time: ``gigo-mail --help`` and ``status`` never load them.
"""

from __future__ import annotations

import hashlib
import html as html_lib
import logging
import mimetypes
import re
import sys
import time
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gigo_mail.compose import markdown
from gigo_mail.compose.compiled import (
    BuildReport,
    CompiledIssue,
    InlineImage,
    build_dir,
    template_search_path,
)
from gigo_mail.compose.images import size_images
from gigo_mail.compose.issue import Issue
from gigo_mail.compose.render import markup, render, render_string, shared_environment
from gigo_mail.compose.site_paths import absolute, image_path, issue_url, remote_image_path
from gigo_mail.compose.slots import (
    SLOT_PREFIX,
    SlotTable,
    SlotTemplate,
    escape_html,
    placeholders,
)
from gigo_mail.config import Config
from gigo_mail.errors import CompileError, IssueError

__all__ = ["BuildReport", "CompiledIssue", "InlineImage", "build_dir", "compile_issue",
           "write_build", "clip_level", "GMAIL_CLIP_BYTES"]

GMAIL_CLIP_BYTES = 102 * 1024
GMAIL_CLIP_NEAR = 0.8  # warn from this share of the clip limit on
PREHEADER_MAX = 90
_RELATIVE_SRC = re.compile(r'(<img\b[^>]*?\bsrc=")([^"]+)(")', re.IGNORECASE)


class _NoNetwork:
    """premailer's HTTP session: it never fetches here (``allow_network=False``)."""

    def get(self, url: str, **_: object) -> None:
        raise CompileError(f"inlining CSS tried to fetch {url}; emit no remote stylesheets")


def _import_premailer() -> None:
    """premailer imports requests (with urllib3, as long as cssutils) only for its default HTTP
    session, which it never uses here: it gets ``_NoNetwork``, and a stand-in while it is imported.
    Whoever imports requests afterwards gets the real one. Then its cssutils stops validating."""
    if "premailer.premailer" not in sys.modules:
        stand_in = "requests" not in sys.modules
        if stand_in:
            sys.modules["requests"] = types.ModuleType("requests", "not loaded: premailer is given a session")
        try:
            import premailer.premailer
        finally:
            if stand_in:
                del sys.modules["requests"]
    import premailer.merge_style
    import premailer.premailer

    if not isinstance(premailer.premailer.cssutils, _UnvalidatedCssutils):
        unvalidated = _UnvalidatedCssutils(premailer.premailer.cssutils)
        premailer.premailer.cssutils = unvalidated
        premailer.merge_style.cssutils = unvalidated


class _UnvalidatedCssutils(types.ModuleType):
    """cssutils as premailer's modules see it, its ``parseStyle`` never validating. premailer is
    given ``disable_validation`` but still validates every element's own inline style (in
    ``merge_styles``) and an image's (``align_floating_images``): cssutils then checks each
    property against its CSS profiles, whose patterns it compiles on first use, 0.2 s of the
    first compile in a process. Validation only logs (silenced here): the values, and the
    output, are the same."""

    def __init__(self, real: types.ModuleType) -> None:
        super().__init__(real.__name__, real.__doc__)
        self._real = real

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)

    def parseStyle(self, css_text: str, encoding: str = "utf-8", validate: bool = False) -> object:  # noqa: N802
        return self._real.parseStyle(css_text, encoding=encoding, validate=False)


def _premailer(html: str) -> str:
    """Inline the CSS. lxml drops the doctype; put it back, or browsers and some mail
    clients fall into quirks mode and the layout's widths and line heights shift."""
    _import_premailer()
    import premailer

    try:
        inlined = premailer.Premailer(
            html,
            allow_network=False,
            session=_NoNetwork(),
            keep_style_tags=True,
            strip_important=False,
            disable_validation=True,
            disable_link_rewrites=True,
            # MJML's and our own pixel sizes stay: premailer would turn width:100% into
            # width="100%", which Outlook for Windows reads as "the file's own width".
            disable_basic_attributes=["width", "height"],
            cssutils_logging_level=logging.CRITICAL,
        ).transform()
    except Exception as exc:  # premailer raises many kinds; all mean "CSS could not be inlined"
        raise CompileError(f"inlining CSS failed: {exc}") from exc
    if inlined.lstrip()[:9].lower() == "<!doctype":
        return inlined
    return "<!doctype html>\n" + inlined


def _is_relative(src: str) -> bool:
    return not re.match(rf"^([a-z][a-z0-9+.-]*:|//|{SLOT_PREFIX})", src, re.IGNORECASE)


def _local_images(html: str, issue: Issue, config: Config,
                  report: BuildReport) -> tuple[str, tuple[InlineImage, ...]]:
    """Point relative <img src> at a Content-ID (embed) or at the site (link)."""
    images: dict[str, InlineImage] = {}
    mode = config.newsletter.images

    def replace(match: re.Match[str]) -> str:
        src = html_lib.unescape(match.group(2))
        if not _is_relative(src):
            return match.group(0)
        path = (issue.folder / src).resolve()
        if not path.is_file():
            raise CompileError(f"{issue.display_path}: image '{src}' not found (looked in {issue.folder})")
        if src not in images:
            url = ""
            if mode == "link":
                base = config.newsletter.site_url.rstrip("/")
                if not base:
                    raise CompileError(f"{issue.display_path}: image '{src}' is local and images = 'link', "
                                       "but [newsletter] has no 'site_url'; set it or use images = 'embed'")
                url = absolute(base, image_path(issue.key, src))
            data = path.read_bytes()
            digest = hashlib.sha1(data).hexdigest()[:12]
            ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            image = images[src] = InlineImage(f"{digest}.{path.name}@gigo-mail", path.name, ctype, data, url)
            report.images.append(f"{src} -> {url} (upload it there)" if url else
                                 f"{src} embedded ({len(data) / 1024:.1f} KB, cid:{image.cid})")
        return f"{match.group(1)}{images[src].reference}{match.group(3)}"

    return _RELATIVE_SRC.sub(replace, html), tuple(images.values())


def _remote_images(html: str, issue: Issue, config: Config, report: BuildReport) -> str:
    """With ``[site] copy_remote_images``, a remote <img src> points at the copy ``publish`` makes on
    the newsletter's own site (see ``site_paths.remote_image_path``)."""
    base = config.newsletter.site_url
    if not config.site.copy_remote_images or not base:
        return html

    def replace(match: re.Match[str]) -> str:
        src = html_lib.unescape(match.group(2))
        if not src.lower().startswith(("http://", "https://")) or src.startswith(base.rstrip("/") + "/"):
            return match.group(0)
        url = absolute(base, remote_image_path(issue.key, src))
        report.images.append(f"{src} -> {url} ('gigo-mail publish' copies it there)")
        return f"{match.group(1)}{html_lib.escape(url)}{match.group(3)}"

    return _RELATIVE_SRC.sub(replace, html)


def clip_level(html_bytes: int) -> str:
    """'ok', 'near' (over GMAIL_CLIP_NEAR of Gmail's limit) or 'clipped'."""
    if html_bytes > GMAIL_CLIP_BYTES:
        return "clipped"
    return "near" if html_bytes > GMAIL_CLIP_NEAR * GMAIL_CLIP_BYTES else "ok"


def _check(html: str, issue: Issue, report: BuildReport) -> None:
    """What a careful sender looks at before sending: size, alt text, http links, preheader."""
    size = report.html_bytes
    level = clip_level(size)
    if level == "clipped":
        report.errors.append(f"HTML is {size / 1024:.1f} KB; Gmail clips messages over 102 KB")
    elif level == "near":
        report.warnings.append(f"HTML is {size / 1024:.1f} KB, over {GMAIL_CLIP_NEAR * 100:.0f} % of Gmail's "
                               "102 KB clipping limit")
    from lxml import html as lxml_html

    doc = lxml_html.fromstring(html)
    for img in doc.iter("img"):
        if not (img.get("alt") or "").strip():
            report.warnings.append(f"image without alt text: {img.get('src', '')[:80]}")
    for el in doc.iter("a", "img"):
        url = (el.get("href") or el.get("src") or "").strip()
        if url.lower().startswith("http:"):
            report.warnings.append(f"insecure http: {'link' if el.tag == 'a' else 'image'}: {url}")
    if not issue.preheader:
        report.warnings.append(f"{issue.display_path}: no 'preheader' in front matter; inboxes will show "
                               "the first words of the body instead")
    elif len(issue.preheader) > PREHEADER_MAX:
        report.warnings.append(f"preheader is {len(issue.preheader)} characters; "
                               f"keep it under {PREHEADER_MAX}")


def _check_compliance(config: Config, report: BuildReport) -> None:
    """Gmail and Yahoo want a one-click https unsubscribe from bulk senders; the law
    (CAN-SPAM and others) wants the sender's postal address in every message."""
    if not config.newsletter.postal_address:
        report.warnings.append("[newsletter] has no 'postal_address'; many laws require the sender's "
                               "postal address in every newsletter")
    url = config.newsletter.unsubscribe_url
    if not url and not config.newsletter.unsubscribe_mailto:
        report.warnings.append("[newsletter] has no 'unsubscribe_url' or 'unsubscribe_mailto'; "
                               "sending needs one")
    elif not url:
        report.warnings.append("[newsletter] has no 'unsubscribe_url': without an https one-click link "
                               "Gmail and Yahoo treat bulk mail as non-compliant")
    elif not url.lower().startswith("https://"):
        report.warnings.append(f"unsubscribe_url '{url}' is not https; one-click unsubscribe "
                               "(RFC 8058) needs https")
    elif "{token}" not in url and "{email}" not in url:
        report.warnings.append(f"unsubscribe_url '{url}' has no {{token}}: every subscriber gets the same "
                               "link, so it cannot tell who wants to leave")


def _known_sizes(issue: Issue) -> dict[str, tuple[int, int]]:
    """Sizes the front matter gives for remote images: ``hero: {src, width, height}``."""
    hero = issue.meta.get("hero")
    if isinstance(hero, dict):
        try:
            return {str(hero["src"]): (int(hero["width"]), int(hero["height"]))}
        except (KeyError, TypeError, ValueError):
            pass
    return {}


def _body_line_offset(issue: Issue) -> int:
    """Lines before the Markdown body in the file, so errors point at the right line."""
    try:
        text = issue.path.read_text(encoding="utf-8")
    except OSError:
        return 0
    start = text.find(issue.body[:200]) if issue.body else -1
    return text.count("\n", 0, start) if start > 0 else 0


def _context(issue: Issue, config: Config, table: SlotTable, subject: str, preheader: str) -> dict[str, Any]:
    meta = dict(issue.meta)
    return {
        "hero": None,
        **meta,
        "issue": {**meta, "number": issue.number, "title": issue.title, "date": issue.date,
                  "key": issue.key},
        "newsletter": config.newsletter,
        "subject": subject,
        "preheader": preheader,
        "view_url": issue_url(config.newsletter.site_url, issue.key),
        **placeholders(table),
    }


def compile_issue(config: Config, issue: Issue, *, sample: Mapping[str, str] | None = None) -> CompiledIssue:
    """Turn an issue into fill-ready HTML and text. About 150 ms; do it once per issue.

    ``sample``: a real reader's fields for the previews (see ``send.samples``); else made-up values.
    Compiling reads neither the list nor the journal."""
    started = time.perf_counter()
    issue.require("subject")  # the front matter's values were checked when the issue was read
    config = config.with_overrides(issue.meta)
    config.require("name")
    table = SlotTable()
    search = template_search_path(config.root)
    text_env = shared_environment(search, autoescape=False)
    html_env = shared_environment(search, autoescape=True)
    base = _context(issue, config, table, "", "")

    subject = render_string(text_env, issue.subject, base, f"{issue.display_path}: subject")
    preheader = render_string(text_env, issue.preheader, base, f"{issue.display_path}: preheader")
    body_md = render_string(text_env, issue.body, base, issue.display_path, _body_line_offset(issue))
    context = _context(issue, config, table, subject, preheader)

    template = config.newsletter.template
    tokens = markdown.parse(body_md)  # parsed once for both parts
    body_text = markdown.to_text(tokens)  # first: to_html raises the headings of the tokens
    body_html = markdown.to_html(tokens)
    mjml_source = render(html_env, f"{template}/email.mjml.j2", {**context, "body": markup(body_html)})
    from mjml import mjml2html

    try:
        compiled_html = mjml2html(mjml_source, fonts={})
    except ValueError as exc:
        raise CompileError(f"templates/{template}/email.mjml.j2: invalid MJML ({exc})") from exc
    report = BuildReport()
    inlined, sized = size_images(_premailer(compiled_html), issue.folder, _known_sizes(issue))
    inlined, images = _local_images(inlined, issue, config, report)
    inlined = _remote_images(inlined, issue, config, report)
    report.images += [image.note for image in sized if image.height is None]
    text = render(text_env, f"{template}/email.txt.j2", {**context, "body": body_text})

    compiled = CompiledIssue(issue=issue, config=config, slots=tuple(table.slots),
                             subject=SlotTemplate(" ".join(subject.split())),
                             html=SlotTemplate(inlined), text=SlotTemplate(text),
                             images=images, report=report,
                             preheader=SlotTemplate(" ".join(preheader.split())),
                             body_html=SlotTemplate(body_html),
                             sample=None if sample is None else dict(sample))
    sample_html = compiled.html.fill(escape_html(compiled.sample_values()))
    report.html_bytes = len(sample_html.encode("utf-8"))
    report.text_bytes = len(compiled.preview_text().encode("utf-8"))
    _check(sample_html, issue, report)
    _check_compliance(config, report)
    report.compile_ms = (time.perf_counter() - started) * 1000
    return compiled


def write_build(compiled: CompiledIssue, out_dir: Path) -> dict[str, Path]:
    """Write email.html (as sent, sample values), preview.html (images inlined) and email.txt."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = {"html": out_dir / "email.html", "preview": out_dir / "preview.html",
                 "text": out_dir / "email.txt"}
        paths["html"].write_text(compiled.html.fill(escape_html(compiled.sample_values())), encoding="utf-8")
        paths["preview"].write_text(compiled.preview_html(), encoding="utf-8")
        paths["text"].write_text(compiled.preview_text(), encoding="utf-8")
    except OSError as exc:
        raise IssueError(f"cannot write to {out_dir}: {exc.strerror}") from exc
    return paths
