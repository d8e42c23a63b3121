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
