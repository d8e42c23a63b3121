"""The live preview's rebuilds (IssueBuilder, PreviewState, Watcher): a real compile, seen through
a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest

from conftest import Running
from gigo_mail.web.preview import Watcher
from support import PREVIEW_CONFIG, PREVIEW_ISSUE, touch_later


def test_editing_the_issue_bumps_version_and_serves_new_content(running: Running, site: Path) -> None:
    _, _, first = running.get("/version")
    assert json.loads(first)["version"] == 1
    watcher = Watcher(running.state, running.builder.watch_paths, interval=0.05)
    watcher.start()
    try:
        answer: dict[str, int] = {}

        def long_poll() -> None:  # what the page does: wait for a version other than 1
            answer.update(json.loads(running.get("/version?after=1")[2]))

        waiter = threading.Thread(target=long_poll)
        waiter.start()
        time.sleep(0.2)
        assert waiter.is_alive(), "the long-poll should wait for a change"
        issue = site / "issues" / "007.md"
        issue.write_text(PREVIEW_ISSUE.replace("FIRST-VERSION", "SECOND-VERSION"), encoding="utf-8")
        touch_later(issue)
        waiter.join(10)
        assert answer.get("version") == 2
    finally:
        watcher.stop()
    _, _, email_html = running.get("/email.html")
    assert "SECOND-VERSION" in email_html and "FIRST-VERSION" not in email_html
    _, _, page = running.get("/")
    assert 'data-version="2"' in page


def test_template_and_config_changes_rebuild(running: Running, site: Path) -> None:
    watcher = Watcher(running.state, running.builder.watch_paths)
    from gigo_mail.compose.compiled import BUILTIN_TEMPLATES

    override = site / "templates" / "default"
    shutil.copytree(BUILTIN_TEMPLATES / "default", override)
    text_template = override / "email.txt.j2"
    text_template.write_text(text_template.read_text() + "\nTEMPLATE-MARK\n", encoding="utf-8")
    assert watcher.check() is True
    assert "TEMPLATE-MARK" in running.get("/email.txt")[2]

    config = site / "gigo-mail.toml"
    config.write_text(PREVIEW_CONFIG.replace("Preview Weekly", "Renamed Weekly"), encoding="utf-8")
    touch_later(config)
    assert watcher.check() is True
    assert "Renamed Weekly" in running.get("/email.html")[2]
    assert watcher.check() is False  # nothing changed since


def test_a_file_still_being_written_is_not_built_until_it_holds_still(
        running: Running, site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An editor that truncates then writes: the scan that sees the truncated file waits a moment,
    sees it change again, and builds nothing; the next scan builds the finished file."""
    from gigo_mail.web import preview

    watcher = Watcher(running.state, running.builder.watch_paths)
    issue = site / "issues" / "007.md"
    version = running.state.version
    issue.write_text(PREVIEW_ISSUE[:40], encoding="utf-8")  # half of the front matter, mid-save
    touch_later(issue)

    def the_save_finishes(seconds: float) -> None:
        issue.write_text(PREVIEW_ISSUE.replace("FIRST-VERSION", "SECOND-VERSION"), encoding="utf-8")
        touch_later(issue)
        touch_later(issue)

    monkeypatch.setattr(preview.time, "sleep", the_save_finishes)
    assert watcher.check() is False and running.state.version == version  # nothing built, no error shown
    assert json.loads(running.get("/version")[2]).get("error") in (None, "")
    monkeypatch.setattr(preview.time, "sleep", lambda seconds: None)
    assert watcher.check() is True
    assert "SECOND-VERSION" in running.get("/email.html")[2]


def test_compile_error_shows_in_page_and_keeps_last_build(running: Running, site: Path) -> None:
    watcher = Watcher(running.state, running.builder.watch_paths)
    issue = site / "issues" / "007.md"
    issue.write_text("---\nsubject: [unclosed\n---\nbody\n", encoding="utf-8")
    touch_later(issue)
    assert watcher.check() is True
    status, _, page = running.get("/")
    assert status == 200
    assert 'id="compile-error"' in page
    assert "007.md" in page and "not valid YAML" in page
    assert "showing the last good build" in page
    assert "FIRST-VERSION" in running.get("/email.html")[2]
    assert json.loads(running.get("/version")[2])["error"]

    issue.write_text(PREVIEW_ISSUE, encoding="utf-8")
    touch_later(issue)
    assert watcher.check() is True
    assert 'id="compile-error"' not in running.get("/")[2]
