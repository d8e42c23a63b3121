"""`gigo-mail check`: one preflight before a send, as a list of findings.

DNS for the From domain, the issue's build report and placeholders, its links and
images, client compatibility from the caniemail data, and SpamAssassin's local score.
Nothing is ever sent to a hosted checker.

The checks' own modules (dnspython, the HTTP client, the caniemail data, YAML) load when a
check runs: ``send`` imports this module for its preflight, which a loopback relay skips.
"""

from __future__ import annotations

from dataclasses import dataclass

from gigo_mail.check.report import CheckReport, Finding
from gigo_mail.compose.compiled import CompiledIssue
from gigo_mail.transport.url import parse_smtp_url


@dataclass(frozen=True, kw_only=True)
class CheckOptions:
    dns: str | None = None  # HOST:PORT of a resolver; the system's when None
    offline: bool = False  # no link or remote image requests
    smtp_url: str | None = None  # the relay SPF must allow (default: the config's)
    timeout: float = 5.0  # per link request
    quick: bool = False  # the subset `send` runs first: DNS with short timeouts, no links, no spam


def placeholders_left(compiled: CompiledIssue) -> list[Finding]:
    """Front matter still as `gigo-mail new` wrote it."""
    from gigo_mail.compose.scaffold import PLACEHOLDERS

    issue = compiled.issue
    findings = []
    for key, placeholder in PLACEHOLDERS.items():
        value = str(issue.meta.get(key, ""))
        if value and value.startswith(placeholder):
            findings.append(Finding.fail("issue", key, f"{issue.display_path}: the {key} is still the "
                                                      f"placeholder '{value}'; write the real one"))
    return findings


def view_link(compiled: CompiledIssue) -> list[Finding]:
    """The email's "View in browser" link leads to a page that was never published."""
    from gigo_mail.compose.site_paths import dead_view_link_warning

    warning = dead_view_link_warning(compiled.config, compiled.issue)
    return [Finding.warn("issue", "view in browser", warning)] if warning else []


def check_issue(compiled: CompiledIssue) -> list[Finding]:
    """The build report as findings, and the placeholders left."""
    findings = [Finding.fail("issue", "build", error) for error in compiled.report.errors]
    findings += [Finding.warn("issue", "build", warning) for warning in compiled.report.warnings]
    findings += placeholders_left(compiled)
    findings += view_link(compiled)
    if not findings:
        findings.append(Finding.ok("issue", "build", f"{compiled.report.html_bytes / 1024:.1f} KB of HTML, "
                                                     "no warnings"))
    return findings


def preflight(compiled: CompiledIssue, smtp_url: str, dns: str | None = None) -> list[Finding]:
    """What `send` warns about first: the DNS checks, with short timeouts, for a remote relay only
    (a send into the local capture inbox or a test server needs no DNS)."""
    if parse_smtp_url(smtp_url).is_loopback:
        return []
    report = run_check(compiled, CheckOptions(dns=dns, smtp_url=smtp_url, quick=True))
    return report.failed + report.warnings


def local_checks(compiled: CompiledIssue) -> list[Finding]:
    """The part of the preflight that needs no network and no SpamAssassin, for the preview
    (which shows the build report itself): placeholders, local images, client scores."""
    from gigo_mail.check.compat import check_compat
    from gigo_mail.check.links import check_images

    return placeholders_left(compiled) + check_images(compiled) + check_compat(compiled)


def run_check(compiled: CompiledIssue, options: CheckOptions) -> CheckReport:
    """Every check, in the order a sender reads them."""
    from gigo_mail.check.compat import check_compat
    from gigo_mail.check.dns import check_dns, make_resolver
    from gigo_mail.check.links import check_images, check_links
    from gigo_mail.check.spam import check_spam

    report = CheckReport()
    report.findings += check_dns(compiled.config, make_resolver(options.dns, 1.5 if options.quick else 3.0),
                                 options.smtp_url)
    if options.quick:
        return report
    report.findings += check_issue(compiled)
    report.findings += check_links(compiled, options.timeout, options.offline)
    report.findings += check_images(compiled)
    report.findings += check_compat(compiled)
    report.findings += check_spam(compiled)
    return report
