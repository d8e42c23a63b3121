"""Screenshots with the real Chromium on this machine; PNGs are checked by decoding them here."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gigo_mail.cli import app
from gigo_mail.errors import ScreenshotError
from gigo_mail.screenshot import Shot, find_chromium, measure_overflow, png_size, take_screenshots

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
