"""Markdown to HTML (for the email body) and to readable plain text (for the text part).

Both come from one markdown-it token stream, so the two parts never disagree
about what the issue says. CommonMark plus tables, strikethrough and autolinks.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.rules_core import StateCore
from markdown_it.token import Token

TEXT_WIDTH = 72


def _https_for_bare_domains(state: StateCore) -> None:
    """A bare ``www.example.com`` becomes a link; make it https, not markdown-it's http."""
    for block in state.tokens:
        children = block.children or []
        for tok, label in zip(children, children[1:], strict=False):
            href = str(tok.attrs.get("href", ""))
            if (tok.type == "link_open" and tok.markup == "linkify" and href.startswith("http://")
                    and not label.content.lower().startswith("http://")):
                tok.attrs["href"] = "https://" + href.removeprefix("http://")


def _parser() -> MarkdownIt:
    """CommonMark plus tables, strikethrough and autolinks (bare URLs become links)."""
    md = MarkdownIt("commonmark", {"linkify": True, "typographer": False}).enable(
        ["table", "strikethrough", "linkify"]
    )
    md.core.ruler.after("linkify", "https_for_bare_domains", _https_for_bare_domains)
    md.core.ruler.push("cell_text", _mark_cell_text)
    md.add_render_rule("table_open", _table_open)
    md.add_render_rule("table_close", _table_close)
    md.add_render_rule("text", _text)
    return md


_JOINED = re.compile(r"\S*\d[-‐/.:x×]\S*|\S*[-‐/][^\s]*\d\S*")  # 2024-02, 1920x1080, 10:30, 1/2


def _mark_cell_text(state: StateCore) -> None:
    """Text in a table cell is marked, so that numbers like 2024-02 are kept on one line."""
    in_cell = False
    for block in state.tokens:
        if block.type in ("td_open", "th_open"):
            in_cell = True
        elif block.type in ("td_close", "th_close"):
            in_cell = False
        elif in_cell and block.type == "inline":
            for child in block.children or []:
                if child.type == "text":
                    child.meta["cell"] = True


