"""`gigo-mail check`'s DNS part against a real dnsmasq on 127.0.0.1 serving good and broken records."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from typer.testing import CliRunner

from conftest import DnsServer
from gigo_mail.check.dns import Lookup, SpfEvaluator, aligned, check_dns, make_resolver
from gigo_mail.check.receivers import RULE_SETS
from gigo_mail.check.report import FAIL, OK, WARN
from gigo_mail.check.run import preflight
from gigo_mail.cli.app import app
from gigo_mail.compose.compile import compile_issue
from gigo_mail.compose.issue import find_issue
from gigo_mail.config import load_config
from gigo_mail.errors import CheckError
from gigo_mail.send.dkim import public_record
from support import make_newsletter

runner = CliRunner()
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RELAY = "192.0.2.25"  # documentation range: only compared, never contacted


def txt(name: str, value: str) -> str:
    """A dnsmasq txt-record line, split into 255-byte strings like a real zone."""
    return f"txt-record={name}," + ",".join(f'"{value[i:i + 200]}"' for i in range(0, len(value), 200))


GOOD = [
    txt("good.test", "v=spf1 mx include:_spf.relay.test -all"),
    txt("_spf.relay.test", "v=spf1 ip4:192.0.2.0/24 ~all"),
    txt("s1._domainkey.good.test", public_record(KEY)),
    txt("_dmarc.good.test", "v=DMARC1; p=quarantine; adkim=r; rua=mailto:dmarc@good.test"),
    "mx-host=good.test,mx.good.test,10",
    "host-record=mx.good.test,198.51.100.7",
    f"host-record=smtp.relay.test,{RELAY}",
]
BROKEN = [
    txt("broken.test", "v=spf1 ip4:198.51.100.0/24 -all"),
    txt("s1._domainkey.broken.test", public_record(OTHER)),
    txt("_dmarc.broken.test", "v=DMARC1; p=block; rua=https://report.test/"),
    f"host-record=smtp.relay.test,{RELAY}",
]


def newsletter(root: Path, domain: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    make_newsletter(root)
    (root / "dkim.pem").write_bytes(KEY.private_bytes(serialization.Encoding.PEM,
                                                      serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))
    config = root / "gigo-mail.toml"
    text = config.read_text().replace("newsletter@gigo.dev", f"newsletter@{domain}")
    text = text.replace('url = "smtp://127.0.0.1:1025"', 'url = "smtp://smtp.relay.test:587"')
    config.write_text(text + '\n[dkim]\nselector = "s1"\nkey_file = "dkim.pem"\n')
    monkeypatch.chdir(root)
    monkeypatch.delenv("GIGO_DKIM_KEY", raising=False)
    monkeypatch.delenv("GIGO_SMTP_URL", raising=False)
    return root


@pytest.fixture
def dns_server(start_dns: Callable[[list[str], list[str]], DnsServer]) -> DnsServer:
    return start_dns(["good.test", "broken.test", "relay.test"], GOOD + BROKEN)


def levels(root: Path, server: DnsServer) -> dict[str, tuple[str, str]]:
    findings = check_dns(load_config(root), make_resolver(server.address))
    return {f.subject: (f.level, f.detail) for f in findings}


def test_a_correct_domain_passes_every_dns_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 dns_server: DnsServer) -> None:
    root = newsletter(tmp_path / "good", "good.test", monkeypatch)
    found = levels(root, dns_server)
    assert found["SPF good.test"][0] == OK and RELAY in found["SPF good.test"][1]
    assert found["DKIM s1._domainkey.good.test"] == (OK, "matches the configured RSA key")
    assert found["DMARC _dmarc.good.test"][0] == OK
    assert found["MX good.test"] == (OK, "mx.good.test")
    assert found["DMARC result for good.test"][0] == OK
    assert set(found) == {"SPF good.test", "DKIM s1._domainkey.good.test", "DMARC _dmarc.good.test",
                          "MX good.test", "DMARC result for good.test", *RULE_SETS}
    assert all(found[rules][0] == OK for rules in RULE_SETS)


def test_a_broken_domain_names_each_broken_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  dns_server: DnsServer) -> None:
    root = newsletter(tmp_path / "broken", "broken.test", monkeypatch)
    found = levels(root, dns_server)
    assert found["SPF broken.test"][0] == FAIL and f"relay smtp.relay.test ({RELAY}): fail" in \
        found["SPF broken.test"][1]
    assert found["DKIM s1._domainkey.broken.test"] == (
        FAIL, "the published key does not match the configured private key")
    level, detail = found["DMARC _dmarc.broken.test"]
    assert level == FAIL and "p=block" in detail and "https://report.test/" in detail
    assert found["MX broken.test"][0] == FAIL


def test_missing_records_and_the_cli_exit_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               dns_server: DnsServer) -> None:
    root = newsletter(tmp_path / "none", "nothing.good.test", monkeypatch)
    found = levels(root, dns_server)
    assert found["SPF nothing.good.test"][0] == FAIL
    assert found["DKIM s1._domainkey.nothing.good.test"][0] == FAIL
    # DMARC's tree walk finds the organizational domain's record (RFC 9989)
    assert found["DMARC _dmarc.good.test"][0] == OK
    assert found["MX nothing.good.test"][0] == FAIL
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # no SpamAssassin: its own tests run it
    result = runner.invoke(app, ["check", "011", "--dns", dns_server.address, "--offline"])
    assert result.exit_code == 1
    assert "SPF nothing.good.test" in result.stdout and "failed" in result.stdout


def test_dmarc_warnings_for_monitoring_only_and_removed_tags(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        start_dns: Callable[[list[str], list[str]], DnsServer]) -> None:
    server = start_dns(["warn.test", "relay.test"], [txt("_dmarc.warn.test", "v=DMARC1; p=none; pct=50"),
                                                     f"host-record=smtp.relay.test,{RELAY}"])
    root = newsletter(tmp_path / "warn", "warn.test", monkeypatch)
    level, detail = levels(root, server)["DMARC _dmarc.warn.test"]
    assert level == WARN and "pct= is not in RFC 9989" in detail and "p=none only monitors" in detail


def test_without_dkim_configured_check_says_how_to_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         dns_server: DnsServer) -> None:
    root = newsletter(tmp_path / "nodkim", "good.test", monkeypatch)
    config = root / "gigo-mail.toml"
    config.write_text(config.read_text().split("[dkim]")[0])
    level, detail = levels(root, dns_server)["DKIM"]
    assert level == FAIL and "gigo-mail dkim keygen" in detail


def test_a_resolver_that_never_answers_is_one_finding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      dns_server: DnsServer) -> None:
    root = newsletter(tmp_path / "dead", "good.test", monkeypatch)
    port = dns_server.port
    dns_server.stop()
    findings = check_dns(load_config(root), make_resolver(f"127.0.0.1:{port}", lifetime=0.5))
    assert [(f.subject, f.level) for f in findings] == [("resolver", FAIL)]
    assert f"127.0.0.1:{port}" in findings[0].detail
    dns_server.process.returncode = 0  # stopped already; the fixture's stop() is then harmless


def test_a_bad_dns_option_is_a_clear_error() -> None:
    with pytest.raises(CheckError, match="IP:PORT"):
        make_resolver("resolver.example:53")


def test_check_passes_on_the_good_domain_and_names_each_broken_record(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dns_server: DnsServer) -> None:
    newsletter(tmp_path / "good", "good.test", monkeypatch)
    result = runner.invoke(app, ["check", "011", "--dns", dns_server.address, "--offline"])
    assert result.exit_code == 0, result.stdout
    assert "ready" in result.stdout and "FAIL" not in result.stdout
    for area in ("DNS", "Issue", "Links", "Clients", "Spam"):
        assert area in result.stdout
    newsletter(tmp_path / "broken", "broken.test", monkeypatch)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # SpamAssassin has had its turn above
    result = runner.invoke(app, ["check", "011", "--dns", dns_server.address, "--offline"])
    assert result.exit_code == 1
    failed = [line for line in result.stdout.splitlines() if line.lstrip().startswith("FAIL")]
    for record in ("SPF broken.test", "DKIM s1._domainkey.broken.test", "DMARC _dmarc.broken.test",
                   "MX broken.test"):
        assert any(record in line for line in failed), (record, result.stdout)
    for outcome in ("DMARC result for broken.test", *RULE_SETS):
        assert any(outcome in line for line in failed), (outcome, result.stdout)
    assert "7 failed" in result.stdout


def test_send_preflight_is_dns_only_and_only_for_a_remote_relay(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dns_server: DnsServer) -> None:
    root = newsletter(tmp_path / "broken", "broken.test", monkeypatch)
    compiled = compile_issue(load_config(root), find_issue(root, "011"))
    problems = preflight(compiled, "smtp://smtp.relay.test:587", dns=dns_server.address)
    assert {f.area for f in problems} == {"dns"}
    assert {f.subject for f in problems} == {"SPF broken.test", "DKIM s1._domainkey.broken.test",
                                             "DMARC _dmarc.broken.test", "MX broken.test",
                                             "DMARC result for broken.test", *RULE_SETS}
    assert preflight(compiled, "smtp://127.0.0.1:1025", dns=dns_server.address) == []


@pytest.mark.parametrize(("record", "expected"), [
    ("v=spf1 a/24 -all", "pass"),
    ("v=spf1 a -all", "fail"),
    ("v=spf1 mx:relay.test ~all", "pass"),
    ("v=spf1 redirect=_spf.relay.test", "pass"),
    ("v=spf1 ip6:2001:db8::/32 ?all", "neutral"),
    ("v=spf1 include:nothing.relay.test -all", "permerror: nothing.relay.test has no SPF record"),
    ("v=spf1 bogus:x -all", "permerror: unknown mechanism bogus:x"),
])
def test_spf_evaluation(start_dns: Callable[[list[str], list[str]], DnsServer], record: str,
                        expected: str) -> None:
    server = start_dns(["spf.test", "relay.test"], [
        txt("spf.test", record), "host-record=spf.test,192.0.2.1", "mx-host=relay.test,smtp.relay.test,5",
        txt("_spf.relay.test", "v=spf1 ip4:192.0.2.0/24 -all"), f"host-record=smtp.relay.test,{RELAY}"])
    lookup = Lookup(make_resolver(server.address))
    assert SpfEvaluator(lookup).evaluate("spf.test", ipaddress.ip_address(RELAY)) == expected


@pytest.mark.parametrize(("signer", "sender", "relaxed"), [
    ("example.com", "news.example.com", True),
    ("mail.example.co.uk", "example.co.uk", True),
    ("example.co.uk", "other.co.uk", False),  # two registrants under one public suffix
    ("alice.github.io", "bob.github.io", False),  # a private suffix: each its own registrant
    ("co.uk", "example.co.uk", False),
    ("Example.COM.", "example.com", True),
])
def test_relaxed_alignment_compares_registrable_domains(signer: str, sender: str, relaxed: bool) -> None:
    """DMARC's relaxed mode: the same registrable domain by the Public Suffix List, not the last
    two labels (which put every .co.uk domain in one)."""
    assert aligned(signer, sender, strict=False) is relaxed
    assert aligned(signer, sender, strict=True) is (signer.lower().rstrip(".") == sender)
