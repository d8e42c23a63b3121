"""PNG screenshots of a compiled email with the Chromium already on this machine.

Chromium is driven through its command line only (``--headless --screenshot``),
so nothing is downloaded and no driver library is needed. A screenshot is as
tall as the window, so each shot first measures the page at its width (a copy
of the page with a tiny script, read back with ``--dump-dom``) and then takes
the screenshot with a window exactly that tall.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import env
from .errors import ScreenshotError

INSTALL_HINT = ("install it with 'sudo apt-get install chromium' (Debian/Ubuntu), "
                "or point GIGO_CHROMIUM at a Chrome or Chromium binary")
# Flags that keep a headless run quiet, offline and free of leftovers.
BASE_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
# Either flag alone makes `@media (prefers-color-scheme: dark)` match in Chromium 156
# (checked on screenshots); both are given so older and newer builds agree.
DARK_FLAGS = ("--force-dark-mode", "--blink-settings=preferredColorScheme=0")
MIN_HEIGHT = 200
MAX_HEIGHT = 16384  # Chromium's texture limit; longer emails are cut there
TIMEOUT = 60.0

_HEIGHT_MARK = "gigo-height:"
_HEIGHT_RE = re.compile(re.escape(_HEIGHT_MARK) + r"(\d+)")
_MEASURE_SCRIPT = (
    "<script>addEventListener('load',function(){var d=document.documentElement;"
    "document.title='" + _HEIGHT_MARK + "'+Math.ceil(Math.max(d.scrollHeight,"
    "document.body?document.body.scrollHeight:0))})</script>"
)



@dataclass(frozen=True)
class Shot:
    """One screenshot to take: file name stem, window width, colour scheme."""

    name: str
    width: int
    dark: bool = False

    @property
    def filename(self) -> str:
        return f"screenshot-{self.name}.png"


SHOTS = (Shot("desktop", 600), Shot("mobile", 375), Shot("dark", 600, dark=True))

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def find_chromium() -> Path | None:
    """The browser to use: env GIGO_CHROMIUM, /usr/bin/chromium, then the usual names on PATH."""
    wanted = env.chromium()
    if wanted:
        found = shutil.which(wanted)
        return Path(found) if found else None
    if os.access("/usr/bin/chromium", os.X_OK):
        return Path("/usr/bin/chromium")
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def require_chromium() -> Path:
    """Like find_chromium, but a missing browser is a one-line error saying how to get one."""
    wanted = env.chromium()
    found = find_chromium()
    if found is None:
        if wanted:
            raise ScreenshotError(f"{env.CHROMIUM}={wanted} is not an executable; {INSTALL_HINT}")
        raise ScreenshotError(f"screenshots need Chromium and none was found; {INSTALL_HINT}")
    return found


def _run(chromium: Path, args: list[str], profile: Path) -> str:
    command = [str(chromium), *BASE_FLAGS, f"--user-data-dir={profile}", *args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT,
                              stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ScreenshotError(f"{chromium} did not finish within {TIMEOUT:.0f} s") from exc
    except OSError as exc:
        raise ScreenshotError(f"cannot run {chromium}: {exc.strerror}") from exc
    if done.returncode != 0:
        raise ScreenshotError(f"{chromium} exited with {done.returncode}: {_last_error(done.stderr)}")
    return done.stdout


def _last_error(stderr: str) -> str:
    """Chromium's stderr is mostly D-Bus noise; keep the last line that is not."""
    lines = [line.strip() for line in stderr.splitlines()
             if line.strip() and "dbus" not in line.lower()]
    return lines[-1][:300] if lines else "no message"


def _with_base_and_script(source: str, base_dir: Path, script: str = _MEASURE_SCRIPT) -> str:
    """The page to measure: relative URLs still resolve to the original folder."""
    base = f'<base href="{html.escape(base_dir.as_uri())}/">'
    if not re.search(r"<base\b", source, re.I):
        head = re.search(r"<head\b[^>]*>", source, re.I)
        source = (source[:head.end()] + base + source[head.end():]) if head else base + source
    body_end = source.lower().rfind("</body>")
    if body_end < 0:
        return source + script
    return source[:body_end] + script + source[body_end:]


