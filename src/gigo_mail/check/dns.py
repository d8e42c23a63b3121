"""DNS for every identity a receiver evaluates, and what receivers will do with the mail.

A receiver looks at three domains: the envelope sender's (the return path, VERP included:
SPF against the relay, and an MX so bounces arrive), DKIM's ``d=`` (the published key),
and From's (DMARC, which needs SPF or DKIM *aligned* with it). Each record gets one
finding that names it (``SPF bounce.gigo.dev``, ``DKIM s1._domainkey.gigo.dev``), then
the outcome: whether DMARC passes, and the verdict per major receiver's rule set
(see ``receivers``). "Every message would be rejected" is a failure, never a warning.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass

import dns.resolver

from gigo_mail.check.dmarc import Policy, find_policy
from gigo_mail.check.lookup import Address, Lookup, aligned, make_resolver, organizational
from gigo_mail.check.receivers import Identities, dmarc_outcome, receiver_verdicts
from gigo_mail.check.report import Finding
from gigo_mail.check.spf import SpfEvaluator, check_spf, spf_passes
from gigo_mail.config import Config
from gigo_mail.errors import CheckError, GigoError
from gigo_mail.send.dkim import PrivateKey, public_record, signer_for
from gigo_mail.transport.url import parse_smtp_url

__all__ = ["Lookup", "SpfEvaluator", "aligned", "check_dns", "make_resolver", "organizational"]


def relay_addresses(config: Config, lookup: Lookup, smtp_url: str | None) -> tuple[str, list[Address]]:
    """The relay's host and addresses, when they can be known (not the local capture inbox)."""
    import ipaddress

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


def _tags(record: str) -> dict[str, str]:
    """``k=v; k=v`` tag lists (DKIM), keys lower-cased."""
    tags = {}
    for part in record.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            tags[key.strip().lower()] = "".join(value.split())
    return tags


def dkim_record(name: str, key: PrivateKey, lookup: Lookup) -> Finding:
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
    if "h" in tags and "sha256" not in tags["h"].lower().split(":"):
        return Finding.fail("dns", subject, f"h={tags['h']}: the key refuses SHA-256, which every signature "
                                            "uses (RFC 8301); remove h= or make it h=sha256")
    if tags.get("s", "*").lower() not in ("*", "email") and "email" not in tags["s"].lower().split(":"):
        return Finding.fail("dns", subject, f"s={tags['s']}: the key is not for email; remove s= or make "
                                            "it s=email")
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
    via = lookup.answer(name, "TXT").aliases
    return Finding.ok("dns", subject, f"matches the configured {wanted['k'].upper()} key"
                                      + (f" (via CNAME {' -> '.join(via)})" if via else ""))


def check_dmarc(domain: str, policy: Policy, problems: list[str]) -> list[Finding]:
    findings = [Finding.fail("dns", "DMARC", problem) for problem in problems]
    record = policy.record
    if record is None:
        if not problems:
            findings.append(Finding.fail("dns", f"DMARC _dmarc.{domain}", "no record: publish TXT "
                                         f'"v=DMARC1; p=none; rua=mailto:dmarc@{organizational(domain)}" at '
                                         f"_dmarc.{domain}; Gmail, Yahoo and Microsoft require one of "
                                         "bulk senders"))
        return findings
    subject = f"DMARC {record.name}"
    if record.errors:
        if record.ignored:
            effect = "receivers ignore it" + (f" and apply {policy.applied.name} instead" if policy.applied
                                              else ": there is no DMARC")
        elif record.reads_as_none:
            effect = "receivers read it as p=none"
        else:
            effect = f"receivers drop the invalid values and apply p={policy.policy}"
        findings.append(Finding.fail("dns", subject, f"invalid ({'; '.join(record.errors)}); {effect}. "
                                                     f'Publish: "{record.fix}"'))
        return findings
    notes = list(record.notes)
    if policy.policy == "none":
        notes.append(f"{policy.tag}=none only monitors; move to quarantine once reports look clean")
    applies = f" applies to {domain} (p={record.value('p', 'none')})" if policy.tag != "p" else ""
    summary = f"{policy.tag}={policy.policy}{applies}, adkim={policy.adkim}, aspf={policy.aspf}"
    if notes:
        findings.append(Finding.warn("dns", subject, f"{summary}; " + "; ".join(notes)))
    else:
        findings.append(Finding.ok("dns", subject, summary))
    return findings


