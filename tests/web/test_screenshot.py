"""Screenshots with the real Chromium on this machine; PNGs are checked by decoding them here."""

from __future__ import annotations

import re
import shutil
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from typer.testing import CliRunner

from gigo_mail.cli.app import app
from gigo_mail.compose.compile import compile_issue, write_build
from gigo_mail.compose.issue import find_issue
from gigo_mail.config import load_config
from gigo_mail.errors import ScreenshotError
from gigo_mail.web.screenshot import (
    SHOTS,
    Shot,
    find_chromium,
    measure_overflow,
    png_size,
    probe,
    take_screenshots,
)
from support import DATA, make_newsletter

needs_chromium = pytest.mark.skipif(find_chromium() is None, reason="no Chromium installed")

pytestmark = pytest.mark.slow  # every test here drives Chromium

CONFIG = """\
[newsletter]
name = "Shot Weekly"
from = "Shot Weekly <news@shot.test>"
unsubscribe_url = "https://shot.test/unsubscribe?token={token}"
"""
ISSUE = """\
---
subject: "Screenshots of issue 3"
preheader: "What the email looks like."
---

## A heading for the screenshot

Some body text so that the picture has shapes and letters in it.
"""


def _png(path: Path) -> tuple[int, int, int, bytes]:
    """(width, height, bytes per pixel, decompressed scanlines) of an 8-bit RGB/RGBA PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour in (2, 6)
    return width, height, 3 if colour == 2 else 4, zlib.decompress(idat)


def _top_rows_brightness(path: Path, rows: int = 40) -> float:
    """Mean channel value of the first rows, un-filtered (PNG filters 0-4)."""
    width, _height, bpp, raw = _png(path)
    stride = width * bpp
    previous = bytearray(stride)
    total = 0
    for y in range(rows):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = previous[x]
            c = previous[x - bpp] if x >= bpp else 0
            if kind == 1:
                line[x] = (line[x] + a) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + b) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        channels = [v for i, v in enumerate(line) if bpp == 3 or i % 4 != 3]
        total += sum(channels) / len(channels)
        previous = line
    return total / rows


def _not_blank(path: Path) -> bool:
    """A blank page compresses to a handful of byte values; text and colour give many."""
    return len(set(_png(path)[3])) > 40


@needs_chromium
def test_cli_screenshot_writes_three_pngs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "issues").mkdir()
    (tmp_path / "gigo-mail.toml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "issues" / "003.md").write_text(ISSUE, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["preview", "3", "--screenshot"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "build" / "003"
    desktop, mobile, dark = (out / f"screenshot-{n}.png" for n in ("desktop", "mobile", "dark"))
    assert png_size(desktop)[0] == 600
    assert png_size(mobile)[0] == 375
    assert png_size(dark)[0] == 600
    for path in (desktop, mobile, dark):
        assert f"build/003/{path.name}" in result.output
        assert png_size(path)[1] >= 200
        assert _not_blank(path), path
    # narrower is taller: the mobile layout wraps the same text into more lines
    assert png_size(mobile)[1] > png_size(desktop)[1]
    # dark: the built-in template's prefers-color-scheme styles applied
    assert dark.read_bytes() != desktop.read_bytes()
    assert _top_rows_brightness(dark) < _top_rows_brightness(desktop) - 60


@needs_chromium
def test_screenshot_is_as_tall_as_the_page(tmp_path: Path) -> None:
    page = tmp_path / "tall.html"
    page.write_text('<!doctype html><html><body style="margin:0;background:#fff">'
                    '<div style="height:1234px;border-top:8px solid #c00;background:#eef">tall</div>'
                    "</body></html>", encoding="utf-8")
    shots = take_screenshots(page, tmp_path / "out", shots=(Shot("tall", 480),))
    assert png_size(shots["tall"]) == (480, 1242)


@needs_chromium
def test_overflow_is_measured_at_the_frame_width_not_chromiums_500_px_minimum(tmp_path: Path) -> None:
    (tmp_path / "wide.css").write_text(".box { width: 450px; }", encoding="utf-8")
    page = tmp_path / "page.html"
    page.write_text('<!doctype html><html><head><link rel="stylesheet" href="wide.css"></head>'
                    '<body style="margin:0"><div class="box">wide</div></body></html>', encoding="utf-8")
    assert measure_overflow(page, 375) == 75  # the stylesheet beside the page applied, in a 375 px frame
    assert measure_overflow(page, 480) == 0


# The page's height and where its last "Unsubscribe" link is, as laid out in the frame.
FOOTER_JS = """(function () {
  var links = [].filter.call(doc.querySelectorAll("a"),
                             function (a) { return /unsubscribe/i.test(a.textContent); });
  var box = links.length ? links[links.length - 1].getBoundingClientRect() : null;
  return {height: Math.ceil(Math.max(doc.documentElement.scrollHeight, doc.body.scrollHeight)),
          link: box && {top: box.top + win.scrollY, bottom: box.bottom + win.scrollY,
                        left: box.left, right: box.right}};
})()"""


def offline_011(root: Path) -> Path:
    """Issue 011 as the repository has it, but with its hero as a local file (no network)."""
    make_newsletter(root)
    path = root / "issues" / "011.md"
    text = path.read_text(encoding="utf-8")
    hero = text.split("hero:\n  src: ", 1)[1].split("\n", 1)[0]
    path.write_text(text.replace(hero, "hero.png"), encoding="utf-8")
    Image.new("RGB", (1200, 400), (40, 60, 160)).save(root / "issues" / "hero.png")
    return path


@needs_chromium
def test_every_png_shows_the_footer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The phone shot is as tall as the email laid out at 375 px (not at Chromium's 500-px
    minimum window), so its bottom, with the unsubscribe link, is in the picture."""
    root = tmp_path / "news"
    offline_011(root)
    monkeypatch.chdir(root)
    result = CliRunner().invoke(app, ["preview", "011", "--screenshot"])
    assert result.exit_code == 0, result.output
    out = root / "build" / "011"
    chromium = find_chromium()
    assert chromium is not None
    heights = {}
    for dark in (False, True):
        shots = [shot for shot in SHOTS if shot.dark == dark]
        laid_out = probe(chromium, out / "preview.html", [shot.width for shot in shots], FOOTER_JS,
                         workdir=tmp_path, dark=dark, offline=True)
        for shot, found in zip(shots, laid_out, strict=True):
            link = found["link"]
            with Image.open(out / shot.filename) as png:
                assert png.size == (shot.width, found["height"]), shot
                assert png.size[1] > link["bottom"] > link["top"] > png.size[1] - 300, shot
                # the link's text is drawn there: more than a flat background
                words = png.convert("RGB").crop((int(link["left"]), int(link["top"]),
                                                 int(link["right"]), int(link["bottom"])))
                assert len(words.getcolors(maxcolors=1 << 16) or ()) > 8, shot
            heights[shot.name] = found["height"]
    # 375 px wraps more lines than 600 px; measured at 500 px it came out about 1,200 px short
    assert heights["mobile"] > heights["desktop"] + 1500


