"""[signup] in gigo-mail.toml: defaults, and the settings refused with one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from gigo_mail.config import load_config
from gigo_mail.errors import ConfigError

BASE = """
[newsletter]
name = "N"
from = "N <n@example.org>"
site_url = "https://example.org/news"
unsubscribe_url = "https://page.example.org/unsubscribe?token={token}"
"""


def config_with(tmp_path: Path, signup: str, base: str = BASE) -> Path:
    (tmp_path / "gigo-mail.toml").write_text(base + "\n[signup]\n" + signup)
    return tmp_path


def test_signup_is_off_by_default_with_a_five_minute_delay(tmp_path: Path) -> None:
    settings = load_config(config_with(tmp_path, "")).signup
    assert not settings.enabled and settings.confirm_delay == 300 and not settings.get_confirms
    assert "{name}" in settings.consent_text and settings.consent_version == "1"


@pytest.mark.parametrize("redirect", ["https://example.org/thanks", "https://page.example.org/welcome"])
def test_a_redirect_to_the_sites_own_origins_is_accepted(tmp_path: Path, redirect: str) -> None:
    config = load_config(config_with(tmp_path, f'enabled = true\nredirect_url = "{redirect}"'))
    assert config.signup.redirect_url == redirect


@pytest.mark.parametrize(("signup", "message"), [
    ('enabled = true\nredirect_url = "https://evil.example/phish"', "redirect_url must be on the"),
    ('enabled = true\nredirect_url = "//evil.example/"', "redirect_url must be on"),
    ("per_ip_per_hour = 0", "per_ip_per_hour must be a whole number"),
    ("pow_cost = true", "pow_cost must be a whole number"),
    ('enabled = "yes"', "enabled must be true or false"),
    ("confirm_delay = -5", "confirm_delay must be a whole number"),
    ("captcha = true", "unknown setting 'captcha'"),
])
def test_bad_signup_settings_are_one_clear_line(tmp_path: Path, signup: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(config_with(tmp_path, signup))


def test_signup_needs_the_public_pages_address(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs \\[newsletter\\] unsubscribe_url"):
        load_config(config_with(tmp_path, "enabled = true", BASE.replace("unsubscribe_url", "contact")))