def _text(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    """Escaped text; in a table cell, a number with a hyphen, slash or x in it cannot break
    (Chromium breaks "2024-02" after the hyphen when a column is narrow)."""
    content = escapeHtml(tokens[idx].content)
    if not tokens[idx].meta.get("cell"):
        return content
    return _JOINED.sub(lambda m: f'<span style="white-space:nowrap">{m.group(0)}</span>', content)


def _table_open(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    """A table sits in its own scroller: its words stay whole, and a table wider than a phone
    scrolls by itself instead of widening the email or breaking "1920x1080" into columns of digits."""
    return '<div class="table-scroll">' + str(self.renderToken(tokens, idx, options, env))


def _table_close(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    return str(self.renderToken(tokens, idx, options, env)) + "</div>"


_MD = _parser()


def _outline_from_h1(tokens: list[Token]) -> None:
    """A body without an h1 (``##`` is the usual title, ``#`` looks too big) has every
    heading raised one level, so the email's outline starts at h1 as screen readers expect."""
    headings = [tok for tok in tokens if tok.type in ("heading_open", "heading_close")]
    if any(tok.tag == "h1" for tok in headings):
        return
    for tok in headings:
        tok.tag = f"h{int(tok.tag[1]) - 1}"


def to_html(source: str | list[Token]) -> str:
    """The body as HTML fragments, ready to sit inside an <mj-text>. Given tokens (``parse``),
    it renders those (raising their headings: make the text first) instead of parsing again."""
    tokens = _MD.parse(source) if isinstance(source, str) else source
    _outline_from_h1(tokens)
    return str(_MD.renderer.render(tokens, _MD.options, {}))


def parse(source: str) -> list[Token]:
    return _MD.parse(source)


def _inline_text(children: Sequence[Token] | None) -> str:
    """Inline tokens as text; links become ``text (url)`` unless the text is the url."""
    out: list[str] = []
    link_stack: list[tuple[str, int]] = []
    for tok in children or ():
        kind = tok.type
        if kind == "text" or kind == "code_inline":
            out.append(tok.content)
        elif kind == "softbreak":
            out.append(" ")
        elif kind == "hardbreak":
            out.append("\n")
        elif kind == "image":
            alt = tok.content or str(tok.attrs.get("alt", ""))
            out.append(f"[{alt}]" if alt else "")
        elif kind in ("strong_open", "strong_close"):
            out.append("*")
        elif kind in ("em_open", "em_close"):
            out.append("_")
        elif kind == "link_open":
            link_stack.append((str(tok.attrs.get("href", "")), len(out)))
        elif kind == "link_close" and link_stack:
            href, start = link_stack.pop()
            label = "".join(out[start:]).strip()
            target = href.removeprefix("mailto:")
            if label and target and label not in (href, target):
                out.append(f" ({href.removeprefix('mailto:')})")
            elif not label:
                out.append(target)
    return "".join(out)


def _wrap(text: str, indent: str = "", first: str | None = None) -> str:
    lines = []
    for i, para_line in enumerate(text.split("\n")):
        lines.append(
            textwrap.fill(
                para_line,
                width=TEXT_WIDTH,
                initial_indent=(first if first is not None and i == 0 else indent),
                subsequent_indent=indent,
                break_long_words=False,
                break_on_hyphens=False,
            )
        )
    return "\n".join(lines)


def to_text(source: str | list[Token]) -> str:
    """The body as plain text a person can read in any mail client (from tokens, if given)."""
    blocks: list[str] = []
    lists: list[list[int]] = []  # stack of [ordered?, next number]
    quote_depth = 0
    item_prefix: str | None = None
    heading = 0
    row: list[str] | None = None
    table: list[list[str]] = []
    for tok in parse(source) if isinstance(source, str) else source:
        kind = tok.type
        if kind in ("bullet_list_open", "ordered_list_open"):
            start = int(tok.attrs.get("start", 1) or 1)
            lists.append([1 if kind == "ordered_list_open" else 0, start])
        elif kind in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
        elif kind == "list_item_open":
            ordered, number = lists[-1]
            item_prefix = f"{number}. " if ordered else "- "
            lists[-1][1] += 1
        elif kind == "blockquote_open":
            quote_depth += 1
        elif kind == "blockquote_close":
            quote_depth -= 1
        elif kind == "heading_open":
            heading = int(tok.tag[1])
        elif kind == "hr":
            blocks.append("-" * 24)
        elif kind in ("fence", "code_block"):
            blocks.append(textwrap.indent(tok.content.rstrip("\n"), "    "))
        elif kind == "table_open":
            table = []
        elif kind == "table_close":
            blocks.append(_text_table(table))
        elif kind == "tr_open":
            row = []
        elif kind == "tr_close" and row is not None:
            table.append(row)
            row = None
        elif kind == "inline" and row is not None:
            row.append(_inline_text(tok.children).strip())
        elif kind == "inline":
            text = _inline_text(tok.children).strip()
            if heading:
                rule = "=" if heading <= 2 else "-"
                blocks.append(f"{text}\n{rule * min(len(text), TEXT_WIDTH)}")
                heading = 0
                continue
            indent = "   " * max(len(lists) - 1, 0)
            if item_prefix is not None:
                body = _wrap(text, indent + " " * len(item_prefix), indent + item_prefix)
                if blocks and _is_item(blocks[-1]):
                    blocks[-1] += "\n" + body  # items of one list sit together
                else:
                    blocks.append(body)
                item_prefix = None
            elif lists:
                blocks[-1] += "\n" + _wrap(text, indent + "   ")
            else:
                blocks.append(_wrap(text))
            if quote_depth:
                blocks[-1] = textwrap.indent(blocks[-1], "> " * quote_depth)
    return "\n\n".join(b for b in blocks if b.strip()) + "\n"


def _text_table(rows: list[list[str]]) -> str:
    """Columns padded to line up, a rule under the header row."""
    widths = [max(len(row[i]) if i < len(row) else 0 for row in rows) for i in range(max(map(len, rows)))]

    def line(cells: list[str]) -> str:
        return " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=False)).rstrip()

    rule = "-+-".join("-" * width for width in widths)
    return "\n".join([line(rows[0]), rule, *(line(row) for row in rows[1:])])


def _is_item(block: str) -> bool:
    last = block.rsplit("\n", 1)[-1].lstrip()
    return last.startswith("- ") or (last.split(". ", 1)[0].isdigit() and ". " in last)
