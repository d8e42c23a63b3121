"""SPF (RFC 7208) for an envelope-sender domain: does it allow the relay, and can it be evaluated at all.

Receivers evaluate SPF on the envelope sender's domain (the return path, VERP included),
never on From. Evaluation goes far enough to say whether the relay's address is allowed
(ip4, ip6, a, mx, include, redirect). The lookup count is also counted over the whole
record tree, as a receiver meeting the worst case would: past 10 every message gets a
permerror, and the advice then lowers the count instead of adding to it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from gigo_mail.check.lookup import Address, Lookup
from gigo_mail.check.report import Finding

SPF_LOOKUP_LIMIT = 10  # RFC 7208 4.6.4
VOID_LOOKUP_LIMIT = 2  # RFC 7208 4.6.4: lookups that find nothing
LOOKUP_TERMS = ("include", "a", "mx", "exists", "ptr")


def spf_records(lookup: Lookup, domain: str) -> list[str]:
    """The TXT records at ``domain`` that are SPF records (``v=spf1`` then a space or the end)."""
    return [r for r in lookup.txt(domain) if r.lower().startswith("v=spf1") and (len(r) == 6 or r[6] == " ")]


_DOMAIN_SPEC = re.compile(r"^[^\s/:]+$")
_CIDR = re.compile(r"^(//?\d{1,3}){0,2}$")
_TERM = re.compile(r"^([A-Za-z][A-Za-z0-9_.-]*)(?:([:=/])(.*))?$")


def _valid_mechanism(name: str, sep: str, value: str) -> bool:
    """include/exists with a domain; a, mx, ptr bare, with a domain, or with a CIDR length."""
    if name in ("include", "exists"):
        return sep == ":" and bool(_DOMAIN_SPEC.match(value))
    if name in ("a", "mx", "ptr"):
        return not sep or (sep == ":" and bool(value) and value[0] != "/") or (sep == "/" and
                                                                               bool(_CIDR.match(sep + value)))
    return False


def syntax_errors(record: str) -> list[str]:
    """Terms a receiver cannot parse (RFC 7208 4.6, 5, 6): any of them is a permerror for every message."""
    errors = []
    for term in record.split()[1:]:
        body = term[1:] if term[0] in "+-~?" else term
        match = _TERM.match(body)
        if not match:
            errors.append(f"{term} (not an SPF mechanism or modifier)")
            continue
        name, sep, value = match.group(1).lower(), match.group(2) or "", match.group(3) or ""
        rest = sep + value
        if sep == "=" and re.fullmatch(r"[a-z][a-z0-9_.-]*", name) and term[0] not in "+-~?":
            if name in ("redirect", "exp") and not _DOMAIN_SPEC.match(value):
                errors.append(f"{term} (no domain after '=')")
            continue  # a modifier; unknown ones are ignored (RFC 7208 6)
        if name == "all" and not rest:
            continue
        if name in ("ip4", "ip6") and sep == ":":
            try:
                network = ipaddress.ip_network(value, strict=False)
            except ValueError:
                network = None
            if network is not None and network.version == int(name[2]):
                continue
            errors.append(f"{term} (not an IPv{name[2]} address or network)")
        elif not _valid_mechanism(name, sep, value):
            errors.append(f"{term} (not an SPF mechanism or modifier)")
    return errors


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
        records = spf_records(self.lookup, domain)
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
            if name in LOOKUP_TERMS:
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


@dataclass
class SpfCost:
    """The DNS lookups a record tree costs when every term is reached (the worst case a receiver meets)."""

    lookups: int = 0
    void: int = 0  # lookups that find nothing (an include without SPF, an a: without address)
    terms: list[tuple[str, int]] = field(default_factory=list)  # (top-level term, lookups it costs)


def spf_cost(lookup: Lookup, domain: str) -> SpfCost:
    cost = SpfCost()
    for term, kind, target in _lookup_terms(lookup, domain):
        before = cost.lookups
        _term_cost(lookup, kind, target, cost, {domain.lower()}, 1)
        cost.terms.append((term, cost.lookups - before))
    return cost


def _lookup_terms(lookup: Lookup, domain: str) -> list[tuple[str, str, str]]:
    """(term, mechanism, the domain it asks) for each term of the record that costs a lookup."""
    records = spf_records(lookup, domain)
    terms = []
    for term in records[0].split()[1:] if len(records) == 1 else []:
        body = term.lstrip("+-~?")
        name = body.split(":", 1)[0].split("/", 1)[0].split("=", 1)[0].lower()
        if name in ("include", "redirect", "a", "mx"):
            separator = "=" if name == "redirect" else ":"
            target = body.split(separator, 1)[1] if separator in body else ""
            terms.append((term, name, (target.split("/", 1)[0] if name in ("a", "mx") else target) or domain))
        elif name in LOOKUP_TERMS:
            terms.append((term, name, ""))
    return terms


def _term_cost(lookup: Lookup, kind: str, target: str, cost: SpfCost, seen: set[str], depth: int) -> None:
    """Count one term's lookup, the void ones (RFC 7208 4.6.4), and an include's own terms."""
    cost.lookups += 1
    if "%" in target or depth > SPF_LOOKUP_LIMIT:  # macros are expanded per message: not counted further
        return
    if kind in ("include", "redirect"):
        if not spf_records(lookup, target):
            cost.void += 1
        elif target.lower() not in seen:
            for _term, sub_kind, sub_target in _lookup_terms(lookup, target):
                _term_cost(lookup, sub_kind, sub_target, cost, seen | {target.lower()}, depth + 1)
    elif kind == "a" and not lookup.addresses(target) or kind == "mx" and not lookup.mx(target):
        cost.void += 1


def _over_limit_advice(domain: str, cost: SpfCost, lookup: Lookup, addresses: list[Address]) -> str:
    """Lower the count: which includes to keep (they allow the relay), which to drop, the subdomain way."""
    keep = [term for term, _ in cost.terms if addresses and term.lower().lstrip("+").startswith("include:")
            and all(SpfEvaluator(lookup).evaluate(term.split(":", 1)[1], ip, 1) == "pass"
                    for ip in addresses)]
    drop = sorted(((t, n) for t, n in cost.terms if t not in keep), key=lambda item: -item[1])
    relay_part = " ".join(keep) or "include:<your relay>"
    advice = (f"do not add another include. Send the newsletter from a subdomain whose record holds only "
              f'the relay: TXT "v=spf1 {relay_part} -all" at news.{domain}, with [bounces] return_path = '
              f'"bounce@news.{domain}" (relaxed alignment keeps DMARC passing)')
    if drop:
        listed = ", ".join(f"{t} ({n} lookup{'s' if n != 1 else ''})" for t, n in drop)
        advice += f"; or drop from {domain} what no longer sends mail for it: {listed}"
    return advice + "; ip4:/ip6: terms cost no lookup"


def check_spf(domain: str, lookup: Lookup, relay: str, addresses: list[Address], role: str = "") -> Finding:
    """One finding for the SPF record of an envelope-sender ``domain`` (``role`` says which)."""
    subject = f"SPF {domain}"
    role = f" ({role})" if role else ""
    records = spf_records(lookup, domain)
    if not records:
        if not lookup.exists(domain):
            return Finding.fail("dns", subject, f"{domain}{role} does not exist in DNS: receivers refuse an "
                                                "envelope sender whose domain does not exist; publish MX and "
                                                f'TXT "v=spf1 include:<your relay> -all" at {domain}, or '
                                                "change [bounces] return_path")
        return Finding.fail("dns", subject, f"no SPF record{role}: publish TXT "
                                            f'"v=spf1 include:<your relay> -all" at {domain}')
    if len(records) > 1:
        return Finding.fail("dns", subject, f"{len(records)} SPF records{role}; receivers treat that as a "
                                            "permerror (RFC 7208 4.5): merge them into one")
    errors = syntax_errors(records[0])
    if errors:
        terms = ", ".join(errors)
        return Finding.fail("dns", subject, f"receivers cannot parse {terms}{role}: every message gets a "
                                            "permerror (RFC 7208); fix or remove those terms")
    cost = spf_cost(lookup, domain)
    results = {str(ip): SpfEvaluator(lookup).evaluate(domain, ip) for ip in addresses}
    if cost.lookups > SPF_LOOKUP_LIMIT:
        head = f"{cost.lookups} DNS lookups{role}, over the limit of {SPF_LOOKUP_LIMIT} (RFC 7208 4.6.4)"
        advice = _over_limit_advice(domain, cost, lookup, addresses)
        if results and all(r == "pass" for r in results.values()):
            return Finding.warn("dns", subject, f"{head}: the relay passes only because it matches before "
                                                f"the limit is reached; {advice}")
        return Finding.fail("dns", subject, f"{head}: receivers return permerror; {advice}")
    if cost.void > VOID_LOOKUP_LIMIT:
        return Finding.fail("dns", subject, f"{cost.void} lookups find nothing{role} (limit "
                                            f"{VOID_LOOKUP_LIMIT}, RFC 7208 4.6.4): receivers return "
                                            "permerror; remove the terms that point at names without records")
    if relay and not addresses:
        return Finding.fail("dns", subject, f"the relay {relay} has no address in DNS; check [smtp] url")
    if not addresses:
        why = "the relay is this machine" if relay else "no relay configured"
        return Finding.ok("dns", subject, f"{records[0]}{role} (relay not checked: {why})")
    bad = {ip: r for ip, r in results.items() if r != "pass"}
    if bad:
        ip, result = next(iter(bad.items()))
        room = SPF_LOOKUP_LIMIT - cost.lookups
        how = (f"add its provider's include: ({room} lookup{'s' if room != 1 else ''} left) or ip4:"
               if room > 1 else f"add ip4:{ip} (no lookups left for an include)")
        return Finding.fail("dns", subject, f"does not allow the relay {relay} ({ip}){role}: {result}; "
                                            f"{how} to the record")
    if records[0].split()[-1].lower() in ("all", "+all"):
        return Finding.warn("dns", subject, f"ends in +all{role}: anyone may send as {domain}; "
                                            "end in -all or ~all")
    return Finding.ok("dns", subject, f"allows the relay {relay} ({', '.join(results)}){role}, "
                                      f"{cost.lookups} of {SPF_LOOKUP_LIMIT} lookups")


def spf_passes(lookup: Lookup, domain: str, addresses: list[Address]) -> bool | None:
    """SPF passes for every relay address (None: the relay's addresses are not known)."""
    if not addresses:
        return None
    records = spf_records(lookup, domain)
    if len(records) != 1 or syntax_errors(records[0]):
        return False
    return all(SpfEvaluator(lookup).evaluate(domain, ip) == "pass" for ip in addresses)
