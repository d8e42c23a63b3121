"""Markdown to HTML and to plain text: both from one token stream."""

from __future__ import annotations

import re

from gigo_mail.compose.markdown import to_html, to_text


def test_gfm_extras_tables_strikethrough_and_bare_links() -> None:
    page = to_html("| a | b |\n|---|---|\n| 1 | 2 |\n\n~~old~~ see www.example.com or https://x.org/p?q=1\n")
    assert "<table>" in page and "<td>2</td>" in page
    assert "<s>old</s>" in page
    assert '<a href="https://www.example.com">www.example.com</a>' in page  # bare domain: https
    assert '<a href="https://x.org/p?q=1">https://x.org/p?q=1</a>' in page


def test_explicit_http_link_is_left_as_written() -> None:
    assert '<a href="http://old.example.org">' in to_html("see http://old.example.org\n")


def test_text_links_headings_and_emphasis() -> None:
    text = to_text("## Big news\n\nRead [the post](https://example.org/post) and "
                   "<https://example.org/raw> or mail [me](mailto:me@example.org).\n\n"
                   "Some *emphasis* and **strong** words.\n")
    assert "Big news\n========" in text
    assert "the post (https://example.org/post)" in text
    assert "https://example.org/raw" in text and "(https://example.org/raw)" not in text
    assert "me (me@example.org)" in text
    assert "_emphasis_" in text and "*strong*" in text


def test_text_lists_quotes_code_and_wrapping() -> None:
    text = to_text("1. one\n2. two\n   - nested\n\n> quoted *line*\n\n    code()\n\n" + "word " * 40 + "\n")
    assert "1. one\n2. two\n   - nested" in text
    assert "> quoted _line_" in text
    assert "    code()" in text
    assert all(len(line) <= 72 for line in text.splitlines())


def test_text_keeps_slot_tokens_whole() -> None:
    text = to_text("Hello gigo:slot:0:, " + "long words " * 20 + "gigo:slot:12:\n")
    assert "gigo:slot:0:" in text and "gigo:slot:12:" in text


def test_text_tables_line_up() -> None:
    text = to_text("| Model | Max length |\n|---|---|\n| Sora | 60 s |\n| Others | 4 s |\n")
    assert text.splitlines() == ["Model  | Max length", "-------+-----------", "Sora   | 60 s",
                                 "Others | 4 s"]


def test_outline_starts_at_h1() -> None:
    """`##` is how most writers title an issue; the HTML raises every level so there is an h1."""
    assert re.findall(r"<(h\d)>", to_html("## Title\n\n### Part\n\n#### Detail\n")) == ["h1", "h2", "h3"]
    assert re.findall(r"<(h\d)>", to_html("# Title\n\n## Part\n")) == ["h1", "h2"]
    assert to_text("## Title\n\n### Part\n") == "Title\n=====\n\nPart\n----\n"


def test_tables_scroll_by_themselves_and_numbers_in_cells_do_not_break() -> None:
    page = to_html("| Month | Size |\n| --- | --- |\n| 2024-02 | 1920x1080 & more |\n\nOn 2024-02 & after.\n")
    assert page.startswith('<div class="table-scroll"><table>') and "</table>\n</div>" in page
    assert '<td><span style="white-space:nowrap">2024-02</span></td>' in page
    assert '<span style="white-space:nowrap">1920x1080</span> &amp; more' in page
    assert "<p>On 2024-02 &amp; after.</p>" in page  # outside tables, text is as it was
