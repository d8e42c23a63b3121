"""Client compatibility from the shipped caniemail data."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from gigo_mail.check.compat import caniemail, check_compat, family_scores, used_features
from gigo_mail.check.report import OK, WARN
from gigo_mail.compose.compile import compile_issue
from gigo_mail.compose.issue import find_issue
from gigo_mail.config import load_config
from support import make_newsletter

PAGE = """<!doctype html>
<html lang="en">
<head><style>
a:hover { color: red; }
@media (prefers-color-scheme: dark) { .x { color: #fff; } }
</style></head>
<body>
<div style="display: flex; padding: 4px">one</div>
<p style="background-image: linear-gradient(red, blue)">two</p>
</body></html>
"""


def test_the_data_file_ships_with_its_licence_and_date() -> None:
    folder = resources.files("gigo_mail").joinpath("data/caniemail")
    assert "MIT License" in folder.joinpath("LICENSE").read_text()
    assert "2025-09-09" in folder.joinpath("README.md").read_text()
    data = caniemail()
    assert data.updated == "2025-09-09" and len(data.features) > 250


def test_features_are_found_with_their_lines() -> None:
    found = used_features(PAGE)
    assert found["css-pseudo-class-hover"] == 4
    assert found["css-at-media-prefers-color-scheme"] == 5
    assert found["css-display-flex"] == 8 and found["css-padding"] == 8
    assert found["css-linear-gradient"] == 9 and found["css-background-image"] == 9
    assert found["html-lang"] == 2 and found["html-doctype"] == 1


def test_outlook_on_windows_lacks_flex_and_scores_below_apple_mail() -> None:
    scores = family_scores(used_features(PAGE))
    outlook, lacking = scores["outlook"]
    flex = [entry for entry in lacking if entry[0] == "display:flex"]
    assert flex and "Windows" in flex[0][1] and flex[0][2] == 8
    assert scores["apple-mail"][0] > outlook
    assert all(0.0 <= score <= 1.0 for score, _ in scores.values())
    # fewer features used, nothing lacking: a perfect score
    plain = family_scores(used_features("<html><body><p>hi</p></body></html>"))
    assert plain["apple-mail"] == (1.0, [])


def test_issue_011_gets_a_score_per_family(tmp_path: Path) -> None:
    root = make_newsletter(tmp_path / "nl")
    findings = check_compat(compile_issue(load_config(root), find_issue(root, "011")))
    families = [f.subject.rsplit(" ", 1)[0] for f in findings if f.subject != "data"]
    assert families == ["Gmail", "Apple Mail", "Outlook", "Yahoo", "Samsung Email"]
    outlook = next(f for f in findings if f.subject.startswith("Outlook"))
    assert outlook.level == WARN and "@media (line" in outlook.detail
    assert next(f for f in findings if f.subject == "data").level == OK
