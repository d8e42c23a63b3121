"""gigo-mail: Markdown newsletters compiled once to responsive email and sent over SMTP.

The modules, in the order an issue flows through them (see ARCHITECTURE.md)::

    config, env       gigo-mail.toml, the environment, and which of them wins
    issue             an issue file: YAML front matter + Markdown
    markdown          Markdown -> HTML and plain text
    render            Jinja2, strict, with slot-aware filters
    slots             the per-recipient slot contract: tokens, values, filling
    compile           render -> MJML -> premailer, once per issue; the build report
    subscribers(_csv) the list: validate, dedupe, skip opted-out rows, stream
    list_formats      platform exports: recognised by header, who opted out
    segment           --tag / --where: which rows a run is for
    message           one subscriber's message as wire-ready bytes
    dkim_sign         its DKIM signature, over the final bytes
    campaign          one send set up from the config and the options (the core entry point)
    selection         the resume policy: who in the list is sent in this run; the plan
    sender            the engine: worker pool, retries, error threshold, rate limit
    sender_outcomes   what each reply or fault does to a recipient (retry, refusal breaker, ...)
    sender_types      SendOptions in, SendStats and SendResult out
    ratelimit         one adaptive rate for every connection
    transport, wire   where messages go (SMTP, or .eml files for dry runs); the reply parser
    smtp_transport    one SMTP connection (aiosmtplib): TLS, pipelining, CHUNKING
    smtp_url          the SMTP URL and endpoint, the TLS context
    smtp_replies      whom a refusal is about: the session or the recipient
    journal           who was sent what, in SQLite, so nothing is sent twice
    bounces           what an answer is; which refusals mean the mailbox is gone (one rule for
                      the send path and the answers)
    errors            every named error
    cli, cli_*        the commands: parse, call the core, draw with rich

Around the pipeline: preview (the live preview server), inbox (the capture SMTP
server), unsubscribe and unsubscribe_web (the one-click unsubscribe page), sync
(its suppressions pulled before a send), verp, mailsource, bounces and answers (what
comes back after a send, acted on), publish (the static web archive and its feeds:
publish_pages, publish_feeds, publish_serve, site_paths), check (the preflight:
check_dns, check_links, check_compat, check_spam, check_report), screenshot, scaffold.

What a program may import from here: ``make_app(config)``, the unsubscribe page as a
WSGI app for any WSGI server, and ``load_config`` to make its argument.
"""

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any  # noqa: E402 - after __version__, which the CLI imports

if TYPE_CHECKING:
    from .config import load_config
    from .unsubscribe_web import make_app

__all__ = ["__version__", "load_config", "make_app"]


def __getattr__(name: str) -> Any:
    """The exports are imported on first use: ``python -m gigo_mail --help`` loads neither
    the config reader nor the web server through the package."""
    if name == "load_config":
        from .config import load_config

        return load_config
    if name == "make_app":
        from .unsubscribe_web import make_app

        return make_app
    raise AttributeError(f"module 'gigo_mail' has no attribute {name!r}")