def test_missing_chromium_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "issues").mkdir()
    (tmp_path / "gigo-mail.toml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "issues" / "003.md").write_text(ISSUE, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIGO_CHROMIUM", str(tmp_path / "no-such-browser"))
    result = CliRunner().invoke(app, ["preview", "3", "--screenshot"])
    assert result.exit_code == 1
    assert "apt-get install chromium" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "build" / "003" / "screenshot-desktop.png").exists()


def test_png_size_rejects_other_files(tmp_path: Path) -> None:
    bogus = tmp_path / "not.png"
    bogus.write_bytes(b"GIF89a" + bytes(30))
    with pytest.raises(ScreenshotError):
        png_size(bogus)


# -- the built-in template, laid out by Chromium ------------------------------------------

# Per width: the page's scroll width, anything sticking out or scrolling sideways, every
# visible text's colour with the backgrounds behind it (innermost first, up to the first
# opaque one), the footer links' boxes and the images' widths.
LAYOUT_JS = """(function () {
  var W = win.innerWidth, out = {width: doc.documentElement.scrollWidth, wide: [], texts: [], taps: [],
                                 images: [], scrollers: [], broken: []};
  function label(el) { return el.tagName.toLowerCase() + (el.className ? "." + el.className : ""); }
  [].forEach.call(doc.body.querySelectorAll("*"), function (el) {
    var box = el.getBoundingClientRect(), style = win.getComputedStyle(el);
    if (!el.getClientRects().length) { return; }
    var scrolled = el.parentElement && el.parentElement.closest(".table-scroll");
    var fits = box.right <= W + 0.5 && box.left >= -0.5;
    if (el.className === "table-scroll" && fits && el.scrollWidth > el.clientWidth + 1) {
      out.scrollers.push(label(el));  // a table wider than the phone scrolls by itself
    } else if (!scrolled && (!fits || (style.overflowX !== "visible"
                                       && el.scrollWidth > el.clientWidth + 1))) {
      out.wide.push(label(el) + " " + Math.round(box.left) + ".." + Math.round(box.right));
    }
    if (scrolled && (el.tagName === "TD" || el.tagName === "TH")) {  // a word or number split over lines
      var walker = doc.createTreeWalker(el, 4), node;  // 4: NodeFilter.SHOW_TEXT
      while ((node = walker.nextNode())) {
        var re = /\\S+/g, m;
        while ((m = re.exec(node.data))) {
          var range = doc.createRange(), lines = {};
          range.setStart(node, m.index); range.setEnd(node, m.index + m[0].length);
          [].forEach.call(range.getClientRects(), function (r) { lines[Math.round(r.top)] = 1; });
          var cjk = /[\\u3000-\\u9fff\\uac00-\\ud7af]/.test(m[0]);  // these break between characters
          if (!cjk && Object.keys(lines).length > 1) { out.broken.push(m[0]); }
        }
      }
    }
    var own = [].some.call(el.childNodes, function (n) { return n.nodeType === 3 && n.data.trim(); });
    if (own && style.visibility === "visible") {
      var layers = [];
      for (var up = el; up && up.nodeType === 1; up = up.parentElement) {
        var bg = win.getComputedStyle(up).backgroundColor;
        if (!/rgba\\(.*, 0\\)$/.test(bg)) { layers.push(bg); if (!/rgba/.test(bg)) { break; } }
      }
      out.texts.push({what: label(el), text: el.textContent.trim().slice(0, 40), color: style.color,
                      layers: layers, size: parseFloat(style.fontSize),
                      bold: parseInt(style.fontWeight) >= 700});
    }
  });
  [].forEach.call(doc.querySelectorAll(".footer a, .masthead-meta a"), function (a) {
    var box = a.getBoundingClientRect();
    out.taps.push({text: a.textContent, width: box.width, height: box.height});
  });
  [].forEach.call(doc.images, function (img) { out.images.push(img.getBoundingClientRect().width); });
  return out;
})()"""
WIDTHS = (320, 375, 600)


