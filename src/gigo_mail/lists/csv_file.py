"""Reading a subscriber CSV file: decoding, delimiter, physical line numbers, and the
compact set that catches duplicates. ``subscribers`` turns these rows into recipients."""

from __future__ import annotations

import codecs
import csv
import hashlib
import os
import re
from array import array
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from gigo_mail.errors import SubscriberListError
from gigo_mail.text import one_line

DELIMITERS = (",", ";", "\t")
_BARE_CR = re.compile(r"(?<=\r)(?!\n)(?=.)", re.DOTALL)
_LOOKS_LIKE_ADDRESS = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+")


def clean_text(value: str) -> str:
    """Replace control characters (CR, LF, tab, NUL, ...) with a space, so that a
    value can never break out of a mail header; collapse the runs this leaves."""
    return one_line(value).strip()


class DigestSet:
    """A set of 64-bit digests in one flat array (open addressing, linear probing).

    12 bytes per slot, at most half full: about 24 MB for a million addresses
    (36 MB at the peak of the last doubling), where a Python set of 8-byte digests
    takes 78 MB. Beside each digest it keeps the line where it was first seen, to
    tell the user which row a duplicate repeats.
    """

    __slots__ = ("_slots", "_lines", "_mask", "_count")

    def __init__(self, capacity: int = 1 << 12) -> None:
        size = 1 << max(4, (capacity - 1).bit_length())
        self._slots = array("Q", [0]) * size
        self._lines = array("I", [0]) * size
        self._mask = size - 1
        self._count = 0

    def __len__(self) -> int:
        return self._count

    @staticmethod
    def digest(key: str) -> int:
        value = int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "little")
        return value or 1  # 0 marks an empty slot

    def __contains__(self, key: str) -> bool:
        value = self.digest(key)
        slots, mask = self._slots, self._mask
        index = value & mask
        while (found := slots[index]) != 0:
            if found == value:
                return True
            index = (index + 1) & mask
        return False

    def add(self, key: str, line: int) -> int:
        """Add ``key``; return 0 if it is new, else the line where it was first added."""
        value = self.digest(key)
        slots, mask = self._slots, self._mask
        index = value & mask
        while True:
            found = slots[index]
            if found == 0:
                break
            if found == value:
                return self._lines[index] or 1
            index = (index + 1) & mask
        slots[index] = value
        self._lines[index] = line
        self._count += 1
        if self._count * 2 > mask:
            self._grow()
        return 0

    def _grow(self) -> None:
        old_slots, old_lines = self._slots, self._lines
        size = (self._mask + 1) * 2
        self._slots = slots = array("Q", [0]) * size
        self._lines = lines = array("I", [0]) * size
        self._mask = mask = size - 1
        for value, line in zip(old_slots, old_lines, strict=True):
            if value:
                index = value & mask
                while slots[index]:
                    index = (index + 1) & mask
                slots[index] = value
                lines[index] = line


def decoded_lines(raw: IO[bytes], path: Path) -> Iterator[str]:
    """Lines of a UTF-8 file (BOM dropped), decoded one by one so that an error
    names the physical line where the file stops being UTF-8."""
    for number, chunk in enumerate(raw, start=1):
        if number == 1:
            if chunk.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                raise SubscriberListError(
                    f"{path.name} is UTF-16 (Excel's 'Unicode Text'); re-save it as 'CSV UTF-8'")
            if chunk.startswith(codecs.BOM_UTF8):
                chunk = chunk[len(codecs.BOM_UTF8):]
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError:
            raise SubscriberListError(
                f"{path.name}:{number}: the file is not UTF-8; re-save it as UTF-8 "
                "(in Excel: 'CSV UTF-8 (comma delimited)')") from None
        # bare CR line endings (old Mac): one line per CR, as an editor shows it
        if text.find("\r", 0, len(text) - 2) >= 0:
            yield from _BARE_CR.split(text)
        else:
            yield text


def sniff_delimiter(header_line: str) -> str:
    """The delimiter used most in the header line (outside quotes); ',' on a tie."""
    outside = re.sub(r'"[^"]*"', "", header_line)
    counts = {d: outside.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


class CsvTable:
    """An open CSV file positioned after its header row (``columns``: its names, lower-cased).

    Which column holds the address is the list format's business (``list_formats``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._raw = path.open("rb")
        except FileNotFoundError:
            raise SubscriberListError(
                f"{path}: no such file; check the path of the subscriber list") from None
        except IsADirectoryError:
            raise SubscriberListError(f"{path} is a folder; give the path of a CSV file") from None
        except OSError as exc:
            raise SubscriberListError(f"{path}: cannot read the subscriber list: {exc.strerror}") from None
        try:
            self._open()
        except BaseException:
            self._raw.close()
            raise

    def _open(self) -> None:
        lines = decoded_lines(self._raw, self.path)
        self.header_line = 0
        first = ""
        for first in lines:
            self.header_line += 1
            if first.strip():
                break
        else:
            raise SubscriberListError(
                f"{self.path.name} is empty; it needs a header row with an 'email' column")
        self.delimiter = sniff_delimiter(first)
        self._lines = lines
        self.reader = csv.reader(_prepend(first, lines), delimiter=self.delimiter)
        try:
            header = next(self.reader)
        except csv.Error as exc:
            raise SubscriberListError(
                f"{self.path.name}:{self.header_line}: unreadable header row: {exc}") from None
        self.columns = [clean_text(name).lower() for name in header]
        self.lines_before = self.header_line - 1 + self.reader.line_num  # physical lines consumed

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """(first physical line, cells) for every non-blank row."""
        reader, offset = self.reader, self.header_line - 1
        consumed = self.lines_before
        try:
            while True:
                try:
                    cells = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    hint = ("the file has bare CR line endings (old Mac format); re-save it with "
                            "Windows or Unix line endings") if "new-line" in str(exc) else (
                            "check for an unbalanced quote")
                    raise SubscriberListError(
                        f"{self.path.name}:{consumed + 1}: cannot parse this row: {exc}; {hint}") from None
                line = consumed + 1
                consumed = offset + reader.line_num
                if consumed > line:
                    self._check_spanning_row(line, consumed, cells)
                if cells and (cells[0].strip() or any(cell.strip() for cell in cells)):
                    yield line, cells
        finally:
            self.close()

    def _check_spanning_row(self, first: int, last: int, cells: list[str]) -> None:
        """A row over several lines is fine (a quoted address block), unless an unbalanced
        quote has swallowed the rows below it: refuse rather than silently drop recipients."""
        for cell in cells:
            if "\n" not in cell and "\r" not in cell:
                continue
            inner = cell.splitlines()[1:]
            if cell.endswith(("\n", "\r")) or any(
                    self.delimiter in part and _LOOKS_LIKE_ADDRESS.search(part) for part in inner):
                raise SubscriberListError(
                    f"{self.path.name}:{first}: a quoted field runs on to line {last} and swallows the "
                    "rows in between; check this row for an unbalanced '\"'")

    @property
    def size(self) -> int:
        """The file's size in bytes (for a progress bar)."""
        return os.fstat(self._raw.fileno()).st_size

    def position(self) -> int:
        """How far the reading has got, in bytes."""
        return self._raw.tell()

    def close(self) -> None:
        self._raw.close()


def _prepend(first: str, rest: Iterable[str]) -> Iterator[str]:
    yield first
    yield from rest
