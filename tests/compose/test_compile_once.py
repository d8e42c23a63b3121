"""What a compile does once, not once per compile or per part: the Jinja environment of a run, the
Markdown parse of a body, and what the CSS inliner imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gigo_mail.compose import compiled, markdown, render
from gigo_mail.compose.compile import compile_issue
from gigo_mail.compose.issue import find_issue, resolve_issue_key
from gigo_mail.config import load_config
from gigo_mail.errors import IssueError
from support import make_newsletter, write_issue


def test_one_environment_per_run_until_a_template_is_added(tmp_path: Path) -> None:
    root = make_newsletter(tmp_path / "nl")
    search = compiled.template_search_path(root)
    first = render.shared_environment(search, autoescape=True)
    assert render.shared_environment(search, autoescape=True) is first  # templates compiled once a run
    assert render.shared_environment(search, autoescape=False) is not first  # text is not escaped
    (root / "templates" / "extra.j2").write_text("x", encoding="utf-8")
    assert render.shared_environment(search, autoescape=True) is not first  # an override is found


def test_the_body_is_parsed_once_for_both_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_newsletter(tmp_path / "nl")
    config = load_config(root)
    issue = find_issue(root, "011")
    before = compile_issue(config, issue)
    calls: list[str] = []
    parse = markdown._MD.parse

    def counted(source: str, env: object = None) -> object:
        calls.append(source)
        return parse(source, env)  # type: ignore[arg-type]

    monkeypatch.setattr(markdown._MD, "parse", counted)
    after = compile_issue(config, issue)
    assert len(calls) == 1
    assert (after.html.source, after.text.source) == (before.html.source, before.text.source)


def test_text_headings_keep_their_levels_when_html_raises_them() -> None:
    tokens = markdown.parse("## Title\n\n### Part\n\ntext\n")
    text = markdown.to_text(tokens)
    html = markdown.to_html(tokens)
    assert (text, html) == (markdown.to_text("## Title\n\n### Part\n\ntext\n"),
                            markdown.to_html("## Title\n\n### Part\n\ntext\n"))
    assert "<h1>Title</h1>" in html


def test_compiling_does_not_import_requests(tmp_path: Path) -> None:
    """premailer imports requests only for an HTTP session it never uses here (0.05-0.1 s a run)."""
    root = make_newsletter(tmp_path / "nl")
    code = ("import sys; from gigo_mail.config import load_config; "
            "from gigo_mail.compose.issue import find_issue; "
            "from gigo_mail.compose.compile import compile_issue; "
            f"from pathlib import Path; c = load_config(Path({str(root)!r})); "
            "compile_issue(c, find_issue(c.root, '011')); "
            "print('requests' in sys.modules); import requests; print(callable(requests.get))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(Path(render.__file__).parents[2]), "PATH": "/usr/bin:/bin"})
    assert out.stdout.split() == ["False", "True"]  # and whoever imports it later gets the real one


def test_an_issue_is_named_without_reading_its_front_matter(tmp_path: Path) -> None:
    """status and friends need the key only: a broken front matter does not stop them."""
    root = make_newsletter(tmp_path / "nl")
    write_issue(root, "012.md", "subject: [unclosed", "body\n")
    assert resolve_issue_key(root, "12") == "012"
    assert resolve_issue_key(root, "issues/012.md") == "012"
    with pytest.raises(IssueError):
        find_issue(root, "12")


_INLINER_PROBE = '''
import sys
import cssutils
import cssutils.css.property as prop
import premailer.merge_style  # imported before the compile's own import: the shim still applies
from gigo_mail.compose import compile as c

validated = []
real_validate = prop.Property.validate
def counted(self):
    validated.append(self.name)
    return real_validate(self)
prop.Property.validate = counted
c._import_premailer()
if sys.argv[1] == "validating":  # premailer as it is, without the shim
    premailer.premailer.cssutils = cssutils
    premailer.merge_style.cssutils = cssutils
    c._import_premailer = lambda: None
html = sys.stdin.read()
sys.stdout.write(c._premailer(html) + "\\n" + str(len(validated)))
'''

_STYLED = """<html><head><style>p { color: #333; -webkit-text-size-adjust: 100%;
mso-line-height-rule: exactly }
.x { margin: 0 auto } @media (max-width: 480px) { .x { width: 100% !important } }</style></head>
<body><table style="border-collapse: collapse; mso-table-lspace: 0pt; width: 600px"><tr><td class="x"
style="padding: 10px 25px; font-family: Ubuntu, Helvetica, Arial, sans-serif; colour: red">
<p style="font-size: 16px; line-height: 1.5 !important">Text</p>
<img src="a.png" style="float: right; width: 120px; border: 0" alt="">
<img src="b.png" style="FLOAT:left" alt=""></td></tr></table></body></html>"""


def test_the_css_inliner_validates_nothing_and_inlines_as_before(tmp_path: Path) -> None:
    """premailer is told not to validate, yet validated every inline style (0.2 s of the first
    compile); without it the output is byte for byte what the validating inliner gives."""
    src = str(Path(__file__).resolve().parents[2] / "src")
    outputs = {}
    for mode in ("validating", "as shipped"):
        done = subprocess.run([sys.executable, "-c", _INLINER_PROBE, mode], input=_STYLED, text=True,
                              capture_output=True, check=True, env={"PYTHONPATH": src})
        html, _, count = done.stdout.rpartition("\n")
        outputs[mode] = (html, int(count))
    assert outputs["validating"][1] > 0  # the probe sees validation when it happens
    assert outputs["as shipped"][1] == 0
    assert outputs["as shipped"][0] == outputs["validating"][0]
    html = outputs["as shipped"][0]
    assert 'align="right"' in html and 'align="left"' in html  # floating images still aligned
    assert "colour: red" in html or "colour:red" in html  # an unknown property is kept, as before