def check_mx(domain: str, lookup: Lookup, role: str = "envelope sender") -> Finding:
    """Bounces to the envelope sender need an MX (or an address, RFC 5321 5.1), and no alias as MX host."""
    subject = f"MX {domain}"
    records = lookup.mx_records(domain)
    if any(host == "" for _, host in records):
        return Finding.fail("dns", subject, f"a null MX (RFC 7505): {domain} takes no mail, so bounces to "
                                            f"the {role} are lost and receivers refuse such a sender; "
                                            "publish a real MX")
    if not records:
        if not lookup.exists(domain):
            return Finding.fail("dns", subject, f"{domain} does not exist: bounces to the {role} @{domain} "
                                                "have nowhere to go, and receivers refuse such senders")
        if lookup.addresses(domain):
            return Finding.warn("dns", subject, f"no MX; bounces to the {role} go to {domain}'s own address "
                                                "(RFC 5321 5.1): publish an MX for the host that takes them")
        return Finding.fail("dns", subject, f"no MX: bounces to the {role} @{domain} have nowhere to go, and "
                                            "some receivers refuse such senders")
    hosts = [host for _, host in records]
    for host in hosts:
        chain = lookup.aliases(host)
        if chain:
            return Finding.fail("dns", subject, f"MX host {host} is a CNAME (-> {' -> '.join(chain)}); "
                                                "RFC 2181 10.3 forbids it and some MTAs refuse to deliver: "
                                                f"point the MX at {chain[-1]} itself")
        if not lookup.addresses(host):
            return Finding.fail("dns", subject, f"MX host {host} has no address: bounces cannot be delivered")
    return Finding.ok("dns", subject, ", ".join(hosts))


@dataclass
class _Run:
    config: Config
    lookup: Lookup
    smtp_url: str | None
    findings: list[Finding]

    def envelope(self) -> None:
        config, from_address = self.config, self.config.newsletter.from_address
        bounces = config.bounces
        self.return_path = bounces.envelope_base(from_address)
        self.envelope_domain = self.return_path.rpartition("@")[2].lower() or config.newsletter.from_domain
        role = ("return path" + (", VERP" if bounces.verp else "")) if bounces.return_path \
            else "envelope sender"
        self.relay, self.addresses = relay_addresses(config, self.lookup, self.smtp_url)
        self.findings.append(check_spf(self.envelope_domain, self.lookup, self.relay, self.addresses,
                                       role if bounces.return_path else ""))
        self.findings.append(check_mx(self.envelope_domain, self.lookup, role))

    def dkim(self) -> None:
        self.dkim_domain, self.dkim_ok = "", False
        try:
            signer = signer_for(self.config)
        except GigoError as exc:
            self.findings.append(Finding.fail("dns", "DKIM", str(exc)))
            return
        if signer is None:
            self.findings.append(Finding.fail("dns", "DKIM", "messages are not signed: run 'gigo-mail dkim "
                                                             "keygen', publish the record and add [dkim] to "
                                                             "gigo-mail.toml"))
            return
        self.dkim_domain = signer.domain
        results = [dkim_record(f"{key.selector}._domainkey.{signer.domain}", key.key, self.lookup)
                   for key in signer.keys]
        self.findings += results
        self.dkim_ok = results[0].level != "fail"  # the RSA signature; an Ed25519 one is extra

    def from_domain(self) -> None:
        domain = self.config.newsletter.from_domain
        self.policy, problems = find_policy(domain, self.lookup)
        self.findings += check_dmarc(domain, self.policy, problems)
        if organizational(domain) != organizational(self.envelope_domain) and not self.lookup.exists(domain):
            self.findings.append(Finding.fail("dns", f"From {domain}",
                                              "the From domain does not exist in DNS: receivers reject "
                                              "such mail"))

    def outcome(self) -> None:
        ids = Identities(from_domain=self.config.newsletter.from_domain, envelope_domain=self.envelope_domain,
                         spf_pass=spf_passes(self.lookup, self.envelope_domain, self.addresses),
                         dkim_domain=self.dkim_domain, dkim_pass=self.dkim_ok, policy=self.policy,
                         one_click=bool(self.config.newsletter.unsubscribe_url))
        self.findings += dmarc_outcome(ids)
        self.findings += receiver_verdicts(ids)


def check_dns(config: Config, resolver: dns.resolver.Resolver, smtp_url: str | None = None) -> list[Finding]:
    """Every DNS finding: envelope sender (SPF, MX), DKIM, From (DMARC), then the outcome and verdicts."""
    run = _Run(config, Lookup(resolver), smtp_url, [])
    steps: list[Callable[[], None]] = [run.envelope, run.dkim, run.from_domain, run.outcome]
    for step in steps:
        try:
            step()
        except CheckError as exc:  # a dead resolver: one finding, and the rest would fail the same way
            run.findings = [f for f in run.findings if f.subject != "resolver"]
            run.findings.append(Finding.fail("dns", "resolver", str(exc)))
            break
    return run.findings
