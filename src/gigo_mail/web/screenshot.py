"""PNG screenshots of a compiled email with the Chromium already on this machine.

Chromium is driven through its command line only (``--headless --screenshot``),
so nothing is downloaded and no driver library is needed. Headless Chromium lays
a window out at least 500 px wide, so the email always sits in frames of the
exact widths (``framed_page``). A screenshot is as tall as the window, so the
page is first measured in those frames (a tiny script, its answer read back with
``--dump-dom``: ``probe``), then drawn in frames exactly that tall, side by side,
and the picture is cut into one PNG per width.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from gigo_mail import env
from gigo_mail.errors import ScreenshotError

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

_RESULT_RE = re.compile(r'<pre id="gigo-probe">(.*?)</pre>', re.S)
# Runs in the outer page once every frame has loaded. Each email is its frame's document
# (same origin, since it comes from srcdoc); the answers go into the outer DOM as JSON.
_PROBE_SCRIPT = """<script>
addEventListener("load", function () {
  var results = [].map.call(document.querySelectorAll("iframe"), function (frame) {
    var doc = frame.contentDocument, win = frame.contentWindow;
    try { return {value: (function (doc, win) { return (%s); })(doc, win)}; }
    catch (e) { return {error: String(e)}; }
  });
  var out = document.createElement("pre");
  out.id = "gigo-probe";
  out.textContent = JSON.stringify(results);
  document.body.appendChild(out);
});
</script>"""
PAGE_HEIGHT_JS = ("Math.ceil(Math.max(doc.documentElement.scrollHeight, "
                  "doc.body ? doc.body.scrollHeight : 0))")
OVERFLOW_JS = ("Math.max(doc.documentElement.scrollWidth, doc.body ? doc.body.scrollWidth : 0)"
               " - doc.documentElement.clientWidth")
# Hostnames resolve nowhere: nothing but the page and its local files is loaded.
OFFLINE_FLAGS = ("--host-resolver-rules=MAP * ~NOTFOUND",)



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


def framed_page(source: str, base_dir: Path, frames: Sequence[tuple[int, int]], script: str = "") -> str:
    """The email once per (width, height), side by side, each in a frame of exactly that size.

    Headless Chromium never lays a window out narrower than 500 px, so a phone's width is
    only real inside a frame. Frames' srcdoc documents resolve relative URLs against
    ``base_dir``, as the file itself would.
    """
    base = html.escape(base_dir.as_uri() + "/")
    srcdoc = html.escape(source)
    iframes, left = [], 0
    for width, height in frames:
        iframes.append(f'<iframe width="{width}" height="{height}" scrolling="no" '
                       f'style="left:{left}px" srcdoc="{srcdoc}"></iframe>')
        left += width
    probe_script = _PROBE_SCRIPT % script if script else ""
    return ("<!doctype html><html><head><meta charset=\"utf-8\">"
            f'<base href="{base}"><style>html,body{{margin:0;padding:0;overflow:hidden}}'
            "iframe{position:absolute;top:0;border:0;display:block}</style></head><body>"
            f"{''.join(iframes)}{probe_script}</body></html>")


def _page_file(workdir: Path, text: str) -> Path:
    """A uniquely named page in ``workdir`` (shots run in parallel)."""
    handle, name = tempfile.mkstemp(suffix=".html", prefix="page-", dir=workdir)
    with os.fdopen(handle, "w", encoding="utf-8") as fh:
        fh.write(text)
    return Path(name)


def _flags(dark: bool, offline: bool) -> list[str]:
    return [*(DARK_FLAGS if dark else ()), *(OFFLINE_FLAGS if offline else ())]


def probe(chromium: Path, page: Path, widths: Sequence[int], script: str, *, workdir: Path,
          dark: bool = False, offline: bool = False) -> list[Any]:
    """The JSON value of the JavaScript expression ``script`` on the email in ``page`` laid
    out at each of ``widths`` (``doc`` and ``win`` are the email's document and window).

    One browser run for all widths. ``dark`` makes ``prefers-color-scheme: dark`` match;
    ``offline`` resolves no hostname, so remote images stay unloaded and nothing leaves
    the machine.
    """
    source = page.read_text(encoding="utf-8", errors="replace")
    frames = [(width, MIN_HEIGHT) for width in widths]
    wrapper = _page_file(workdir, framed_page(source, page.parent.resolve(), frames, script))
    profile = Path(tempfile.mkdtemp(prefix="profile-", dir=workdir))
    dom = _run(chromium, [f"--window-size={max(sum(widths), 500)},{MIN_HEIGHT}",
                          "--virtual-time-budget=5000", *_flags(dark, offline), "--dump-dom",
                          wrapper.as_uri()], profile)
    match = _RESULT_RE.search(dom)
    if not match:
        raise ScreenshotError(f"could not measure {page} in {chromium}")
    results = json.loads(html.unescape(match.group(1)))
    for result in results:
        if "error" in result:
            raise ScreenshotError(f"measuring {page} failed in {chromium}: {result['error']}")
    return [result.get("value") for result in results]


def measure_heights(chromium: Path, page: Path, widths: Sequence[int], *, dark: bool, workdir: Path,
                    offline: bool = False) -> list[int]:
    """The page's full height in CSS pixels at each width (what a tall window must show)."""
    heights = probe(chromium, page, widths, PAGE_HEIGHT_JS, workdir=workdir, dark=dark, offline=offline)
    return [max(MIN_HEIGHT, min(MAX_HEIGHT, int(height))) for height in heights]


def measure_overflow(page: Path, width: int, *, chromium: Path | None = None) -> int:
    """CSS pixels by which ``page`` is wider than a ``width``-px viewport (0: no horizontal
    scroll), laid out in a frame of exactly that width."""
    browser = chromium or require_chromium()
    with tempfile.TemporaryDirectory(prefix="gigo-width-") as tmp:
        [extra] = probe(browser, page, [width], OVERFLOW_JS, workdir=Path(tmp))
    return max(0, int(extra))


def take_shots(chromium: Path, page: Path, shots: Sequence[Shot], out_dir: Path, workdir: Path,
               offline: bool = False) -> list[Path]:
    """PNGs of shots that share a colour scheme: measured at their real widths, then drawn
    side by side in one window exactly as tall as the tallest and cut apart."""
    dark = shots[0].dark
    heights = measure_heights(chromium, page, [shot.width for shot in shots], dark=dark,
                              workdir=workdir, offline=offline)
    source = page.read_text(encoding="utf-8", errors="replace")
    frames = [(shot.width, height) for shot, height in zip(shots, heights, strict=True)]
    framed = _page_file(workdir, framed_page(source, page.parent.resolve(), frames))
    strip = workdir / f"strip-{framed.stem}.png"
    profile = Path(tempfile.mkdtemp(prefix="profile-", dir=workdir))
    _run(chromium, [f"--window-size={sum(w for w, _ in frames)},{max(heights)}",
                    "--virtual-time-budget=5000", *_flags(dark, offline), f"--screenshot={strip}",
                    framed.as_uri()], profile)
    if not strip.is_file() or strip.stat().st_size == 0:
        raise ScreenshotError(f"{chromium} wrote no screenshot to {strip}")
    targets, left = [], 0
    with Image.open(strip) as picture:
        for shot, (width, height) in zip(shots, frames, strict=True):
            target = out_dir / shot.filename
            picture.crop((left, 0, left + width, height)).save(target)
            targets.append(target)
            left += width
    return targets


def take_screenshots(page: Path, out_dir: Path, *, chromium: Path | None = None,
                     shots: tuple[Shot, ...] = SHOTS, offline: bool = False,
                     on_done: Callable[[Shot, Path], None] | None = None) -> dict[str, Path]:
    """Screenshots of the HTML file ``page`` into ``out_dir``, by shot name.

    Light and dark shots are two browser runs each (measure, then draw), two at a time,
    each with a fresh throw-away profile.
    """
    if not page.is_file():
        raise ScreenshotError(f"{page}: no such file to screenshot")
    browser = chromium or require_chromium()
    out_dir.mkdir(parents=True, exist_ok=True)
    for shot in shots:
        (out_dir / shot.filename).unlink(missing_ok=True)
    groups = [group for group in ([s for s in shots if not s.dark], [s for s in shots if s.dark]) if group]
    made: dict[Shot, Path] = {}
    with tempfile.TemporaryDirectory(prefix="gigo-shot-") as tmp, ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(take_shots, browser, page, group, out_dir, Path(tmp), offline)
                   for group in groups]
        for group, future in zip(groups, futures, strict=True):
            made.update(zip(group, future.result(), strict=True))
    results: dict[str, Path] = {}
    for shot in shots:
        results[shot.name] = made[shot]
        if on_done is not None:
            on_done(shot, made[shot])
    return results


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the PNG's IHDR chunk; no imaging library needed."""
    with path.open("rb") as fh:
        head = fh.read(24)
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise ScreenshotError(f"{path} is not a PNG file")
    width, height = struct.unpack(">II", head[16:24])
    return width, height
