"""SpamAssassin's local score, from the real spamassassin (skipped when it is not installed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gigo_mail.check.report import SKIP
from gigo_mail.check.spam import check_spam, parse_report
from gigo_mail.compose.compile import compile_issue
from gigo_mail.compose.issue import find_issue
from gigo_mail.config import load_config
from support import make_newsletter, write_issue

REPORT = """Content analysis details:   (6.2 points, 5.0 required)

 pts rule name              description
---- ---------------------- --------------------------------------------------
 3.1 SUBJ_ALL_CAPS          Subject is all capitals
-0.0 HTML_MESSAGE           BODY: HTML included in message
 3.1 LOTS_OF_MONEY          Huge... sums of money
                            and more text
"""


def test_parse_report() -> None:
    score, threshold, rules = parse_report(REPORT)
    assert (score, threshold) == (6.2, 5.0)
    assert rules[0] == (3.1, "SUBJ_ALL_CAPS", "Subject is all capitals")
    assert rules[2] == (3.1, "LOTS_OF_MONEY", "Huge... sums of money and more text")
    with pytest.raises(ValueError):
        parse_report("garbage")


def test_without_spamassassin_the_check_is_skipped_with_a_hint(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_newsletter(tmp_path / "nl")
    compiled = compile_issue(load_config(root), find_issue(root, "011"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    [finding] = check_spam(compiled)
    assert finding.level == SKIP and "apt-get install spamassassin" in finding.detail


@pytest.mark.slow
def test_a_spammy_issue_scores_and_names_its_rules(tmp_path: Path) -> None:
    if shutil.which("spamassassin") is None:
        pytest.skip("spamassassin is not installed")
    root = make_newsletter(tmp_path / "nl")
    write_issue(root, "070.md", 'subject: "FREE MONEY!!! ACT NOW"\npreheader: p',
                "# FREE MONEY\n\nYou have WON $1,000,000 USD!!! Click here to claim your prize.\n")
    findings = check_spam(compile_issue(load_config(root), find_issue(root, "070")))
    summary = findings[0]
    score = float(summary.subject.split()[1])
    assert score > 0 and "(spam from 5.0)" in summary.subject
    assert len(findings) > 1 and all(f.subject.isupper() for f in findings[1:])
    assert findings[1].subject in summary.detail
