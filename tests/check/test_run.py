"""The preflight's own checks (build report, placeholders); the other areas have their own modules."""

from __future__ import annotations

from pathlib import Path

from gigo_mail.check.report import FAIL, OK, WARN
from gigo_mail.check.run import check_issue
from gigo_mail.compose.compile import compile_issue
from gigo_mail.compose.issue import find_issue
from gigo_mail.compose.scaffold import create_issue
from gigo_mail.config import load_config
from gigo_mail.web.publish import publish
from support import make_newsletter, write_issue


def test_a_clean_issue_is_one_ok_line(tmp_path: Path) -> None:
    root = make_newsletter(tmp_path / "nl")
    publish(load_config(root))  # the newsletter has a site_url: its "View in browser" page must exist
    [finding] = check_issue(compile_issue(load_config(root), find_issue(root, "011")))
    assert finding.level == OK and "KB of HTML" in finding.detail


def test_build_warnings_and_errors_become_findings(tmp_path: Path) -> None:
    root = make_newsletter(tmp_path / "nl")
    write_issue(root, "080.md", "subject: s", "![](https://x.test/a.png)\n")
    findings = check_issue(compile_issue(load_config(root), find_issue(root, "080")))
    details = " ".join(f.detail for f in findings)
    assert "no 'preheader'" in details and "alt text" in details


def test_a_fresh_issue_fails_on_its_placeholders(tmp_path: Path) -> None:
    root = make_newsletter(tmp_path / "nl")
    created = create_issue(root)
    compiled = compile_issue(load_config(root), find_issue(root, str(created.number)))
    failed = {f.subject for f in check_issue(compiled) if f.level == FAIL}
    assert failed == {"title", "subject", "preheader"}
    filled = create_issue(root, "A real title")
    compiled = compile_issue(load_config(root), find_issue(root, str(filled.number)))
    assert {f.subject for f in check_issue(compiled) if f.level == FAIL} == {"preheader"}


def test_an_unpublished_issue_page_is_a_dead_view_link_until_publish(tmp_path: Path) -> None:
    root = make_newsletter(tmp_path / "nl")  # its gigo-mail.toml sets site_url
    config = load_config(root)
    findings = check_issue(compile_issue(config, find_issue(root, "011")))
    [dead] = [f for f in findings if f.subject == "view in browser"]
    assert dead.level == WARN and "gigo-mail publish" in dead.detail
    publish(config)
    after = check_issue(compile_issue(config, find_issue(root, "011")))
    assert [f for f in after if f.subject == "view in browser"] == []


def test_a_send_into_a_loopback_relay_loads_none_of_the_checks() -> None:
    """`send` imports the preflight before every send; into a loopback relay it runs nothing, so
    dnspython, the HTTP client and YAML (about 0.15 s) stay unloaded."""
    import subprocess
    import sys
    from pathlib import Path

    probe = ("import sys\nfrom gigo_mail.check.run import preflight\n"
             "assert preflight(None, 'smtp://127.0.0.1:2525') == []\n"
             "names = ('dns.resolver', 'httpx2', 'yaml', 'gigo_mail.check.dns', 'gigo_mail.check.links',"
             " 'gigo_mail.check.spam', 'gigo_mail.check.compat')\n"
             "print(sorted(m for m in names if m in sys.modules))")
    src = str(Path(__file__).resolve().parents[2] / "src")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                          env={"PYTHONPATH": src})
    assert done.stdout.strip() == "[]"
