"""Reading a subscriber CSV file: decoding, delimiter and physical line numbers (the table
that catches duplicates is ``digests``). ``reader`` turns these rows into recipients."""

from __future__ import annotations

import codecs
import csv
import os
import re
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
