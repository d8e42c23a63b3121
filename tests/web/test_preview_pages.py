"""The preview's pages, drawn straight from a PreviewState."""

from __future__ import annotations

from pathlib import Path

from gigo_mail.web.preview import IssueBuilder, PreviewState
from support import PREVIEW_ISSUE


def test_first_build_failing_still_serves_a_page(site: Path) -> None:
    from gigo_mail.web import preview_pages

    issue = site / "issues" / "007.md"
    issue.write_text(PREVIEW_ISSUE.replace('subject: "Tips & <tricks> for issue 7"\n', ""), encoding="utf-8")
    state = PreviewState(IssueBuilder(site, "7").build)
    state.rebuild()
    assert state.current is None and state.version == 1
    page = preview_pages.preview_page(state, inbox_enabled=True)
    assert "Not compiled yet" in page
    assert "no &#39;subject&#39;" in page
    assert "Not compiled yet" in preview_pages.placeholder_email(state.error)
