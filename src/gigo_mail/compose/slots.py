"""The per-recipient slot contract: how one compile serves every subscriber.

1. **Tokens.** While an issue is compiled (``render``), every per-subscriber value a
   template or the Markdown uses (``{{ subscriber.name }}``, ``{{ unsubscribe_url }}``)
   is a ``Placeholder``; it renders as a *slot token*, ``gigo:slot:3:``. Tokens are
   letters, digits and colons only, so Markdown, MJML and premailer (which URL-encodes
   ``{{ x }}`` inside ``href``) all leave them alone. A ``SlotTable`` numbers the slots
   of one compile; equal slots share one token.
2. **Values.** Per subscriber, ``values`` looks up each slot's raw value (a CSV column,
   the name, the address, the unsubscribe URL) and shapes it (its ``default`` and
   filters). ``SAMPLE_VALUES`` stand in for a subscriber in previews and test sends;
   ``public_values`` fill the public web page (publish) with defaults and a neutral word.
3. **Filling.** ``split`` cuts a compiled text at its tokens, once per issue. The
   mail that is sent (``message``) quoted-printable-encodes each literal stretch once
   and puts a recipient's encoded values between them; the subject and the previews
   use ``SlotTemplate``, a ``str.format`` pattern filled in one call. Values are
   HTML-escaped in the HTML part and left as they are in the text part.

No MJML, no premailer and no parsing happen per recipient.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from gigo_mail.errors import TemplateError

SLOT_PREFIX = "gigo:slot:"
SLOT_RE = re.compile(re.escape(SLOT_PREFIX) + r"(\d+):")
TRANSFORMS = ("upper", "lower", "title", "capitalize", "trim", "urlencode")
SAMPLE_VALUES = {"email": "ada@example.org", "name": "Ada Lovelace", "first_name": "Ada",
                 "last_name": "Lovelace"}
# On the public web page (publish), a value without a default(...) shows a neutral word,
# and the unsubscribe link leads nowhere: no subscriber is reading it.
PUBLIC_WORD = "reader"
PUBLIC_UNSUBSCRIBE_URL = "#"


@dataclass(frozen=True)
class Slot:
    """One per-recipient value: where it comes from and how to shape it."""

    path: tuple[str, ...]  # ("subscriber", "name") or ("unsubscribe_url",)
    transforms: tuple[str, ...] = ()
    default: str | None = None

    @property
    def label(self) -> str:
        return ".".join(self.path)


class SlotTable:
    """The slots one compile hands out; equal slots share one token."""

    def __init__(self) -> None:
        self.slots: list[Slot] = []
        self._index: dict[Slot, int] = {}

    def token(self, slot: Slot) -> str:
        index = self._index.get(slot)
        if index is None:
            index = self._index[slot] = len(self.slots)
            self.slots.append(slot)
        return f"{SLOT_PREFIX}{index}:"


class Placeholder:
    """Stands in for a per-recipient value while an issue is compiled."""

    __slots__ = ("_table", "_slot")

    def __init__(self, table: SlotTable, slot: Slot) -> None:
        self._table = table
        self._slot = slot

    @property
    def slot(self) -> Slot:
        return self._slot

    def derive(self, **changes: Any) -> Placeholder:
        values = {"path": self._slot.path, "transforms": self._slot.transforms,
                  "default": self._slot.default} | changes
        return Placeholder(self._table, Slot(**values))

    def __getattr__(self, name: str) -> Placeholder:
        if name.startswith("__"):
            raise AttributeError(name)
        return self.derive(path=(*self._slot.path, name.lower()))

    def __getitem__(self, name: str) -> Placeholder:
        return self.derive(path=(*self._slot.path, str(name).strip().lower()))

    def __str__(self) -> str:
        return self._table.token(self._slot)

    def __html__(self) -> str:
        return str(self)

    def __bool__(self) -> bool:
        raise TemplateError(
            f"'{self._slot.label}' differs per subscriber, so it cannot be tested with "
            f"{{% if %}}; use {{{{ {self._slot.label} | default('…') }}}} instead"
        )


def placeholders(table: SlotTable) -> dict[str, Placeholder]:
    """The per-recipient names every template can use."""
    return {
        "subscriber": Placeholder(table, Slot(("subscriber",))),
        "unsubscribe_url": Placeholder(table, Slot(("unsubscribe_url",))),
    }


def split(source: str) -> tuple[list[str], list[int]]:
    """A compiled text cut at its slot tokens: the literal stretches (one more than the
    slots) and the slot index between each pair of them."""
    pieces = SLOT_RE.split(source)
    return pieces[0::2], [int(i) for i in pieces[1::2]]


class SlotTemplate:
    """A text with slots, ready to be filled many times."""

    __slots__ = ("pattern", "slots_used", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        literals, indexes = split(source)
        pieces = [literals[0].replace("{", "{{").replace("}", "}}")]
        for index, literal in zip(indexes, literals[1:], strict=True):
            pieces += (f"{{{index}}}", literal.replace("{", "{{").replace("}", "}}"))
        self.pattern = "".join(pieces)
        self.slots_used = frozenset(indexes)

    def fill(self, values: Sequence[str]) -> str:
        """``values[i]`` replaces slot i; they must already be escaped for this text."""
        return self.pattern.format(*values)


def shape(slot: Slot, raw: str) -> str:
    """Apply a slot's default and transforms to a subscriber's raw value."""
    value = raw if raw else (slot.default or "")
    for name in slot.transforms:
        if name == "upper":
            value = value.upper()
        elif name == "lower":
            value = value.lower()
        elif name == "title":
            value = value.title()
        elif name == "capitalize":
            value = value.capitalize()
        elif name == "trim":
            value = value.strip()
        elif name == "urlencode":
            value = quote(value, safe="")
    return value


def lookup(slot: Slot, fields: Mapping[str, str], name: str, email: str, unsubscribe_url: str) -> str:
    """The raw value a slot names for one subscriber ('' when the CSV has no such column)."""
    path = slot.path
    if path[0] == "unsubscribe_url":
        return unsubscribe_url
    if len(path) == 1:  # {{ subscriber }} on its own
        return name or email
    column = path[1]
    if column == "email":
        return email
    if column == "name":
        return name
    return fields.get(column, "")


def values(slots: Iterable[Slot], fields: Mapping[str, str], name: str, email: str,
           unsubscribe_url: str) -> list[str]:
    """The raw (unescaped) value of every slot for one subscriber."""
    return [shape(slot, lookup(slot, fields, name, email, unsubscribe_url)) for slot in slots]


def sample_fields(columns: Iterable[str], fields: Mapping[str, str] | None = None) -> dict[str, str]:
    """Columns for a preview or a test send: ``fields`` first, then SAMPLE_VALUES, then
    ``[column]`` for any other column the issue reads."""
    return {**{column: f"[{column}]" for column in columns}, **SAMPLE_VALUES, **(fields or {})}


def public_values(slots: Iterable[Slot]) -> list[str]:
    """Every slot's value for a page anyone can read: its default(...), else PUBLIC_WORD.

    Nothing here comes from a subscriber list or a secret, so no address or token can
    reach the public site."""
    out = []
    for slot in slots:
        if slot.path[0] == "unsubscribe_url":
            raw = PUBLIC_UNSUBSCRIBE_URL
        else:
            raw = "" if slot.default is not None else PUBLIC_WORD
        out.append(shape(slot, raw))
    return out


def escape_html(values: Sequence[str]) -> list[str]:
    return [html.escape(v, quote=True) for v in values]
