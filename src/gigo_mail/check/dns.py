"""DNS for the From domain: SPF, DKIM, DMARC (RFC 9989 syntax) and MX, looked up with dnspython.

Each record gets one finding that names it (``SPF gigo.dev``, ``DKIM s1._domainkey.gigo.dev``),
so a broken setup says exactly which record to fix. SPF is evaluated far enough to say
whether the configured relay's address is allowed (ip4, ip6, a, mx, include, redirect).
"""

from __future__ import annotations

import base64
import functools
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import dns.exception
import dns.resolver

from gigo_mail.check.report import Finding
from gigo_mail.config import Config
from gigo_mail.errors import CheckError, GigoError
from gigo_mail.net import is_loopback
from gigo_mail.send.dkim import PrivateKey, public_record, signer_for
from gigo_mail.transport.url import parse_smtp_url

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList

SPF_LOOKUP_LIMIT = 10  # RFC 7208 4.6.4
DMARC_TAGS = {"v", "p", "sp", "np", "psd", "t", "adkim", "aspf", "rua", "ruf", "fo"}  # RFC 9989
DMARC_REMOVED = {"pct": "use t=y for testing", "rf": "reports are always AFRF", "ri": "reports are daily"}
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def make_resolver(server: str | None, lifetime: float = 3.0) -> dns.resolver.Resolver:
    """The system's resolver, or ``HOST:PORT`` (an IP address; ``[::1]:53`` for IPv6)."""
    if not server:
        resolver = dns.resolver.Resolver()
    else:
        host, sep, port = server.rpartition(":")
        if not sep:
            host, port = server, "53"
        host = host.strip("[]")
        try:
            ipaddress.ip_address(host)
            number = int(port)
        except ValueError:
            raise CheckError(f"--dns {server}: give the resolver as IP:PORT, e.g. 127.0.0.1:5353") from None
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [host]
        resolver.port = number
    resolver.lifetime = lifetime
    resolver.timeout = min(resolver.timeout, lifetime)
    return resolver


class Lookup:
    """TXT/A/AAAA/MX queries; a missing name is an empty answer, a dead resolver an error."""

    def __init__(self, resolver: dns.resolver.Resolver) -> None:
        self.resolver = resolver

    def _answer(self, name: str, rdtype: str) -> list[object]:
        try:
            return list(self.resolver.resolve(name, rdtype, search=False))
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (dns.resolver.NoNameservers, dns.exception.Timeout) as exc:
            where = ", ".join(f"{n}:{self.resolver.port}" for n in self.resolver.nameservers)
            raise CheckError(f"no answer for {name} {rdtype} from {where} ({type(exc).__name__}); "
                             "check the network or point --dns at a working resolver") from exc

    def txt(self, name: str) -> list[str]:
        return [b"".join(r.strings).decode("utf-8", "replace") for r in self._answer(name, "TXT")]  # type: ignore[attr-defined]

    def addresses(self, name: str) -> list[Address]:
        return [ipaddress.ip_address(r.address) for t in ("A", "AAAA") for r in self._answer(name, t)]  # type: ignore[attr-defined]

    def mx(self, name: str) -> list[str]:
        return [r.exchange.to_text().rstrip(".") for r in self._answer(name, "MX")]  # type: ignore[attr-defined]


def _tags(record: str) -> dict[str, str]:
    """``k=v; k=v`` tag lists (DKIM, DMARC), keys lower-cased."""
    tags = {}
    for part in record.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            tags[key.strip().lower()] = "".join(value.split())
    return tags


@functools.cache
def _suffixes() -> PublicSuffixList:
    from publicsuffixlist import PublicSuffixList  # here: only `check` needs it (about 60 ms to load)

    return PublicSuffixList()


def organizational(domain: str) -> str:
    """The registrable domain DMARC's relaxed alignment compares: news.example.co.uk and
    example.co.uk are both example.co.uk, alice.github.io is its own (the Public Suffix List
    bundled with ``publicsuffixlist``, private suffixes included). A public suffix or a name
    the list cannot place stands for itself."""
    name = domain.lower().rstrip(".")
    return _suffixes().privatesuffix(name) or name


def aligned(a: str, b: str, strict: bool) -> bool:
    a, b = a.lower().rstrip("."), b.lower().rstrip(".")
    return a == b if strict else organizational(a) == organizational(b)


def _within(ip: Address, address: Address, prefix: str) -> bool:
    """``ip`` is ``address``, or in its /prefix network (SPF's a/24 and mx/24)."""
    if not prefix or ip.version != address.version:
        return ip == address
    try:
        return ip in ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    except ValueError:
        return False


