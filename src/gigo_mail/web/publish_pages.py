"""The published site's HTML pages, drawn from Jinja templates under ``templates/web/``.

A newsletter may override any of them in its own ``templates/web/``. Links between
pages are relative (``root`` leads back to the site's top), so the site works in any
folder of any host; canonical and card URLs are absolute.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from gigo_mail.compose.compiled import template_search_path
from gigo_mail.compose.render import make_environment, markup, render
from gigo_mail.compose.site_paths import absolute
from gigo_mail.config import Config
from gigo_mail.signup_config import page_base
from gigo_mail.version import __version__
from gigo_mail.web.signup_pages import CHALLENGE_PATH, form_fields

if TYPE_CHECKING:
    from gigo_mail.web.site_issue import WebIssue

STYLE_NAME = "style.css"
WIDGET_NAME = "altcha.js"  # the vendored ALTCHA widget, copied beside style.css when [signup] is on


def _relative_root(site_path: str) -> str:
    """The way back to the site's root from a page's folder: '' or '../../'."""
    depth = site_path.strip("/").count("/") + 1 if site_path.strip("/") else 0
    return "../" * depth


def page_path(number: int) -> str:
    return "" if number == 1 else f"page/{number}/"


class Pages:
    """Renders the site's HTML pages from templates/web/."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.env = make_environment(template_search_path(config.root), autoescape=True)
        newsletter = config.newsletter
        self.common: dict[str, Any] = {
            "newsletter": newsletter,
            "site": config.site,
            "description": config.site.description or newsletter.name,
            "site_url": absolute(newsletter.site_url, ""),
            "generator": f"gigo-mail {__version__}",
        }

    def _signup_form(self, canonical: str) -> Markup | None:
        """The signup form (``[signup]`` on) posting to the public page, the page's URL inside."""
        if not self.config.signup.enabled:
            return None
        page = page_base(self.config.newsletter.unsubscribe_url)
        return markup(form_fields(self.config, f"{page}/subscribe", f"{page}{CHALLENGE_PATH}", canonical))

    def _render(self, name: str, site_path: str, **context: Any) -> bytes:
        canonical = absolute(self.config.newsletter.site_url, site_path)
        page = render(self.env, f"web/{name}", {
            **self.common, "root": _relative_root(site_path), "canonical": canonical,
            "signup_form": self._signup_form(canonical), "widget": WIDGET_NAME, **context})
        return page.encode("utf-8")

    def issue(self, item: WebIssue, newer: WebIssue | None, older: WebIssue | None) -> bytes:
        return self._render("issue.html.j2", item.path, item=item, body=markup(item.body),
                            newer=newer, older=older, title=item.subject,
                            page_description=item.preheader, image=item.image_url,
                            image_alt=item.hero_alt, og_type="article")

    def archive(self, items: list[WebIssue], number: int, pages: int) -> bytes:
        title = self.common["newsletter"].name + (f" · page {number}" if number > 1 else "")
        newer = page_path(number - 1) if number > 1 else None
        older = page_path(number + 1) if number < pages else None
        return self._render("archive.html.j2", page_path(number), items=items, number=number,
                            pages=pages, newer_page=newer, older_page=older, title=title,
                            page_description=self.common["description"],
                            image=items[0].image_url if items else "", image_alt="", og_type="website")

    def style(self) -> bytes:
        return render(self.env, f"web/{STYLE_NAME}", {}).encode("utf-8")
