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
    ('enabled = true\nredirect_url = "https://evil.example/phish"',
     r":\d+:\d+: \[signup\] redirect_url is not on the newsletter's own site — use an address under "
     r"https://example.org or https://page.example.org"),
    ('enabled = true\nredirect_url = "//evil.example/"',
     r"redirect_url '//evil.example/' is not an https or http URL"),
    ("per_ip_per_hour = 0", r"\[signup\] per_ip_per_hour is 0, below 1 — use 1 or more"),
    ("pow_cost = true", r"\[signup\] pow_cost is true/false, not a whole number"),
    ('enabled = "yes"', r"\[signup\] enabled is 'yes', not true or false"),
    ("confirm_delay = -5", r"\[signup\] confirm_delay is -5, below 0 — use 0 or more"),
    ("captcha = true", r"unknown setting 'captcha' in \[signup\]"),
])
def test_bad_signup_settings_are_one_clear_line(tmp_path: Path, signup: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(config_with(tmp_path, signup))
    assert "\n" not in str(caught.value)  # one line, with the place: gigo-mail.toml:LINE:COL


def test_signup_needs_the_public_pages_address(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="enabled = true needs \\[newsletter\\] unsubscribe_url"):
        load_config(config_with(tmp_path, "enabled = true", BASE.replace("unsubscribe_url", "contact")))


def test_a_blank_consent_text_is_refused_when_signup_is_on(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[signup\] consent_text is empty"):
        load_config(config_with(tmp_path, 'enabled = true\nconsent_text = "  "'))


def test_the_columns_pull_writes_are_no_opt_out_flags() -> None:
    from gigo_mail.lists.formats import recognise

    fmt = recognise(["email", "name", "consent_at", "source", "consent"])
    assert [rule.column for rule in fmt.guards] == ["consent"]  # a real consent column is still guarded