@dataclass
class SpfEvaluator:
    lookup: Lookup
    lookups: int = 0

    def evaluate(self, domain: str, ip: Address, depth: int = 0) -> str:
        """'pass', 'fail', 'softfail', 'neutral', 'none' or 'permerror: why' for ``ip``."""
        records = [r for r in self.lookup.txt(domain) if r.lower().startswith("v=spf1")
                   and (len(r) == 6 or r[6] == " ")]
        if not records:
            return "none" if depth == 0 else f"permerror: {domain} has no SPF record"
        if len(records) > 1:
            return f"permerror: {domain} has {len(records)} SPF records (one is allowed)"
        redirect = ""
        for term in records[0].split()[1:]:
            qualifier = term[0] if term[0] in "+-~?" else "+"
            mechanism = term.lstrip("+-~?")
            name, _, value = mechanism.partition(":")
            name, _, cidr = name.lower().partition("/")  # a/24, mx/24
            value = value or (f"{domain}/{cidr}" if cidr else "")
            if name.startswith("redirect="):
                redirect = mechanism.split("=", 1)[1]
                continue
            if "=" in name:  # exp= and unknown modifiers
                continue
            if name in ("include", "a", "mx", "exists", "ptr"):
                self.lookups += 1
                if self.lookups > SPF_LOOKUP_LIMIT:
                    return f"permerror: more than {SPF_LOOKUP_LIMIT} DNS lookups"
            matched: bool | str
            if name == "all":
                matched = True
            elif name in ("ip4", "ip6"):
                try:
                    matched = ip in ipaddress.ip_network(value, strict=False)
                except ValueError:
                    return f"permerror: bad {term}"
            elif name in ("a", "mx"):
                target, _, prefix = (value or domain).partition("/")
                hosts = [target] if name == "a" else self.lookup.mx(target)
                matched = any(_within(ip, address, prefix) for host in hosts
                              for address in self.lookup.addresses(host))
            elif name == "include":
                result = self.evaluate(value, ip, depth + 1)
                if result.startswith("permerror"):
                    return result
                matched = result == "pass"
            elif name in ("exists", "ptr"):
                matched = False  # not evaluated: macros and reverse DNS are beyond a preflight
            else:
                return f"permerror: unknown mechanism {term}"
            if matched:
                return {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}[qualifier]
        if redirect:
            self.lookups += 1
            return self.evaluate(redirect, ip, depth + 1)
        return "neutral"


def relay_addresses(config: Config, lookup: Lookup, smtp_url: str | None) -> tuple[str, list[Address]]:
    """The relay's host and addresses, when they can be known (not the local capture inbox)."""
    try:
        url = parse_smtp_url(config.smtp_url(smtp_url))
    except GigoError:
        return "", []
    if url.is_loopback:
        return url.host, []
    try:
        return url.host, [ipaddress.ip_address(url.host)]
    except ValueError:
        return url.host, lookup.addresses(url.host)


def check_spf(domain: str, lookup: Lookup, relay: str, addresses: list[Address]) -> Finding:
    subject = f"SPF {domain}"
    records = [r for r in lookup.txt(domain) if r.lower().startswith("v=spf1")]
    if not records:
        return Finding.fail("dns", subject, "no SPF record: publish TXT "
                                            f'"v=spf1 include:<your provider> -all" at {domain}')
    if len(records) > 1:
        return Finding.fail("dns", subject, f"{len(records)} SPF records; receivers treat that as an error: "
                                            "merge them into one")
    if relay and not addresses and not is_loopback(relay):
        return Finding.fail("dns", subject, f"the relay {relay} has no address in DNS; check [smtp] url")
    if not addresses:
        why = "the relay is this machine" if relay else "no relay configured"
        return Finding.ok("dns", subject, f"{records[0]} (relay not checked: {why})")
    results = {str(ip): SpfEvaluator(lookup).evaluate(domain, ip) for ip in addresses}
    bad = {ip: r for ip, r in results.items() if r != "pass"}
    if bad:
        ip, result = next(iter(bad.items()))
        return Finding.fail("dns", subject, f"does not allow the relay {relay} ({ip}): {result}; add its "
                                            "provider's include: or ip4: to the record")
    return Finding.ok("dns", subject, f"allows the relay {relay} ({', '.join(results)})")


def check_dkim(config: Config, lookup: Lookup) -> list[Finding]:
    from_domain = config.newsletter.from_domain
    try:
        signer = signer_for(config)
    except GigoError as exc:
        return [Finding.fail("dns", "DKIM", str(exc))]
    if signer is None:
        return [Finding.fail("dns", "DKIM", "messages are not signed: run 'gigo-mail dkim keygen', publish "
                                            "the record and add [dkim] to gigo-mail.toml")]
    findings = []
    for key in signer.keys:
        findings.append(_dkim_record(f"{key.selector}._domainkey.{signer.domain}", key.key, lookup))
    strict = False
    dmarc = _dmarc_record(from_domain, lookup)
    if dmarc:
        strict = _tags(dmarc[1]).get("adkim", "r") == "s"
    if not aligned(signer.domain, from_domain, strict):
        findings.append(Finding.fail("dns", f"DKIM d={signer.domain}",
                                     f"not aligned with the From domain {from_domain}"
                                     f"{' (adkim=s)' if strict else ''}: DMARC will not count it"))
    return findings


