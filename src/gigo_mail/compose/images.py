"""A pixel width and height for every image in the compiled HTML.

Outlook for Windows sizes an ``<img>`` by its ``width`` and ``height`` attributes and
ignores ``max-width``: without them it draws the file at its own size, so a 3,052-px
photo stays 3,052 px wide. Every image therefore gets a pixel width no wider than the
space it sits in (found from the inline styles premailer wrote) and a height in the
image's own proportions. Other clients scale it down further with ``max-width:100%``
and ``height:auto``.

Local images are measured with Pillow. A remote image's size is unknown unless the
issue says it (``hero.width`` and ``hero.height``); it gets the width of its column
and no height, and the build report says so.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from lxml import html as lxml_html

# A whole <img> tag (attribute values may hold '>'), or a comment to step over.
_TAG_OR_COMMENT = re.compile(r"""<!--.*?-->|<img\b(?:[^>"']|"[^"]*"|'[^']*')*>""", re.I | re.S)
_SIZE_ATTR = re.compile(r"""\s(?:width|height)\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+)""", re.I)
_PX = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:px)?\s*$", re.I)
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
_MJ_COLUMN = re.compile(r"\bmj-column-(per|px)-(\d+(?:-\d+)?)\b")
_EXIF_ORIENTATION = 0x0112
_ROTATED = (5, 6, 7, 8)  # EXIF orientations that swap width and height


@dataclass(frozen=True)
class Sized:
    """What was decided for one image, for the build report."""

    src: str
    width: int
    height: int | None  # None: the image's proportions are unknown
    local: bool

    @property
    def note(self) -> str:
        src = self.src if len(self.src) <= 80 else self.src[:77] + "..."
        if self.height is not None:
            return f"{src}: {self.width}×{self.height} px"
        why = "its size could not be read" if self.local else "remote, size unknown"
        return (f"{src}: {why}: {self.width} px wide (its column), no height; "
                "give its width and height to set one")


def image_size(source: Path | IO[bytes]) -> tuple[int, int] | None:
    """(width, height) in pixels as a mail client shows it (EXIF rotation applied), or None
    when the file (or the bytes, e.g. a downloaded image's first megabyte) is not an image
    Pillow can read (SVG, say)."""
    from PIL import Image  # loaded for an image whose size the page does not give, not for every build

    try:
        with Image.open(source) as image:
            width, height = image.size
            if image.getexif().get(_EXIF_ORIENTATION) in _ROTATED:
                width, height = height, width
    except (OSError, ValueError):  # Pillow's UnidentifiedImageError is an OSError
        return None
    return width, height


def _style(element: lxml_html.HtmlElement) -> dict[str, str]:
    pairs = (item.split(":", 1) for item in (element.get("style") or "").split(";") if ":" in item)
    return {key.strip().lower(): value.strip().lower().replace("!important", "").strip()
            for key, value in pairs}


def _px(value: str | None) -> float | None:
    match = _PX.match(value or "")
    return float(match.group(1)) if match else None


def _sides(style: dict[str, str], prop: str) -> float:
    """Left plus right of a padding or margin, in px; other units count as nothing."""
    parts = style.get(prop, "").split()
    expanded = {1: parts * 4, 2: parts * 2, 3: [*parts, parts[1]] if len(parts) == 3 else [], 4: parts}
    four = expanded.get(len(parts), [])
    right = style.get(f"{prop}-right", four[1] if four else "")
    left = style.get(f"{prop}-left", four[3] if four else "")
    return (_px(left) or 0.0) + (_px(right) or 0.0)


def _bound(element: lxml_html.HtmlElement, style: dict[str, str]) -> float | None:
    """The narrowest pixel width the element sets for itself, if any."""
    found = [_px(style.get("width")), _px(style.get("max-width")), _px(element.get("width"))]
    column = _MJ_COLUMN.search(element.get("class") or "")
    if column and column.group(1) == "px":
        found.append(float(column.group(2).replace("-", ".")))
    widths = [width for width in found if width]
    return min(widths) if widths else None


def _share(element: lxml_html.HtmlElement, style: dict[str, str]) -> float:
    """The fraction of its container's width the element takes (MJML columns: their class)."""
    column = _MJ_COLUMN.search(element.get("class") or "")
    if column and column.group(1) == "per":
        return float(column.group(2).replace("-", ".")) / 100
    for value in (style.get("width"), element.get("width")):
        match = _PERCENT.match(value or "")
        if match:
            return min(float(match.group(1)), 100.0) / 100
    return 1.0


def available_width(img: lxml_html.HtmlElement) -> int | None:
    """The content width the image's containers leave it: the nearest ancestor with a pixel
    width, less the padding and margins and times the percentage widths in between."""
    chain: list[tuple[lxml_html.HtmlElement, dict[str, str]]] = []
    element = img.getparent()
    while element is not None:
        style = _style(element)
        bound = _bound(element, style)
        if bound is not None:
            width = bound - _sides(style, "padding")
            for inner, inner_style in reversed(chain):
                width = width * _share(inner, inner_style) - _sides(inner_style, "padding") \
                    - _sides(inner_style, "margin")
            return max(int(width), 1)
        chain.append((element, style))
        element = element.getparent()
    return None


def _img_tags(html: str) -> Iterator[re.Match[str]]:
    """The <img> tags of ``html`` in document order, skipping any inside comments."""
    for match in _TAG_OR_COMMENT.finditer(html):
        if not match.group(0).startswith("<!--"):
            yield match


def _is_local(src: str) -> bool:
    return bool(src) and not re.match(r"^([a-z][a-z0-9+.-]*:|//)", src, re.I)


def _intrinsic(src: str, element: lxml_html.HtmlElement, folder: Path,
               known: dict[str, tuple[int, int]]) -> tuple[int, int] | None:
    """The image's own size: measured (local), told (``known``), or from pixel width and
    height attributes an author wrote; None when nothing says."""
    if src in known:
        return known[src]
    if _is_local(src):
        return image_size((folder / src).resolve())
    width, height = _px(element.get("width")), _px(element.get("height"))
    if width and height:
        return int(width), int(height)
    return None


def size_images(html: str, folder: Path, known: dict[str, tuple[int, int]] | None = None,
                ) -> tuple[str, list[Sized]]:
    """``html`` with pixel ``width`` and ``height`` on every <img>, and what was decided.

    ``folder`` is where relative ``src`` paths point; ``known`` gives sizes of remote
    images by their ``src``.
    """
    elements = list(lxml_html.document_fromstring(html).iter("img"))
    tags = list(_img_tags(html))
    if len(elements) != len(tags):  # markup lxml reads differently: leave it as it is
        return html, []
    decided: list[Sized] = []
    out, last = [], 0
    for element, tag in zip(elements, tags, strict=True):
        src = element.get("src") or ""
        column = available_width(element)
        own = _intrinsic(src, element, folder, known or {})
        given = _px(element.get("width"))
        limits = [w for w in (column, given, own[0] if own else None) if w]
        if not limits:
            continue
        width = int(min(limits))
        height = round(width * own[1] / own[0]) if own else None
        decided.append(Sized(src, width, height, _is_local(src)))
        attrs = f' width="{width}"' + (f' height="{height}"' if height else "")
        rewritten = "<img" + attrs + _SIZE_ATTR.sub("", tag.group(0)[4:])
        out += [html[last:tag.start()], rewritten]
        last = tag.end()
    out.append(html[last:])
    return "".join(out), decided
