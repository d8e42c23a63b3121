"""--tag and --where: the tokenizer, the parser's errors, and what a segment selects."""

from __future__ import annotations

import pytest

from gigo_mail.errors import SegmentError
from gigo_mail.lists.segment import Segment, tokenize

ROWS = {
    "ann": {"plan": "paid", "country": "NO", "city": "Oslo", "vip": "true"},
    "bob": {"plan": "free", "country": "SE", "city": "Malmö", "vip": "no"},
    "cy": {"plan": "Paid", "country": "DK", "city": "", "vip": ""},
    "di": {"plan": "paid", "country": "se", "city": "It's far"},
}


def selected(where: str) -> list[str]:
    segment = Segment.build(where=where)
    assert segment is not None
    return [name for name, row in ROWS.items() if segment.matches(row, ())]


@pytest.mark.parametrize(("where", "names"), [
    ("plan == 'paid'", ["ann", "cy", "di"]),
    ("plan != 'paid'", ["bob"]),
    ("plan == 'paid' and country in ('NO','SE')", ["ann", "di"]),
    ("country not in ('NO', 'SE',)", ["cy"]),
    ("not plan == 'paid' or country == 'DK'", ["bob", "cy"]),
    ("plan == 'free' or plan == 'paid' and country == 'NO'", ["ann", "bob"]),  # and binds tighter
    ("(plan == 'free' or plan == 'paid') and country == 'NO'", ["ann"]),
    ("vip", ["ann"]),
    ("not vip and city", ["bob", "di"]),
    ("city == \"It's far\"", ["di"]),
    ("city == 'It\\'s far'", ["di"]),
    ("missing == ''", ["ann", "bob", "cy", "di"]),
    ("NOT Plan == 'PAID'", ["bob"]),  # keywords, names and values ignore case
])
def test_where_selects(where: str, names: list[str]) -> None:
    assert selected(where) == names


@pytest.mark.parametrize(("where", "message"), [
    ("plan = 'paid'", "unexpected '='"),
    ("plan == paid", "expected a quoted value"),
    ("plan == 'paid' and", "expected a field name"),
    ("(plan == 'paid'", "expected ')'"),
    ("country in 'NO'", "expected '(' and a list"),
    ("country not 'NO'", "expected 'in' after 'not'"),
    ("plan == 'paid' country == 'NO'", "expected 'and', 'or' or the end"),
    ("plan == 'paid", "unexpected '''"),
    ("__import__('os').system('x')", "expected 'and', 'or' or the end"),
])
def test_bad_expressions_say_where(where: str, message: str) -> None:
    with pytest.raises(SegmentError) as info:
        Segment.build(where=where)
    assert message in str(info.value) and "--where" in str(info.value)


def test_tokens_carry_their_column() -> None:
    assert [(t.kind, t.text, t.at) for t in tokenize("a == 'x'")] == [
        ("word", "a", 1), ("op", "==", 3), ("string", "x", 6), ("end", "", 9)]


def test_tags_any_of_and_combined_with_where() -> None:
    segment = Segment.build(["Paid", "beta"], "country == 'NO'")
    assert segment is not None
    assert segment.matches({"country": "no"}, ("paid",))
    assert not segment.matches({"country": "no"}, ("free",))
    assert not segment.matches({"country": "SE"}, ("beta",))
    assert segment.describe() == "tag: Paid | beta; where: country == 'NO'"
    assert Segment.build([], None) is None and Segment.build(["  "], "  ") is None


def test_fields_the_list_lacks_are_refused_unless_rows_carry_json() -> None:
    segment = Segment.build(where="plann == 'paid'")
    assert segment is not None
    with pytest.raises(SegmentError, match="'plann', but list.csv has no such column"):
        segment.check_fields({"email", "plan"}, False, "list.csv")
    segment.check_fields({"email", "attributes"}, True, "list.csv")  # listmonk: keys unknown until read
