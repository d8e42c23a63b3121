"""gigo-mail: Markdown newsletters compiled once to responsive email and sent over SMTP.

The packages, in the order an issue flows through them (see ARCHITECTURE.md)::

    errors, config, env, text, net, address, version   the base: imports only itself
    compose     an issue file -> one compiled email (Jinja2, MJML, premailer), once per issue
    lists       subscriber files and platform exports: validate, dedupe, who opted out, segments
    journal     SQLite: who was sent what, suppressions, soft bounces, the page's sync
    transport   where messages go: SMTP, .eml files, memory; replies and what they mean
    send        one run: plan, messages (DKIM, VERP, tokens), the engine and its outcomes
    answers     what comes back (bounces, complaints, mailed unsubscribes), read and acted on
    check       the preflight of an issue and its sending domain
    web         the servers and pages: preview, the static site, the capture inbox, the public page
    cli         the commands

A package imports only the packages listed above it, never a sibling on its own line
(compose, lists, journal and transport know nothing of each other; check and answers
neither); ``lint-imports`` checks this contract (pyproject.toml) in CI.

What a program may import from here: ``make_app(config)``, the unsubscribe page as a
WSGI app for any WSGI server, and ``load_config`` to make its argument.
"""

from typing import TYPE_CHECKING, Any

from gigo_mail.version import __version__

if TYPE_CHECKING:
    from gigo_mail.config import load_config
    from gigo_mail.web.public import make_app

__all__ = ["__version__", "load_config", "make_app"]


def __getattr__(name: str) -> Any:
    """The exports are imported on first use: ``python -m gigo_mail --help`` loads neither
    the config reader nor the web server through the package."""
    if name == "load_config":
        from gigo_mail.config import load_config

        return load_config
    if name == "make_app":
        from gigo_mail.web.public import make_app

        return make_app
    raise AttributeError(f"module 'gigo_mail' has no attribute {name!r}")
