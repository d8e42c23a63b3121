"""Screenshots with the real Chromium on this machine; PNGs are checked by decoding them here."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from gigo_mail.cli import app
from gigo_mail.errors import ScreenshotError
from gigo_mail.screenshot import (
    SHOTS,
    Shot,
    find_chromium,
    measure_overflow,
    png_size,
    probe,
    take_screenshots,
)
from support import make_newsletter

needs_chromium = pytest.mark.skipif(find_chromium() is None, reason="no Chromium installed")

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
