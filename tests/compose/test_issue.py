"""Naming an issue: by its file, or by a key the journal has when the file is gone."""

from __future__ import annotations

from pathlib import Path

import pytest

from gigo_mail.compose.issue import resolve_issue_key
from gigo_mail.errors import IssueNotFound
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
