"""The duplicate table past its memory bound: the same answers from the scratch file as from memory,
a private file that is gone however the pass ends, and digests keyed per table."""

from __future__ import annotations

import hashlib
import random
import stat
import tempfile
from pathlib import Path

import pytest

from gigo_mail.errors import SubscriberListError
from gigo_mail.lists import reader
from gigo_mail.lists.digests import DigestSet
from gigo_mail.lists.reader import Subscriber, ValidatedAddresses, check_list, read_subscribers
from support import write_list as write


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary folder of the test's own, so that only this test's scratch files are in it."""
    folder = tmp_path / "scratch"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


# the default filter, and one so full that every lookup asks SQLite
@pytest.mark.parametrize("filter_bits", [1 << 24, 1 << 10])
def test_spilled_table_answers_as_the_one_in_memory(scratch: Path, filter_bits: int) -> None:
    rng = random.Random(filter_bits)
    keys = [f"reader{rng.randrange(120_000)}@example.com" for _ in range(250_000)]
    in_memory = DigestSet(memory=1 << 30)
    spilled = DigestSet(memory=1_000, filter_bits=filter_bits)
    first: dict[str, int] = {}
    for line, key in enumerate(keys, start=2):
        if line % 3 == 0:
            probe = f"reader{rng.randrange(240_000)}@example.com"  # half of them never added
            assert (probe in spilled) == (probe in in_memory) == (probe in first)
        expected = first.setdefault(key, line)
        assert spilled.add(key, line) == in_memory.add(key, line) == (0 if expected == line else expected)
    assert spilled.spilled and not in_memory.spilled
    assert len(spilled) == len(in_memory) == len(first)
    assert len(first) < len(keys)  # there were duplicates, each told with its first line
    spilled.close()
    in_memory.close()


def test_scratch_file_is_private_and_removed_on_close(scratch: Path) -> None:
    table = DigestSet(memory=64)
    for i in range(200):
        table.add(f"k{i}", i + 2)
    assert table.spilled
    folder = Path(table.folder)
    assert folder.parent == scratch
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = list(folder.iterdir())
    assert [f.name for f in files] == ["seen.sqlite"]  # no journal beside it
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert table.add("k3", 999) == 5  # a spilled key, with its first line
    table.close()
    assert not folder.exists() and not list(scratch.iterdir())
    assert len(table) == 0 and "k3" not in table


def test_scratch_file_is_removed_when_the_pass_ends_by_an_exception(scratch: Path) -> None:
    with pytest.raises(RuntimeError, match="stop"), DigestSet(memory=64) as table:
        for i in range(200):
            table.add(f"k{i}", i + 2)
        assert list(scratch.iterdir())
        raise RuntimeError("stop")
    assert not list(scratch.iterdir())


def test_scratch_file_is_removed_when_a_forgotten_table_is_collected(scratch: Path) -> None:
    table = DigestSet(memory=64)
    for i in range(200):
        table.add(f"k{i}", i + 2)
    folder = Path(table.folder)
    assert folder.exists()
    del table
    assert not folder.exists()


def test_a_list_pass_removes_its_scratch_file_when_a_bad_row_stops_it(
        scratch: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader, "DigestSet", lambda: DigestSet(memory=64))
    rows = [f"u{i}@example.com,U {i}" for i in range(500)]
    path = write(tmp_path, "email,name\n" + "\n".join(rows) + '\nann@example.com,"Ann\nbob@example.com,Bob\n')
    stream = read_subscribers(path)
    seen = [next(stream) for _ in range(400)]
    assert all(isinstance(row, Subscriber) for row in seen)
    folders = list(scratch.iterdir())
    assert len(folders) == 1 and stat.S_IMODE(folders[0].stat().st_mode) == 0o700  # spilled mid-pass
    with pytest.raises(SubscriberListError, match="runs on to line"):
        list(stream)
    assert not list(scratch.iterdir())


def test_a_spilling_list_pass_reports_duplicates_with_their_first_line(
        scratch: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader, "DigestSet", lambda: DigestSet(memory=64))
    lines = ["email"] + [f"u{i}@example.com" for i in range(1_000)] + ["U5@EXAMPLE.COM", "u999@example.com"]
    report = check_list(write(tmp_path, "\n".join(lines) + "\n"))
    assert report.valid == 1_000 and report.skipped_counts["duplicate"] == 2
    assert [r.reason for r in report.skipped] == [
        "'U5@EXAMPLE.COM' is a duplicate of line 7", "'u999@example.com' is a duplicate of line 1001"]
    assert not list(scratch.iterdir())


def test_no_room_for_the_scratch_file_is_one_clear_error(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    table = DigestSet(memory=64)
    with pytest.raises(SubscriberListError, match=r"scratch file under .*missing: .*set TMPDIR"):
        for i in range(200):
            table.add(f"k{i}", i + 2)
    assert len(table) == 0


def test_digests_are_keyed_per_table() -> None:
    one, two = DigestSet(), DigestSet()
    address = "ann@example.com"
    plain = int.from_bytes(hashlib.blake2b(address.encode(), digest_size=8).digest(), "little", signed=True)
    assert one.digest(address) == one.digest(address)
    assert len({one.digest(address), two.digest(address), plain}) == 3


def test_validated_addresses_stay_in_memory_past_their_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ValidatedAddresses, "LIMIT", 10)
    validated = ValidatedAddresses()
    for i in range(30):
        expected = (f"reader{i}@example.com", f"Reader{i}@example.com", False)
        assert validated.validate(f"Reader{i}@Example.COM") == expected
    assert len(validated) == 10
    assert validated.validate("Reader3@Example.COM")[1] == "Reader3@example.com"  # from the table
    assert validated.validate("Reader25@Example.COM")[1] == "Reader25@example.com"  # validated again
