"""DNS as the preflight reads it: one resolver, answers remembered, CNAMEs kept in view.

Every identity a receiver evaluates (From, the envelope sender, DKIM's d=) asks some of
the same names, so each (name, type) is asked once per check. A missing name and an
empty answer are told apart (a return path on a domain that does not exist is its own
failure), and the CNAMEs an answer went through are kept, because an MX host that is an
alias breaks RFC 2181 10.3 and a chain of aliases is one more thing to fail.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING

import dns.exception
import dns.resolver

from gigo_mail.errors import CheckError

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList

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


@dataclass(frozen=True)
class Answer:
    records: tuple[object, ...]
    exists: bool  # False: NXDOMAIN (the name, or the end of its CNAME chain, does not exist)
    aliases: tuple[str, ...]  # the CNAME targets followed, in order (empty: no alias)


class Lookup:
    """TXT/A/AAAA/MX queries; a missing name is an empty answer, a dead resolver an error."""

    def __init__(self, resolver: dns.resolver.Resolver) -> None:
        self.resolver = resolver
        self._cache: dict[tuple[str, str], Answer] = {}

    def answer(self, name: str, rdtype: str) -> Answer:
        key = (name.lower().rstrip("."), rdtype)
        if key not in self._cache:
            self._cache[key] = self._ask(*key)
        return self._cache[key]

    def _ask(self, name: str, rdtype: str) -> Answer:
        try:
            result = self.resolver.resolve(name, rdtype, search=False, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return Answer((), False, ())
        except (dns.resolver.NoNameservers, dns.exception.Timeout) as exc:
            where = ", ".join(f"{n}:{self.resolver.port}" for n in self.resolver.nameservers)
            raise CheckError(f"no answer for {name} {rdtype} from {where} ({type(exc).__name__}); "
                             "check the network or point --dns at a working resolver") from exc
        except dns.exception.DNSException:  # a CNAME loop, a name too long: nothing usable
            return Answer((), False, ())
        aliases = tuple(str(rr.target).rstrip(".").lower()
                        for rrset in result.chaining_result.cnames for rr in rrset)
        return Answer(tuple(result.rrset or ()), True, aliases)

    def exists(self, name: str) -> bool:
        """The name exists in DNS (any record type, or none: NOERROR rather than NXDOMAIN)."""
        return self.answer(name, "TXT").exists

    def txt(self, name: str) -> list[str]:
        return [b"".join(r.strings).decode("utf-8", "replace")  # type: ignore[attr-defined]
                for r in self.answer(name, "TXT").records]

    def addresses(self, name: str) -> list[Address]:
        return [ipaddress.ip_address(r.address)  # type: ignore[attr-defined]
                for t in ("A", "AAAA") for r in self.answer(name, t).records]

    def mx(self, name: str) -> list[str]:
        return [host for _, host in self.mx_records(name)]

    def mx_records(self, name: str) -> list[tuple[int, str]]:
        """(preference, host) sorted by preference; a null MX (RFC 7505) is host ''."""
        records = [(int(r.preference), r.exchange.to_text().rstrip("."))  # type: ignore[attr-defined]
                   for r in self.answer(name, "MX").records]
        return sorted(records)

    def aliases(self, name: str) -> tuple[str, ...]:
        """The CNAME chain from ``name`` (asked as A), empty when it is no alias."""
        return self.answer(name, "A").aliases


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
