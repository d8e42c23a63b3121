"""`gigo-mail dkim keygen`: the names it writes into DNS are checked, and it prints one [dkim] section."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gigo_mail.cli.app import app
from gigo_mail.config import load_config
from support import make_newsletter

runner = CliRunner()


@pytest.fixture
def newsletter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_newsletter(tmp_path / "nl")
    monkeypatch.chdir(root)
    return root


@pytest.mark.parametrize(("args", "expected"), [
    (["--selector", "my key"], "the selector (--selector) 'my key' is not a DNS name"),
    (["--selector", "-k1"], "the selector (--selector) '-k1' is not a DNS name"),
    (["--selector", "k" * 64], "is not a DNS name"),
    (["--selector", "a..b"], "is not a DNS name (the part '')"),
    (["--selector", "k_1"], "the selector (--selector) 'k_1' is not a DNS name"),
    (["--selector", ""], "the selector (--selector) is empty"),
    (["--domain", "not a domain!"], "the domain (--domain) 'not a domain!' is not a DNS name"),
    (["--domain", "exa mple.org"], "is not a DNS name (the part 'exa mple')"),
    (["--domain", "x" * 250 + ".org"], "longer than 253 characters"),
])
def test_a_name_that_is_not_a_dns_name_is_one_line_and_writes_no_key(newsletter: Path, args: list[str],
                                                                     expected: str) -> None:
    result = runner.invoke(app, ["dkim", "keygen", *args])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert not list((newsletter / ".gigo").glob("dkim-*")) if (newsletter / ".gigo").exists() else True


def test_non_ascii_names_are_shown_and_written_as_idna_a_labels(newsletter: Path) -> None:
    result = runner.invoke(app, ["dkim", "keygen", "--selector", "Schlüssel", "--domain", "bücher.example"])
    assert result.exit_code == 0, result.output
    out = result.stdout.replace("\n", " ")
    assert "Schlüssel is written xn--schlssel-95a in DNS (IDNA A-label)" in out
    assert "bücher.example is written xn--bcher-kva.example in DNS" in out
    assert "xn--schlssel-95a._domainkey.xn--bcher-kva.example" in out
    assert (newsletter / ".gigo" / "dkim-xn--schlssel-95a.pem").is_file()
    assert 'selector = "xn--schlssel-95a"' in result.stdout
    assert 'domain = "xn--bcher-kva.example"' in result.stdout


def _block(stdout: str) -> str:
    match = re.search(r"^\[dkim\]\n(?:.+\n)+", stdout, re.M)
    assert match, stdout
    return match.group(0)


def test_ed25519_prints_one_dkim_section_that_replaces_the_old_one(newsletter: Path) -> None:
    """RSA first, pasted in; then --ed25519: its block has both keys, under one header, and the
    config with that block instead of the old one loads."""
    config = newsletter / "gigo-mail.toml"
    first = runner.invoke(app, ["dkim", "keygen", "--selector", "k1"])
    assert first.exit_code == 0, first.output
    config.write_text(config.read_text() + "\n" + _block(first.stdout))
    second = runner.invoke(app, ["dkim", "keygen", "--selector", "k1e", "--ed25519"])
    assert second.exit_code == 0, second.output
    assert "replace the [dkim] section of gigo-mail.toml" in second.stdout
    assert second.stdout.count("[dkim]") == 2  # the sentence and the one header
    block = _block(second.stdout)
    assert tomllib.loads(block)["dkim"] == {
        "selector": "k1", "key_file": ".gigo/dkim-k1.pem",
        "ed25519_selector": "k1e", "ed25519_key_file": ".gigo/dkim-k1e.pem"}
    config.write_text(config.read_text().replace(_block(first.stdout), block))
    dkim = load_config(newsletter).dkim
    assert (dkim.selector, dkim.ed25519_selector) == ("k1", "k1e")


def test_ed25519_alone_says_an_rsa_key_is_needed_too(newsletter: Path) -> None:
    result = runner.invoke(app, ["dkim", "keygen", "--selector", "e1", "--ed25519"])
    assert result.exit_code == 0, result.output
    block = _block(result.stdout)
    assert block.count("[dkim]") == 1 and "an RSA key is needed too: gigo-mail dkim keygen" in block
