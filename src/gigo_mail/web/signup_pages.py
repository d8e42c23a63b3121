"""The signup pages' HTML: the form, its answers, the confirmation button.

Plain, accessible pages (labels, one heading, the language of the newsletter, large targets),
no third-party resource: the ALTCHA widget is served by the page itself from the copy
vendored in ``gigo_mail/static/altcha`` (MIT, its licence beside it). Without JavaScript the
widget cannot prove anything, so the form says how else to join (``subscribe_mailto``).
"""

from __future__ import annotations

import html
from pathlib import Path

from gigo_mail.config import Config
from gigo_mail.signup_config import page_prefix

WIDGET_FILE = Path(__file__).resolve().parent.parent / "static" / "altcha" / "altcha.umd.min.cjs"
HONEYPOT = "website"  # a field people never see and bots fill in
WIDGET_PATH = "/subscribe/altcha.js"
CHALLENGE_PATH = "/subscribe/challenge"
_STYLE = ("body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;"
          "line-height:1.5;color:#111827;background:#fff}h1{font-size:1.5rem}"
          "label{display:block;margin:.8rem 0 .2rem;font-weight:600}"
          "input[type=email],input[type=text]{font-size:1rem;padding:.6rem;width:100%;box-sizing:border-box;"
          "border:1px solid #6b7280;border-radius:4px}"
          "button{font-size:1rem;padding:.7rem 1.4rem;margin-top:1rem;min-height:44px;cursor:pointer}"
          ".gigo-hp{position:absolute;left:-10000px;width:1px;height:1px;overflow:hidden}"
          ".note{color:#4b5563;font-size:.9rem}"
          "@media (prefers-color-scheme:dark){body{color:#f3f4f6;background:#111827}.note{color:#d1d5db}}")


def page(config: Config, title: str, body: str, script: bool = False) -> bytes:
    """A whole page in the newsletter's language and direction."""
    n = config.newsletter
    widget = page_prefix(n.unsubscribe_url) + WIDGET_PATH
    head_script = f'<script src="{html.escape(widget)}" defer></script>' if script else ""
    return (f'<!doctype html><html lang="{html.escape(n.lang)}" dir="{n.dir}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="robots" content="noindex"><title>{html.escape(title)}</title>'
            f"<style>{_STYLE}</style>{head_script}</head><body><main><h1>{html.escape(title)}</h1>{body}"
            f'</main><p class="note">{html.escape(n.name)}</p></body></html>').encode()


def consent_html(config: Config) -> str:
    return html.escape(consent_text(config))


def consent_text(config: Config) -> str:
    """The consent text as readers see it (``{name}`` is the newsletter's name)."""
    return config.signup.consent_text.replace("{name}", config.newsletter.name or "this newsletter")


def fallback_html(config: Config) -> str:
    """What a reader without JavaScript is told."""
    mailto = config.site.subscribe_mailto
    if mailto:
        address = html.escape(mailto)
        return (f"<noscript><p>This form needs JavaScript for its spam check. Without it, write to "
                f'<a href="mailto:{address}?subject=subscribe">{address}</a> to join.</p></noscript>')
    return "<noscript><p>This form needs JavaScript for its spam check.</p></noscript>"


def form_fields(config: Config, action: str, challenge_url: str, page_url: str = "") -> str:
    """The form itself: the same markup on the page and on every published page."""
    page_field = (f'<input type="hidden" name="page" value="{html.escape(page_url)}">' if page_url else "")
    return (f'<form method="post" action="{html.escape(action)}" class="gigo-signup">'
            '<label for="gigo-email">Email address</label>'
            '<input id="gigo-email" type="email" name="email" required autocomplete="email" maxlength="254">'
            '<label for="gigo-name">Name <span class="note">(optional)</span></label>'
            '<input id="gigo-name" type="text" name="name" autocomplete="name" maxlength="100">'
            f'<div class="gigo-hp" aria-hidden="true"><label for="gigo-{HONEYPOT}">Leave this empty</label>'
            f'<input id="gigo-{HONEYPOT}" type="text" name="{HONEYPOT}" tabindex="-1" autocomplete="off">'
            "</div>"
            f'{page_field}<p class="note">{consent_html(config)}</p>'
            f'<altcha-widget challenge="{html.escape(challenge_url)}" name="altcha" auto="onsubmit">'
            "</altcha-widget>"
            f'<button type="submit">Subscribe</button></form>{fallback_html(config)}')


def form_page(config: Config) -> bytes:
    n = config.newsletter
    prefix = page_prefix(n.unsubscribe_url)
    intro = f"<p>Get {html.escape(n.name)} by email.</p>" if n.name else ""
    return page(config, f"Subscribe to {n.name}" if n.name else "Subscribe",
                intro + form_fields(config, f"{prefix}/subscribe", prefix + CHALLENGE_PATH), script=True)


CHECK_INBOX = ("Almost done: if the address can join, a message is on its way to it. Open the link in it "
               "and press the button to confirm. Nothing is sent until you do.")


def accepted_page(config: Config) -> bytes:
    """The one answer for a new address, a pending one and an existing reader alike."""
    return page(config, "Check your inbox", f"<p>{CHECK_INBOX}</p>")


def refused_page(config: Config, message: str) -> bytes:
    return page(config, "Not sent", f"<p>{html.escape(message)}</p>{fallback_html(config)}")


def confirm_button_page(config: Config, token: str) -> bytes:
    name = html.escape(config.newsletter.name or "this newsletter")
    action = page_prefix(config.newsletter.unsubscribe_url) + "/confirm"
    title = "Confirm your subscription" + (f" to {config.newsletter.name}" if config.newsletter.name else "")
    return page(config, title,
                f"<p>Press the button to start receiving {name}.</p>"
                f'<form method="post" action="{html.escape(action)}">'
                f'<input type="hidden" name="token" '
                f'value="{html.escape(token)}"><button type="submit">Confirm my subscription</button></form>')


def confirmed_page(config: Config) -> bytes:
    name = html.escape(config.newsletter.name or "the newsletter")
    return page(config, "You are subscribed",
                f"<p>Thank you. {name} will come to you from the next issue on. Every issue has a link to "
                "unsubscribe.</p>")


def link_problem_page(config: Config, message: str) -> bytes:
    return page(config, "This link does not work", f"<p>{html.escape(message)}</p>")
