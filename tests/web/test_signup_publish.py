"""`publish` with [signup] on: the form on every page, the widget served by the site itself."""

from __future__ import annotations

import re
from pathlib import Path

from gigo_mail.config import load_config
from gigo_mail.web.publish import publish
from gigo_mail.web.signup_pages import WIDGET_FILE
from support import make_newsletter

SIGNUP = '\n[site]\nsubscribe_mailto = "subscribe@gigo.dev"\n\n[signup]\nenabled = true\n'


def test_every_page_carries_the_form_and_the_vendored_widget(tmp_path: Path) -> None:
    root = make_newsletter(tmp_path / "news")
    (root / "gigo-mail.toml").write_text((root / "gigo-mail.toml").read_text() + SIGNUP)
    site = publish(load_config(root)).site_dir
    assert (site / "altcha.js").read_bytes() == WIDGET_FILE.read_bytes()
    assert "MIT License" in (site / "altcha-LICENSE.txt").read_text()
    pages = sorted(site.rglob("index.html"))
    assert len(pages) >= 2
    for page in pages:
        html = page.read_text()
        assert '<form method="post" action="https://gigo.dev/subscribe"' in html, page
        assert '<altcha-widget challenge="https://gigo.dev/subscribe/challenge"' in html
        [script] = re.findall(r'<script src="([^"]+)"', html)
        assert (page.parent / script).resolve() == (site / "altcha.js").resolve()  # relative, on the site
        assert "mailto:subscribe@gigo.dev?subject=subscribe" in html  # what a reader without JavaScript does
        assert 'name="website"' in html and "Send me GIGO Tech Trends by email" in html
        canonical = re.search(r'<link rel="canonical" href="([^"]+)"', html)
        assert canonical and f'name="page" value="{canonical.group(1)}"' in html
    assert not re.search(r'<script src="https?://', "".join(p.read_text() for p in pages))  # no third party


def test_without_signup_the_site_has_no_form_and_no_script(tmp_path: Path) -> None:
    root = make_newsletter(tmp_path / "news")
    site = publish(load_config(root)).site_dir
    assert not (site / "altcha.js").exists()
    assert all("<script" not in p.read_text() for p in site.rglob("index.html"))