def measure_height(chromium: Path, page: Path, width: int, *, dark: bool, workdir: Path) -> int:
    """The page's full height in CSS pixels at ``width`` (what a tall window must show)."""
    measured = workdir / f"measure-{width}-{int(dark)}.html"
    source = page.read_text(encoding="utf-8", errors="replace")
    measured.write_text(_with_base_and_script(source, page.parent.resolve()), encoding="utf-8")
    profile = Path(tempfile.mkdtemp(prefix="profile-", dir=workdir))
    dom = _run(chromium, [f"--window-size={width},{MIN_HEIGHT}", "--virtual-time-budget=5000",
                          *(DARK_FLAGS if dark else ()), "--dump-dom", measured.as_uri()], profile)
    match = _HEIGHT_RE.search(dom)
    if not match:
        raise ScreenshotError(f"could not measure the height of {page} in {chromium}")
    return max(MIN_HEIGHT, min(MAX_HEIGHT, int(match.group(1))))


_WIDTH_MARK = "gigo-width:"
_WIDTH_RE = re.compile(re.escape(_WIDTH_MARK) + r"(\d+):(\d+)")
# In the framed page: report how wide the content is, and how wide the frame shows it.
_WIDTH_SCRIPT = (
    "<script>addEventListener('load',function(){var d=document.documentElement;"
    "var w=Math.max(d.scrollWidth,document.body?document.body.scrollWidth:0);"
    "parent.postMessage('" + _WIDTH_MARK + "'+w+':'+d.clientWidth,'*')})</script>"
)
_FRAME_PAGE = (
    "<!doctype html><html><head><meta charset='utf-8'><title>waiting</title></head>"
    "<body style='margin:0'><iframe src='{src}' style='width:{width}px;height:900px;border:0'></iframe>"
    "<script>addEventListener('message',function(e){{document.title=String(e.data)}})</script>"
    "</body></html>"
)


def measure_overflow(page: Path, width: int, *, chromium: Path | None = None) -> int:
    """CSS pixels by which ``page`` is wider than a ``width``-px viewport (0: no horizontal scroll).

    Chromium never lays a window out narrower than 500 px, so the page is put in an
    iframe of exactly ``width`` px, and reports its own scroll width to the frame's parent."""
    browser = chromium or require_chromium()
    source = page.read_text(encoding="utf-8", errors="replace")
    with tempfile.TemporaryDirectory(prefix="gigo-width-") as tmp:
        work = Path(tmp)
        framed = work / "framed.html"
        framed.write_text(_with_base_and_script(source, page.parent.resolve(), _WIDTH_SCRIPT),
                          encoding="utf-8")
        outer = work / "frame.html"
        outer.write_text(_FRAME_PAGE.format(src=framed.name, width=width), encoding="utf-8")
        dom = _run(browser, [f"--window-size={width + 100},1000", "--virtual-time-budget=5000",
                             "--dump-dom", outer.as_uri()], work / "profile")
    match = _WIDTH_RE.search(dom)
    if not match:
        raise ScreenshotError(f"could not measure the width of {page} at {width} px in {browser}")
    content, shown = int(match.group(1)), int(match.group(2))
    return max(0, content - shown)


def take_shot(chromium: Path, page: Path, shot: Shot, out_dir: Path, workdir: Path) -> Path:
    """One PNG of ``page`` at the shot's width and full height."""
    height = measure_height(chromium, page, shot.width, dark=shot.dark, workdir=workdir)
    target = out_dir / shot.filename
    target.unlink(missing_ok=True)
    profile = Path(tempfile.mkdtemp(prefix="profile-", dir=workdir))
    _run(chromium, [f"--window-size={shot.width},{height}", "--virtual-time-budget=5000",
                    *(DARK_FLAGS if shot.dark else ()), f"--screenshot={target}",
                    page.resolve().as_uri()], profile)
    if not target.is_file() or target.stat().st_size == 0:
        raise ScreenshotError(f"{chromium} wrote no screenshot to {target}")
    return target


def take_screenshots(page: Path, out_dir: Path, *, chromium: Path | None = None,
                     shots: tuple[Shot, ...] = SHOTS,
                     on_done: Callable[[Shot, Path], None] | None = None) -> dict[str, Path]:
    """Screenshots of the HTML file ``page`` into ``out_dir``, by shot name.

    Each shot uses a fresh throw-away browser profile; shots run two at a time.
    """
    if not page.is_file():
        raise ScreenshotError(f"{page}: no such file to screenshot")
    browser = chromium or require_chromium()
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(prefix="gigo-shot-") as tmp, ThreadPoolExecutor(2) as pool:
        futures = {shot: pool.submit(take_shot, browser, page, shot, out_dir, Path(tmp)) for shot in shots}
        for shot, future in futures.items():
            results[shot.name] = future.result()
            if on_done is not None:
                on_done(shot, results[shot.name])
    return results


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the PNG's IHDR chunk; no imaging library needed."""
    with path.open("rb") as fh:
        head = fh.read(24)
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise ScreenshotError(f"{path} is not a PNG file")
    width, height = struct.unpack(">II", head[16:24])
    return width, height
