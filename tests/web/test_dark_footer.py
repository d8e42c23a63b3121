"""The default template in dark mode under both MJML engines: the bundled one (MRML) and official MJML.

Official MJML 5 puts mj-body's css-class on <body>, MRML on the wrapper div inside it. A dark
rule that reached the page through that class left the footer light grey on the wrapper's light
grey (2.31:1) under official MJML. The template's rules must hold under either engine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from test_screenshot import LAYOUT_JS, aa_minimum, contrast, offline_011

from gigo_mail.compose.compile import _premailer, compile_issue, write_build
from gigo_mail.compose.issue import find_issue
from gigo_mail.config import load_config
from gigo_mail.web.screenshot import find_chromium, probe

MJML_VERSION = "5.4.1"
pytestmark = pytest.mark.slow


def official_mjml() -> Path:
    """The official compiler from the npm registry, installed once per machine into a cache folder."""
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("npm/node are not installed: official MJML (npm mjml) cannot be run; "
                    "Debian: apt-get install npm")
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gigo-mail-tests"
    folder = cache / f"mjml-{MJML_VERSION}"
    binary = folder / "node_modules" / ".bin" / "mjml"
    if not binary.exists():
        folder.mkdir(parents=True, exist_ok=True)
        try:
            subprocess.run(["npm", "install", "--prefix", str(folder), "--no-audit", "--no-fund", "--silent",
                            f"mjml@{MJML_VERSION}"], check=True, capture_output=True, timeout=300)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            pytest.skip(f"npm could not install mjml@{MJML_VERSION} (no registry?): {exc}")
    return binary


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Issue 011 compiled by MRML (as gigo-mail does) and by official MJML, both inlined by premailer."""
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no Chromium installed")
    binary = official_mjml()
    tmp = tmp_path_factory.mktemp("engines")
    offline_011(tmp / "news")
    import mjml

    sources: list[str] = []
    bundled = mjml.mjml2html

    def keep(source: str, **kwargs: Any) -> str:
        sources.append(source)
        return str(bundled(source, **kwargs))

    mjml.mjml2html = keep
    try:
        compiled = compile_issue(load_config(tmp / "news"), find_issue(tmp / "news", "011"))
    finally:
        mjml.mjml2html = bundled
    (tmp / "email.mjml").write_text(sources[0], encoding="utf-8")
    result = subprocess.run([str(binary), "-s", str(tmp / "email.mjml"), "--config.validationLevel", "skip",
                             "--config.minify", "false"], capture_output=True, text=True, timeout=60,
                            check=True)
    official = tmp / "official.html"
    official.write_text(_premailer(result.stdout), encoding="utf-8")
    shutil.copy(tmp / "news" / "issues" / "hero.png", tmp / "hero.png")
    return {"mrml": write_build(compiled, tmp / "mrml")["preview"], "official": official}


@pytest.mark.parametrize("engine", ["mrml", "official"])
def test_dark_mode_meets_wcag_aa_under_either_mjml_engine(pages: dict[str, Path], engine: str,
                                                         tmp_path: Path) -> None:
    chromium = find_chromium()
    assert chromium is not None
    page: dict[str, Any] = probe(chromium, pages[engine], [375], LAYOUT_JS, workdir=tmp_path, dark=True,
                                 offline=True)[0]
    footer = [text for text in page["texts"] if text["text"].startswith(("You are receiving", "Unsubscribe"))]
    assert len(footer) >= 2, page["texts"]
    failing = [(text["what"], text["text"], round(contrast(text), 2)) for text in page["texts"]
               if contrast(text) < aa_minimum(text)]
    assert failing == [], (engine, failing)
