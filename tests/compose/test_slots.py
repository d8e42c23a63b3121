"""The slot contract: tokens, one table per compile, splitting, values and filling."""

from __future__ import annotations

import pytest

from gigo_mail.compose.slots import (
    SAMPLE_VALUES,
    SLOT_RE,
    Slot,
    SlotTable,
    SlotTemplate,
    escape_html,
    lookup,
    placeholders,
    sample_fields,
    shape,
    split,
    values,
)
from gigo_mail.errors import TemplateError


def test_equal_slots_share_one_token_and_tokens_match_the_pattern() -> None:
    table = SlotTable()
    subscriber = placeholders(table)["subscriber"]
    first, again, city = str(subscriber.name), str(subscriber.NAME), str(subscriber["City "])
    assert first == again != city
    assert [int(SLOT_RE.fullmatch(token).group(1)) for token in (first, city)] == [0, 1]  # type: ignore[union-attr]
    assert table.slots == [Slot(("subscriber", "name")), Slot(("subscriber", "city"))]


def test_a_placeholder_cannot_be_tested_with_if() -> None:
    with pytest.raises(TemplateError, match="'subscriber.name' differs per subscriber"):
        bool(placeholders(SlotTable())["subscriber"].name)


def test_split_and_fill_keep_every_literal_byte() -> None:
    source = "a {braces} gigo:slot:1: b gigo:slot:0:gigo:slot:1: c"
    assert split(source) == (["a {braces} ", " b ", "", " c"], [1, 0, 1])
    template = SlotTemplate(source)
    assert template.slots_used == {0, 1}
    assert template.fill(["X", "Y"]) == "a {braces} Y b XY c"
    assert SlotTemplate("no slots {here}").fill([]) == "no slots {here}"


def test_values_look_up_and_shape_each_slot() -> None:
    slots = [Slot(("subscriber", "name")), Slot(("subscriber", "city"), ("upper",), "somewhere"),
             Slot(("subscriber",)), Slot(("unsubscribe_url",)), Slot(("subscriber", "email"), ("urlencode",))]
    got = values(slots, {"city": ""}, "Zoë", "z+1@example.org", "https://u.example/x")
    assert got == ["Zoë", "SOMEWHERE", "Zoë", "https://u.example/x", "z%2B1%40example.org"]
    assert lookup(Slot(("subscriber",)), {}, "", "z@example.org", "") == "z@example.org"
    assert shape(Slot(("s",), ("trim", "title")), "  ada lovelace ") == "Ada Lovelace"
    assert escape_html(['<a href="x">&']) == ["&lt;a href=&quot;x&quot;&gt;&amp;"]


def test_sample_fields_prefer_given_values_then_samples_then_column_names() -> None:
    fields = sample_fields(["city", "name"], {"email": "me@example.org"})
    assert fields == {**SAMPLE_VALUES, "city": "[city]", "email": "me@example.org"}