def _dkim_record(name: str, key: PrivateKey, lookup: Lookup) -> Finding:
    subject = f"DKIM {name}"
    records = lookup.txt(name)
    if not records:
        return Finding.fail("dns", subject, "no record: publish the TXT record that "
                                            "'gigo-mail dkim keygen' printed")
    if len(records) > 1:
        return Finding.fail("dns", subject, f"{len(records)} TXT records; publish exactly one")
    tags, wanted = _tags(records[0]), _tags(public_record(key))
    if tags.get("v", "DKIM1") != "DKIM1":
        return Finding.fail("dns", subject, f"v={tags['v']}: must be DKIM1")
    if not tags.get("p"):
        return Finding.fail("dns", subject, "p= is empty: the key is revoked")
    if tags.get("k", "rsa") != wanted["k"]:
        return Finding.fail("dns", subject,
                            f"k={tags.get('k', 'rsa')} but the configured key is {wanted['k']}")
    try:
        published = base64.b64decode(tags["p"], validate=True)
    except ValueError:
        return Finding.fail("dns", subject, "p= is not valid base64 (a TXT string split mid-way?)")
    if published != base64.b64decode(wanted["p"]):
        return Finding.fail("dns", subject, "the published key does not match the configured private key")
    if "y" in tags.get("t", "").split(":"):
        return Finding.warn("dns", subject, "matches, but t=y (testing): receivers may ignore failures")
    return Finding.ok("dns", subject, f"matches the configured {wanted['k'].upper()} key")


def _dmarc_record(domain: str, lookup: Lookup) -> tuple[str, str] | None:
    """The DMARC record that applies: at _dmarc.domain, else up the tree (RFC 9989 tree walk)."""
    labels = domain.lower().rstrip(".").split(".")
    for start in range(0, max(len(labels) - 1, 1)):
        name = "_dmarc." + ".".join(labels[start:])
        records = [r for r in lookup.txt(name) if r.replace(" ", "").upper().startswith("V=DMARC1")]
        if len(records) == 1:
            return name, records[0]
    return None


def check_dmarc(domain: str, lookup: Lookup) -> Finding:
    subject = f"DMARC _dmarc.{domain}"
    found = _dmarc_record(domain, lookup)
    if found is None:
        return Finding.fail("dns", subject, 'no record: publish TXT "v=DMARC1; p=none; rua=mailto:..." '
                                            f"at _dmarc.{domain}")
    name, record = found
    subject = f"DMARC {name}"
    if not record.startswith("v=DMARC1"):
        return Finding.fail("dns", subject, "must start with 'v=DMARC1' exactly")
    tags = _tags(record)
    problems = []
    for tag in ("p", "sp", "np"):
        if tag in tags and tags[tag] not in ("none", "quarantine", "reject"):
            problems.append(f"{tag}={tags[tag]} (none, quarantine or reject)")
    for tag in ("adkim", "aspf"):
        if tag in tags and tags[tag] not in ("r", "s"):
            problems.append(f"{tag}={tags[tag]} (r or s)")
    if tags.get("t", "n") not in ("y", "n"):
        problems.append(f"t={tags['t']} (y or n)")
    for uri in (u for tag in ("rua", "ruf") for u in tags.get(tag, "").split(",") if u):
        if not uri.lower().startswith("mailto:"):
            problems.append(f"report URI {uri} (mailto: only)")
    if problems:
        return Finding.fail("dns", subject, "invalid: " + "; ".join(problems))
    notes = [f"{t}= is not in RFC 9989 ({why})" for t, why in DMARC_REMOVED.items() if t in tags]
    notes += [f"unknown tag {t}=" for t in tags if t not in DMARC_TAGS and t not in DMARC_REMOVED]
    policy = tags.get("p", "none")
    if policy == "none":
        notes.append("p=none only monitors; move to quarantine once reports look clean")
    if notes:
        return Finding.warn("dns", subject, f"p={policy}; " + "; ".join(notes))
    return Finding.ok("dns", subject,
                      f"p={policy}, adkim={tags.get('adkim', 'r')}, aspf={tags.get('aspf', 'r')}")


def check_mx(domain: str, lookup: Lookup) -> Finding:
    subject = f"MX {domain}"
    hosts = lookup.mx(domain)
    if not hosts:
        return Finding.fail("dns", subject, f"no MX: bounces to the envelope sender @{domain} have nowhere "
                                            "to go, and some receivers refuse such senders")
    return Finding.ok("dns", subject, ", ".join(hosts))


def check_dns(config: Config, resolver: dns.resolver.Resolver, smtp_url: str | None = None) -> list[Finding]:
    """Every DNS finding for the From domain (the envelope sender's too: gigo-mail uses From's address)."""
    domain = config.newsletter.from_domain
    lookup = Lookup(resolver)
    steps: list[Callable[[], list[Finding]]] = [
        lambda: [check_spf(domain, lookup, *relay_addresses(config, lookup, smtp_url))],
        lambda: check_dkim(config, lookup),
        lambda: [check_dmarc(domain, lookup)],
        lambda: [check_mx(domain, lookup)],
    ]
    findings: list[Finding] = []
    for step in steps:
        try:
            findings += step()
        except CheckError as exc:  # a dead resolver: one finding, and the rest would fail the same way
            findings.append(Finding.fail("dns", "resolver", str(exc)))
            break
    return findings
