"""The duplicate table of a list pass: which addresses were seen, and on which line first.

A pass over a list of any length must keep its memory flat, and still tell, row by row and in
order, whether an address repeats an earlier row (and which). So the table holds keyed 64-bit
digests, never addresses: up to ``memory`` of them in a flat in-memory hash table, and beyond
that in a scratch SQLite file (a private 0700 folder, the file 0600, removed on close, at exit,
and when the pass ends by an exception). The key is random per table (``os.urandom``), so
neither the digests in memory nor the file left by a killed process can be matched against a
dictionary of likely addresses.

Why it stays cheap past the spill: the in-memory table keeps taking new digests, and when it is
full they go to the file in one batch (one transaction; the memory table's slots are ordered by
the digests' top bits, so the batch arrives nearly in the file's key order, a page at a time).
A fixed bit filter (a Bloom filter of ``filter_bits``) remembers every digest sent to the file, so a
new address, the common case, is known new without reading the file; only a filter hit (a
duplicate, or a false positive: about 1 in 80 at a million digests with the default 2 MB) asks
SQLite. Beyond a few million digests the filter fills and more lookups reach the file; the
answers stay exact, only slower.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import tempfile
import weakref
from array import array
from collections.abc import Iterator
from types import TracebackType

from gigo_mail.errors import SubscriberListError

MEMORY_DIGESTS = 1 << 17  # digests kept in memory: 2^18 slots of 12 bytes, 3 MB
FILTER_BITS = 1 << 24  # the filter over the spilled digests: 2 MB
CACHE_KIB = 1024  # SQLite's page cache for the spilled table (the batches come in key order)


class DigestSet:
    """Addresses seen in one pass (as keyed digests), with the line each was first seen on.

    ``add(key, line)`` is 0 for a new key, else the line where it was first added; ``key in
    table`` asks without adding. In memory up to ``memory`` digests (12 bytes a slot, at most
    half full), then also in a scratch SQLite file (see the module docs). ``close()`` removes
    the file; a table that never spilled has none.
    """

    __slots__ = ("_hash", "_slots", "_lines", "_mask", "_shift", "_half", "_count", "_memory", "_spilled",
                 "_bits", "_bits_mask", "_db", "_folder", "_cleanup", "__weakref__")

    def __init__(self, capacity: int = 1 << 12, *, memory: int = MEMORY_DIGESTS,
                 filter_bits: int = FILTER_BITS) -> None:
        self._hash = hashlib.blake2b(digest_size=8, key=os.urandom(16))  # copied for each key: keyed once
        self._memory = max(8, memory)
        size = 1 << max(4, (min(capacity, self._memory * 2) - 1).bit_length())
        self._slots = array("q", [0]) * size
        self._lines = array("I", [0]) * size
        self._size(size)
        self._count = 0  # in memory
        self._spilled = 0  # in the file
        self._bits = bytearray()
        self._bits_mask = (1 << max(6, (filter_bits - 1).bit_length())) - 1
        self._db: sqlite3.Connection | None = None
        self._folder = ""
        self._cleanup: weakref.finalize | None = None

    def __len__(self) -> int:
        return self._count + self._spilled

    @property
    def spilled(self) -> bool:
        """Whether some digests are in the scratch file (which then exists until close)."""
        return self._db is not None

    @property
    def folder(self) -> str:
        """The scratch file's private folder ("" before the first spill and after close)."""
        return self._folder

    def digest(self, key: str) -> int:
        """The key's signed 64-bit digest under this table's own random key (never 0: 0 is an empty slot)."""
        hashed = self._hash.copy()
        hashed.update(key.encode("utf-8"))
        return int.from_bytes(hashed.digest(), "little", signed=True) or 1

    def __contains__(self, key: str) -> bool:
        value = self.digest(key)
        slots, mask = self._slots, self._mask
        index = (value >> self._shift) + self._half
        while (found := slots[index]) != 0:
            if found == value:
                return True
            index = (index + 1) & mask
        return bool(self._spilled) and self._in_file(value) != 0

    def add(self, key: str, line: int) -> int:
        """Add ``key``; return 0 if it is new, else the line where it was first added."""
        value = self.digest(key)
        slots, mask = self._slots, self._mask
        index = (value >> self._shift) + self._half
        while True:
            found = slots[index]
            if found == 0:
                break
            if found == value:
                return self._lines[index] or 1
            index = (index + 1) & mask
        if self._spilled:  # the filter, inline: most keys stop at its first bit
            bits, bmask = self._bits, self._bits_mask
            bit = value & bmask
            if bits[bit >> 3] & (1 << (bit & 7)) and (first := self._in_file(value)):
                return first
        slots[index] = value
        self._lines[index] = line
        self._count += 1
        if self._count * 2 > mask:
            if self._count >= self._memory:
                self._spill()
            else:
                self._grow()
        return 0

    def _in_file(self, value: int) -> int:
        """The first line of a spilled digest, 0 if it is not in the file (the filter answers most)."""
        bits, bmask = self._bits, self._bits_mask
        for shift in (0, 32):
            bit = (value >> shift) & bmask
            if not bits[bit >> 3] & (1 << (bit & 7)):
                return 0
        assert self._db is not None
        row = self._db.execute("SELECT line FROM seen WHERE d = ?", (value,)).fetchone()
        return (row[0] or 1) if row is not None else 0

    def _size(self, size: int) -> None:
        """Slots are indexed by a digest's top bits, so that their order is (nearly) the digests'
        order: a spill writes them in the order of the file's B-tree without sorting."""
        self._mask = size - 1
        self._shift = 64 - (size.bit_length() - 1)
        self._half = size >> 1

    def _grow(self) -> None:
        old_slots, old_lines = self._slots, self._lines
        size = (self._mask + 1) * 2
        self._slots = slots = array("q", [0]) * size
        self._lines = lines = array("I", [0]) * size
        self._size(size)
        mask, shift, half = self._mask, self._shift, self._half
        for value, line in zip(old_slots, old_lines, strict=True):
            if value:
                index = (value >> shift) + half
                while slots[index]:
                    index = (index + 1) & mask
                slots[index] = value
                lines[index] = line

    def _spill(self) -> None:
        """Move the in-memory digests to the file in one batch (in slot order, which is nearly the
        B-tree's), note them in the filter, and empty the memory table."""
        try:
            if self._db is None:
                self._open_file()
            assert self._db is not None
            with self._db:
                self._db.executemany("INSERT INTO seen (d, line) VALUES (?, ?)", self._batch())
        except (OSError, sqlite3.Error) as exc:
            self.close()
            raise SubscriberListError(
                f"cannot keep the list's duplicate table in a scratch file under {tempfile.gettempdir()}: "
                f"{exc}; free some space there, or set TMPDIR to a folder with room") from None
        self._spilled += self._count
        size = self._mask + 1
        self._slots, self._lines = array("q"), array("I")  # the old table goes before the new comes
        self._slots = array("q", [0]) * size
        self._lines = array("I", [0]) * size
        self._count = 0

    def _batch(self) -> Iterator[tuple[int, int]]:
        bits, bmask = self._bits, self._bits_mask
        for value, line in zip(self._slots, self._lines, strict=True):
            if value:
                bit = value & bmask
                bits[bit >> 3] |= 1 << (bit & 7)
                bit = (value >> 32) & bmask
                bits[bit >> 3] |= 1 << (bit & 7)
                yield value, line

    def _open_file(self) -> None:
        folder = tempfile.mkdtemp(prefix="gigo-mail-dedupe-")  # 0700
        try:
            path = os.path.join(folder, "seen.sqlite")
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            db = sqlite3.connect(path, isolation_level="DEFERRED", check_same_thread=False)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        self._folder = folder
        self._cleanup = weakref.finalize(self, _remove, db, folder)  # at close, collection or exit
        # scratch: nothing to recover after a crash, so no journal and no fsync
        db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        db.execute("PRAGMA journal_mode = OFF")
        db.execute("PRAGMA synchronous = OFF")
        db.execute("PRAGMA locking_mode = EXCLUSIVE")
        db.execute("PRAGMA temp_store = MEMORY")
        db.execute("CREATE TABLE seen (d INTEGER PRIMARY KEY, line INTEGER NOT NULL)")
        self._db = db
        self._bits = bytearray((self._bits_mask + 1) >> 3)

    def close(self) -> None:
        """Remove the scratch file and its folder; the table is empty afterwards."""
        if self._cleanup is not None:
            self._cleanup()
            self._cleanup = None
        self._db = None
        self._folder = ""
        self._bits = bytearray()
        self._spilled = 0
        self._slots = array("q", [0]) * 16
        self._lines = array("I", [0]) * 16
        self._size(16)
        self._count = 0

    def __enter__(self) -> DigestSet:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _remove(db: sqlite3.Connection, folder: str) -> None:
    try:
        db.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
