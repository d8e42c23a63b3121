"""[signup] in gigo-mail.toml: the settings of signup on the newsletter's own site.

Kept apart from ``config``, which reads it like any section; ``config_schema`` checks its values
(and that a redirect goes only to the newsletter's own origins). Also where the public page's
signup paths sit (``page_prefix``, ``page_base``).
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_CONSENT = ("Send me {name} by email. I can unsubscribe at any time with the link in every issue; "
                   "my address is used for nothing else.")


@dataclass(frozen=True)
class Signup:
    """[signup]: readers join on the newsletter's own site by double opt-in (``web.signup``).

    ``consent_text`` is what the form says the reader agrees to; change ``consent_version``
    whenever it changes (every confirmation records the version and the text's hash).
    ``redirect_url`` (after a signup or a confirmation) must be on the site's or the page's
    own origin. ``confirm_delay``: with ``get_confirms``, a GET of the mail's link confirms
    only this many seconds after the mail (scanners fetch within seconds); without it (the
    default) a GET never confirms, the page's button does."""

    enabled: bool = False
    consent_text: str = DEFAULT_CONSENT  # "{name}" is the newsletter's name
    consent_version: str = "1"
    redirect_url: str = ""
    confirm_delay: int = 300
    get_confirms: bool = False
    confirm_hours: int = 72  # how long the confirmation link works
    welcome: str = ""  # an issue sent once to each new reader when pulled in, e.g. "welcome"
    per_ip_per_hour: int = 10  # signup attempts per client address
    per_network_per_hour: int = 30  # per /24 (IPv4) or /48 (IPv6)
    per_hour: int = 500  # all signups together
    store_ip: bool = False  # keep the client's /24 or /48 as part of the consent evidence
    pow_cost: int = 5000  # PBKDF2 iterations per try of the proof of work
    pow_max_counter: int = 1000  # tries: between half and all of this (about 1 s in a browser)
    trusted_proxy: str = ""  # the reverse proxy's address, whose X-Forwarded-For names the client


def url_origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower-cased; '' when it has none."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else ""


def page_prefix(unsubscribe_url: str) -> str:
    """The folder the public page is served under: what precedes the last segment of the path of
    ``unsubscribe_url`` ('' for ``https://gigo.dev/unsubscribe?token={token}``, ``/news`` for
    ``.../news/unsubscribe``). Signup's paths (``/subscribe``, ``/confirm``) sit beside it."""
    from urllib.parse import urlsplit

    path = urlsplit(unsubscribe_url).path
    return path.rsplit("/", 1)[0] if "/" in path else ""


def page_base(unsubscribe_url: str) -> str:
    """The public page's address without a trailing slash: ``https://gigo.dev`` or ``.../news``."""
    return url_origin(unsubscribe_url) + page_prefix(unsubscribe_url)