def _rgba(css: str) -> tuple[float, float, float, float]:
    parts = [float(v) for v in re.findall(r"[\d.]+", css)]
    return parts[0], parts[1], parts[2], parts[3] if len(parts) > 3 else 1.0


def _over(top: tuple[float, float, float, float], below: tuple[float, float, float]) -> tuple[float, ...]:
    alpha = top[3]
    return tuple(alpha * t + (1 - alpha) * b for t, b in zip(top[:3], below, strict=True))


def _luminance(rgb: tuple[float, ...]) -> float:
    """WCAG 2 relative luminance of an sRGB colour (0-255 channels)."""
    def linear(channel: float) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(text: dict[str, Any]) -> float:
    """The WCAG contrast ratio of a text's colour on what is behind it, as Chromium computed them."""
    backdrop: tuple[float, ...] = (255.0, 255.0, 255.0)  # a canvas with no colour of its own
    for layer in reversed(text["layers"]):
        backdrop = _over(_rgba(layer), backdrop)
    fore = _over(_rgba(text["color"]), backdrop)
    light, dark = sorted((_luminance(fore), _luminance(backdrop)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def aa_minimum(text: dict[str, Any]) -> float:
    """WCAG AA: 4.5:1, or 3:1 for large text (24 px, or 18.66 px bold)."""
    large = text["size"] >= 24 or (text["bold"] and text["size"] >= 18.66)
    return 3.0 if large else 4.5


def test_contrast_arithmetic_matches_wcag() -> None:
    black_on_white = {"color": "rgb(0, 0, 0)", "layers": ["rgb(255, 255, 255)"]}
    assert contrast(black_on_white) == pytest.approx(21.0)
    # the audit's finding: light code text on code's light background
    assert contrast({"color": "rgb(229, 231, 235)", "layers": ["rgb(243, 244, 246)"]}) < 1.2
    half = {"color": "rgba(0, 0, 0, 0.5)", "layers": ["rgb(255, 255, 255)"]}
    assert 3.9 < contrast(half) < 4.0


@pytest.fixture(scope="module")
def laid_out(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, bool], list[dict[str, Any]]]:
    """LAYOUT_JS on the stress issue and on issue 011, light and dark, at 320, 375 and 600 px."""
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no Chromium installed")
    tmp = tmp_path_factory.mktemp("layout")
    root = tmp / "news"
    offline_011(root)
    folder = root / "issues" / "099"
    folder.mkdir()
    shutil.copy(DATA / "stress-issue.md", folder / "index.md")
    Image.new("RGB", (3052, 1200), (200, 80, 40)).save(folder / "wide.png")
    config = load_config(root)
    pages = {}
    for key in ("099", "011"):
        compiled = compile_issue(config, find_issue(root, key))
        pages[key] = write_build(compiled, tmp / key)["preview"]
    return {(key, dark): probe(chromium, page, WIDTHS, LAYOUT_JS, workdir=tmp, dark=dark, offline=True)
            for key, page in pages.items() for dark in (False, True)}


@pytest.mark.slow
@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_stress_issue_never_scrolls_sideways(laid_out: dict[tuple[str, bool], Any], dark: bool) -> None:
    """Long code lines, a wide table, long URLs, a 3,052-px image and non-Latin text fit a
    320-px phone: nothing sticks out and nothing scrolls inside."""
    for width, page in zip(WIDTHS, laid_out[("099", dark)], strict=True):
        assert page["width"] == width, (width, page["wide"][:5])
        assert page["wide"] == [], width
        # table cells keep words and numbers whole ("2024-02", "1920x1080", "12345678901234567890");
        # the narrow table wraps between words, the eight-column one scrolls by itself
        assert page["broken"] == [], width
        assert page["scrollers"] == ["div.table-scroll"], width
        assert {"2024-02", "1920x1080"} <= {text["text"] for text in page["texts"]}
        assert page["images"] and max(page["images"]) <= width - 36, width  # inside the body's padding
        assert any("東京都" in text["text"] for text in page["texts"])


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_every_text_meets_wcag_aa(laid_out: dict[tuple[str, bool], Any], dark: bool) -> None:
    for key, kinds in (("099", {"code", "th", "td"}), ("011", {"h2", "strong", "em"})):
        page = laid_out[(key, dark)][1]  # 375 px: the phone layout
        seen = {text["what"].split(".")[0] for text in page["texts"]}
        assert {"p", "a", "h1", "li"} | kinds <= seen, (key, seen)
        failing = [(text["what"], text["text"], round(contrast(text), 2)) for text in page["texts"]
                   if contrast(text) < aa_minimum(text)]
        assert failing == [], (key, failing)


def test_footer_and_view_in_browser_links_are_24px_tap_targets(laid_out: dict[tuple[str, bool], Any]) -> None:
    for page in laid_out[("011", False)]:
        expected = {"Unsubscribe", "Discord", "contact@gigo.dev", "View in browser"}
        assert expected <= {tap["text"] for tap in page["taps"]}
        small = [tap for tap in page["taps"] if tap["height"] < 24 or tap["width"] < 24]
        assert small == []


def test_dark_masthead_keeps_its_own_colours(laid_out: dict[tuple[str, bool], Any]) -> None:
    """`.card p` used to outrank the masthead's dark colours: its name took the body's grey
    instead of the headings' white, and its meta line the body colour instead of the footer's."""
    texts = laid_out[("011", True)][1]["texts"]

    def colour(what: str) -> str:
        return next(text["color"] for text in texts if text["what"] == what)

    body = next(text["color"] for text in texts if text["what"] == "p" and len(text["text"]) > 30)
    assert colour("p.masthead-name") == colour("h1") != body
    assert colour("p.masthead-meta") == next(text["color"] for text in texts if text["what"].startswith("a")
                                             and text["text"] == "Unsubscribe") != body


RTL_JS = ("(() => { const p = doc.querySelector('.body-text p'); const s = win.getComputedStyle(p);"
          " const range = doc.createRange(); range.selectNodeContents(p);"
          " const text = range.getBoundingClientRect(), box = p.getBoundingClientRect();"
          " return {direction: s.direction, align: s.textAlign, left_gap: text.left - box.left,"
          " right_gap: box.right - text.right,"
          " list: win.getComputedStyle(doc.querySelector('.body-text ul')).paddingRight,"
          " quote: win.getComputedStyle(doc.querySelector('.body-text blockquote')).borderRightWidth,"
          " overflow: Math.max(doc.documentElement.scrollWidth, doc.body.scrollWidth) - win.innerWidth};"
          " })()")


@needs_chromium
def test_a_right_to_left_issue_reads_from_the_right_in_a_browser(tmp_path: Path) -> None:
    """Laid out by Chromium at phone and desktop widths: a short Hebrew line starts at the right
    edge of its column, as Hebrew readers expect, lists are indented and quotes ruled on that
    side, and nothing scrolls sideways."""
    root = make_newsletter(tmp_path / "news")
    issue = root / "issues" / "052.md"
    issue.write_text("---\nsubject: גיליון\nlang: he\n---\nשלום לכולם.\n\n- אחת\n- שתיים\n\n> ציטוט\n",
                     encoding="utf-8")
    page = write_build(compile_issue(load_config(root), find_issue(root, "052")), tmp_path / "out")["preview"]
    for width, seen in zip((375, 600), probe(find_chromium(), page, [375, 600], RTL_JS, workdir=tmp_path,
                                              offline=True), strict=True):
        assert (seen["direction"], seen["align"]) == ("rtl", "right"), (width, seen)
        assert seen["right_gap"] < 1 < seen["left_gap"], (width, seen)
        assert (seen["list"], seen["quote"]) == ("24px", "4px"), (width, seen)  # indent and rule on the right
        assert seen["overflow"] <= 0, (width, seen)
