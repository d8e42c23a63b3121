"""Segments: ``--tag T`` (any of) and ``--where EXPR``, a small expression over fields.

The grammar (no Python ``eval``: a tokenizer and a recursive-descent parser)::

    expr       := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | atom
    atom       := "(" expr ")" | field ("==" | "!=") STRING
                | field ["not"] "in" "(" STRING ("," STRING)* [","] ")"
                | field                        # set: not empty, and not false/no/0
    field      := a column name (letters, digits, _ . -), as in the list (normalized)
    STRING     := '...' or "..." (a backslash escapes the next character)

Comparisons ignore case and surrounding spaces: ``country == 'no'`` matches ``NO``.
A field the row does not have is empty. ``tags`` is the row's tags, joined with ", ";
use ``--tag`` to select by one tag.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from gigo_mail.errors import SegmentError
from gigo_mail.lists.formats import FALSE_WORDS, normalize_column

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<op>==|!=|\(|\)|,)
    | (?P<word>[^\s'"(),=!]+)
    | (?P<bad>\S)
    )""", re.VERBOSE)
KEYWORDS = frozenset({"and", "or", "not", "in"})

Test = Callable[[Mapping[str, str]], bool]


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "string", "op", "word", "keyword", "end"
    text: str
    at: int  # 1-based column in the expression, for messages


def tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(source):
        match = _TOKEN.match(source, position)
        if match is None or match.end() == position:  # only trailing spaces are left
            break
        kind = match.lastgroup or "bad"
        text = match.group(kind)
        at = match.start(kind) + 1
        if kind == "bad":
            raise SegmentError(f"--where: unexpected '{text}' at column {at} of \"{source}\"")
        if kind == "string":
            text = re.sub(r"\\(.)", r"\1", text[1:-1])
        elif kind == "word" and text.lower() in KEYWORDS:
            kind, text = "keyword", text.lower()
        tokens.append(Token(kind, text, at))
        position = match.end()
    tokens.append(Token("end", "", len(source) + 1))
    return tokens


def _norm(value: str) -> str:
    return value.strip().casefold()


class _Parser:
    """Recursive descent over the tokens; each rule returns a test on a row's fields."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = tokenize(source)
        self.index = 0
        self.fields: set[str] = set()

    def fail(self, token: Token, wanted: str) -> SegmentError:
        seen = "the end" if token.kind == "end" else f"'{token.text}'"
        return SegmentError(f"--where: expected {wanted} at column {token.at} of \"{self.source}\", "
                            f"found {seen}; e.g. --where \"plan == 'paid' and country in ('NO','SE')\"")

    def peek(self) -> Token:
        return self.tokens[self.index]

    def take(self, kind: str, text: str | None = None) -> Token | None:
        token = self.peek()
        if token.kind == kind and (text is None or token.text == text):
            self.index += 1
            return token
        return None

    def parse(self) -> Test:
        test = self.expr()
        if self.peek().kind != "end":
            raise self.fail(self.peek(), "'and', 'or' or the end")
        return test

    def expr(self) -> Test:
        tests = [self.and_expr()]
        while self.take("keyword", "or"):
            tests.append(self.and_expr())
        return tests[0] if len(tests) == 1 else (lambda row: any(t(row) for t in tests))

    def and_expr(self) -> Test:
        tests = [self.not_expr()]
        while self.take("keyword", "and"):
            tests.append(self.not_expr())
        return tests[0] if len(tests) == 1 else (lambda row: all(t(row) for t in tests))

    def not_expr(self) -> Test:
        if self.take("keyword", "not"):
            inner = self.not_expr()
            return lambda row: not inner(row)
        return self.atom()

    def atom(self) -> Test:
        if self.take("op", "("):
            inner = self.expr()
            if not self.take("op", ")"):
                raise self.fail(self.peek(), "')'")
            return inner
        token = self.take("word")
        if token is None:
            raise self.fail(self.peek(), "a field name, 'not' or '('")
        name = normalize_column(token.text)
        self.fields.add(name)
        for op in ("==", "!="):
            if self.take("op", op):
                value = self.string()
                equal = op == "=="
                return lambda row: (_norm(row.get(name, "")) == value) == equal
        negate = bool(self.take("keyword", "not"))
        if negate and (self.peek().kind, self.peek().text) != ("keyword", "in"):
            raise self.fail(self.peek(), "'in' after 'not'")
        if self.take("keyword", "in"):
            values = frozenset(self.string_list())
            return lambda row: (_norm(row.get(name, "")) in values) != negate
        return lambda row: _norm(row.get(name, "")) not in FALSE_WORDS | {""}

    def string(self) -> str:
        token = self.take("string")
        if token is None:
            raise self.fail(self.peek(), "a quoted value like 'paid'")
        return _norm(token.text)

    def string_list(self) -> list[str]:
        if not self.take("op", "("):
            raise self.fail(self.peek(), "'(' and a list of quoted values")
        values = [self.string()]
        while self.take("op", ","):
            if self.peek().kind == "op" and self.peek().text == ")":
                break
            values.append(self.string())
        if not self.take("op", ")"):
            raise self.fail(self.peek(), "',' or ')'")
        return values


@dataclass(frozen=True)
class Segment:
    """Which rows of a list a run is for: any of ``tags``, and ``where`` (both when given)."""

    tags: tuple[str, ...] = ()
    where: str = ""
    _test: Test | None = None
    fields: frozenset[str] = frozenset()

    @classmethod
    def build(cls, tags: Iterable[str] = (), where: str | None = None) -> Segment | None:
        """None when no segment is asked for; SegmentError for an expression that does not parse."""
        wanted = tuple(dict.fromkeys(t.strip() for t in tags if t.strip()))
        text = (where or "").strip()
        if not wanted and not text:
            return None
        if not text:
            return cls(wanted)
        parser = _Parser(text)
        test = parser.parse()
        return cls(wanted, text, test, frozenset(parser.fields))

    def matches(self, fields: Mapping[str, str], tags: Sequence[str]) -> bool:
        if self.tags:
            have = {_norm(t) for t in tags}
            if not any(_norm(t) in have for t in self.tags):
                return False
        return self._test is None or self._test(fields)

    def describe(self) -> str:
        """As the journal records it and ``status`` shows it: ``tag: a|b; where: plan == 'paid'``."""
        parts = []
        if self.tags:
            parts.append("tag: " + " | ".join(self.tags))
        if self.where:
            parts.append(f"where: {self.where}")
        return "; ".join(parts)

    def check_fields(self, known: Iterable[str], open_ended: bool, where: str, *,
                     tagged: bool = True) -> None:
        """A segment on a column the list lacks is an error naming the columns it has: a --where
        field with no column (a typo, unless rows carry JSON keys), or --tag on a list without a
        tag column (it would match nobody)."""
        columns = ", ".join(sorted(known))
        if self.tags and not tagged:
            raise SegmentError(f"--tag {self.tags[0]!r}: {where} has no tag column, so no row has a tag "
                               f"(columns: {columns}); use --where on one of its columns")
        missing = sorted(self.fields - set(known))
        if missing and not open_ended:
            raise SegmentError(f"--where names '{missing[0]}', but {where} has no such column "
                               f"(columns: {columns})")
