"""gigo-mail.toml's rules that are not about loading it: which way a language is written."""

from __future__ import annotations

import pytest

from gigo_mail.config import Newsletter, text_direction


@pytest.mark.parametrize(("lang", "direction"), [
    ("en", "ltr"), ("pt-BR", "ltr"), ("zh-Hant", "ltr"), ("ja", "ltr"), ("sr-Cyrl", "ltr"),
    ("ar", "rtl"), ("AR-eg", "rtl"), ("he", "rtl"), ("he-IL", "rtl"), ("iw", "rtl"), ("fa-IR", "rtl"),
    ("ur", "rtl"), ("yi", "rtl"), ("ckb", "rtl"),
    ("az-Arab", "rtl"), ("pa-Arab-PK", "rtl"),  # a right-to-left script for a language that is not always
    ("ku-Latn", "ltr"), ("ar-Latn", "ltr"),  # a left-to-right script for a language that often is not
])
def test_text_direction_follows_the_language_and_its_script(lang: str, direction: str) -> None:
    assert text_direction(lang) == direction
    assert Newsletter(lang=lang).dir == direction


def test_smtp_defaults_are_written_once() -> None:
    """The engine's options and the endpoint take their defaults from config.Smtp and [suppression]."""
    from gigo_mail.config import Smtp, SuppressionSettings
    from gigo_mail.send.options import SendOptions
    from gigo_mail.transport.url import SmtpEndpoint, parse_smtp_url

    smtp, options = Smtp(), SendOptions()
    endpoint = SmtpEndpoint(parse_smtp_url("smtp://127.0.0.1:1025"))
    for name in ("concurrency", "rate", "max_per_connection", "attempts", "max_errors", "refusal_breaker"):
        assert getattr(options, name) == getattr(smtp, name), name
    assert (endpoint.timeout, endpoint.data_timeout, endpoint.in_flight) == (smtp.timeout, smtp.data_timeout,
                                                                             smtp.in_flight)
    assert options.soft_bounce_limit == SuppressionSettings().soft_bounces
