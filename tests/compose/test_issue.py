"""Naming an issue: by its file, or by a key the journal has when the file is gone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gigo_mail.compose.issue import find_issue, list_issues, resolve_issue_key
from gigo_mail.errors import IssueError, IssueNotFound
from support import write_issue


def test_resolve_issue_key_prefers_the_file_then_the_journal(tmp_path: Path) -> None:
    write_issue(tmp_path, "012.md", "subject: Twelve", "Hello\n")
    assert resolve_issue_key(tmp_path, "12") == "012"
    assert resolve_issue_key(tmp_path, "issues/012.md", known=["011"]) == "012"
    # 011 was sent, then its file removed: the journal's key still names it
    assert resolve_issue_key(tmp_path, "11", known=["011"]) == "011"
    assert resolve_issue_key(tmp_path, " 011 ", known=iter(["011"])) == "011"
    with pytest.raises(IssueNotFound, match=r"no issue '11'.*issues that exist: 012"):
        resolve_issue_key(tmp_path, "11", known=["010"])


# -- the front matter, checked when the issue is read ---------------------------------------------

@pytest.mark.parametrize(("front", "expected"), [
    ("date: 2024-02-30", "011.md:3: front matter date '2024-02-30' is not a date — write it like 2024-02-20"),
    ("date: 2023-02-29 10:00:00", "011.md:3: front matter date '2023-02-29 10:00:00' is not a date"),
    ("date: next Tuesday", "011.md:3: front matter date 'next Tuesday' is not a date"),
    ("date: [2024, 2]", "011.md:3: front matter date [2024, 2] is not a date"),
    ("number: -3", "011.md:3: front matter number -3 is not a whole number"),
    ("number: eleven", "011.md:3: front matter number 'eleven' is not a whole number"),
    ("draft: maybe", "011.md:3: front matter draft 'maybe' is not true or false — write draft: true"),
    ("title: [a, b]", "011.md:3: front matter title is a list, not text"),
    ("preheader: {a: 1}", "011.md:3: front matter preheader is a table, not text"),
    ("hero: banner.png", "011.md:3: front matter hero needs src"),
    ("hero: {src: b.png, width: wide}", "011.md:3: front matter hero width 'wide' is not a size in pixels"),
    ("hero: {src: b.png, height: 0}", "011.md:3: front matter hero height 0 is not a size in pixels"),
    ("images: inline", "011.md:3: front matter images is 'inline' — use images: \"embed\" or images: \"link"),
    ("lang: Arabic please", "011.md:3: front matter lang 'Arabic please' is not a language tag"),
    ("template: 5", "011.md:3: front matter template is a number, not a string"),
    ("from: nobody", "011.md:3: front matter from 'nobody' is not an email address"),
])
@pytest.mark.parametrize("read", [lambda root: find_issue(root, "11"), list_issues])
def test_a_wrong_front_matter_value_names_the_file_and_line(tmp_path: Path, front: str, expected: str,
                                                            read: Callable[[Path], object]) -> None:
    write_issue(tmp_path, "011.md", f"subject: s\n{front}", "Hello\n")
    with pytest.raises(IssueError) as info:
        read(tmp_path)
    assert str(info.value).startswith(str(tmp_path / "issues" / expected.split(":")[0])), info.value
    assert expected in str(info.value)


def test_every_wrong_front_matter_value_at_once(tmp_path: Path) -> None:
    write_issue(tmp_path, "011.md", "number: x\nsubject: s\ndate: 2024-13-01\ndraft: perhaps", "Hello\n")
    with pytest.raises(IssueError) as info:
        find_issue(tmp_path, "11")
    lines = str(info.value).splitlines()
    assert [line.split(": front matter ")[0].rsplit(":", 1)[1] for line in lines] == ["2", "4", "5"]


@pytest.mark.parametrize("front", [
    "date: 2024-02-29", "date: 2024-02-20T09:00:00+01:00", "date: '2024-02-20'", "number: 12",
    "number: '012'", "draft: true", "draft: no", "hero: {src: b.png, width: 600, height: 300}",
    "lang: pt-BR", "images: link"])
def test_right_front_matter_values_pass(tmp_path: Path, front: str) -> None:
    write_issue(tmp_path, "011.md", f"subject: s\n{front}", "Hello\n")
    assert find_issue(tmp_path, "11").subject == "s"


def test_draft_reads_the_flag(tmp_path: Path) -> None:
    write_issue(tmp_path, "011.md", "subject: s\ndraft: true", "x\n")
    write_issue(tmp_path, "012.md", "subject: s\ndraft: false", "x\n")
    write_issue(tmp_path, "013.md", "subject: s", "x\n")
    assert [issue.draft for issue in list_issues(tmp_path)] == [True, False, False]
