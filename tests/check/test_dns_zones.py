"""`check` against a zone set on a real dnsmasq: one domain per finding, and checkdmarc on the same zones.

The measure is that `check` never says ready for a zone whose mail receivers would reject
or ignore, and that it names the record to fix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from dns_zones import CASES, LINES, ZONES, Case, write_config
from typer.testing import CliRunner

from conftest import DnsServer
from gigo_mail.check.dns import check_dns, make_resolver
from gigo_mail.check.report import FAIL, WARN, Finding
from gigo_mail.cli.app import app
from gigo_mail.config import load_config
from support import make_newsletter

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def zones(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsServer]:
    server = DnsServer(tmp_path_factory.mktemp("zones"), ZONES, LINES)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GIGO_DKIM_KEY", "GIGO_DKIM_ED25519_KEY", "GIGO_SMTP_URL"):
        monkeypatch.delenv(name, raising=False)


def judge(tmp_path: Path, case: Case, server: DnsServer) -> list[Finding]:
    return check_dns(load_config(write_config(tmp_path / case.domain, case)), make_resolver(server.address))


def test_the_zone_set_has_a_domain_for_each_finding() -> None:
    assert len({case.domain for case in CASES}) >= 13
    assert sum(1 for case in CASES if not case.fails) >= 3  # and domains that must pass


@pytest.mark.parametrize("case", CASES, ids=[case.domain for case in CASES])
def test_check_judges_each_zone(tmp_path: Path, zones: DnsServer, case: Case) -> None:
    findings = judge(tmp_path, case, zones)
    failed = [f for f in findings if f.level == FAIL]
    shown = "\n".join(f"{f.level} {f.subject}: {f.detail}" for f in findings)
    if not case.fails:
        assert not failed, shown
    for subject in case.fails:
        assert any(f.subject.startswith(subject) for f in failed), (subject, shown)
    for subject in case.warns:
        assert any(f.subject.startswith(subject) and f.level == WARN for f in findings), (subject, shown)
    told = " ".join(f.detail for f in findings if f.level in (FAIL, WARN))
    for phrase in case.says:
        assert phrase in told, (phrase, shown)
    if case.fails and "SPF" not in " ".join(case.fails):
        assert "add its provider's include" not in told  # advice that adds lookups only where there is room


def test_a_misaligned_from_under_p_reject_fails_the_cli(tmp_path: Path, zones: DnsServer,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The issue's finding: a misaligned From under p=reject ended "ready", exit 0."""
    case = next(c for c in CASES if c.domain == "misaligned.test")
    root = make_newsletter(tmp_path / "news")
    write_config(tmp_path / "cfg", case)
    key = tmp_path / "cfg" / "dkim.pem"
    config = (tmp_path / "cfg" / "gigo-mail.toml").read_text().replace('key_file = "dkim.pem"',
                                                                        f'key_file = "{key}"')
    (root / "gigo-mail.toml").write_text(config)
    monkeypatch.chdir(root)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # no SpamAssassin: its own tests run it
    result = CliRunner().invoke(app, ["check", "011", "--dns", zones.address, "--offline"])
    assert result.exit_code == 1, result.stdout
    assert "ready" not in result.stdout.splitlines()[-1]
    assert "every message would be rejected" in " ".join(result.stdout.split())


# Where checkdmarc and check disagree on a record, and why. The records compared are the ones both
# read: SPF and MX of the envelope-sender domain, DMARC of the From domain. Alignment, the relay and
# the rule sets are check's alone (checkdmarc looks at one domain's records, not at a sending setup).
DIFFERENCES = {
    ("nop.test", "DMARC"): "checkdmarc follows RFC 9989 (a missing p= reads as p=none) and warns; check "
                           "fails it: RFC 7489 requires p=, receivers on it may differ, and the fix "
                           "is one tag",
    ("badtag.test", "DMARC"): "both read adkim=relaxed as the default r; checkdmarc warns, check fails so "
                              "that the record says what its owner meant",
    ("spffail.test", "SPF"): "checkdmarc does not know the relay; check evaluates the record for the relay's "
                             "address, and it fails",
    ("spfover.test", "SPF"): "both count more than 10 lookups; the relay's include comes first, so the "
                             "relay's mail passes before the limit: check warns, checkdmarc fails the record",
}


def _checkdmarc_fails(domain: str, envelope: str, server: DnsServer) -> dict[str, bool]:
    """checkdmarc's word on the same records, asking only the loopback server (never the system's)."""
    checkdmarc_spf = pytest.importorskip("checkdmarc.spf")
    import checkdmarc.dmarc
    import checkdmarc.smtp
    import dns.nameserver

    resolver = make_resolver(server.address)
    servers = [dns.nameserver.Do53Nameserver("127.0.0.1", server.port)]
    spf = checkdmarc_spf.check_spf(envelope, resolver=resolver, nameservers=servers)
    dmarc = checkdmarc.dmarc.check_dmarc(domain, resolver=resolver, nameservers=servers)
    mx = checkdmarc.smtp.check_mx(envelope, resolver=resolver, nameservers=servers)
    return {"SPF": not spf["valid"], "DMARC": not dmarc["valid"],
            "MX": bool(mx.get("error") or mx.get("warnings"))}


def _check_fails(findings: list[Finding], envelope: str) -> dict[str, bool]:
    def failed(test: Callable[[str], bool]) -> bool:
        return any(f.level == FAIL and test(f.subject) for f in findings)

    return {"SPF": failed(lambda s: s == f"SPF {envelope}"), "MX": failed(lambda s: s == f"MX {envelope}"),
            "DMARC": failed(lambda s: s.startswith("DMARC") and not s.startswith("DMARC result"))}


def test_checkdmarc_agrees_on_every_record_or_the_difference_is_documented(
        tmp_path: Path, zones: DnsServer, monkeypatch: pytest.MonkeyPatch) -> None:
    import dns.resolver

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the system's resolver was asked: only the loopback server may be")

    monkeypatch.setattr(dns.resolver.Resolver, "read_resolv_conf", refuse)
    seen = set()
    for case in CASES:
        envelope = (case.return_path or f"news@{case.domain}").rpartition("@")[2]
        theirs = _checkdmarc_fails(case.domain, envelope, zones)
        ours = _check_fails(judge(tmp_path, case, zones), envelope)
        for record in ("SPF", "DMARC", "MX"):
            key = (case.domain, record)
            if key in DIFFERENCES:
                seen.add(key)
                assert ours[record] != theirs[record], f"{key} now agrees: remove it from DIFFERENCES"
            else:
                verdicts = ("check fails" if ours[record] else "check passes",
                            "checkdmarc fails" if theirs[record] else "checkdmarc passes")
                assert ours[record] == theirs[record], (key, *verdicts)
    assert seen == set(DIFFERENCES)
