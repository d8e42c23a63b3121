"""A zone set for `check`'s DNS part: one domain per finding, served by dnsmasq on loopback.

Every From domain publishes what it needs except the one thing its case breaks. The relay
is smtp.relay.test (a documentation address, only compared), allowed by
include:_spf.relay.test. Each case says what `check` must conclude: ready or not, and the
subjects of the findings that must fail (or warn).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gigo_mail.send.dkim import public_record

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RELAY = "192.0.2.25"  # documentation range: only compared, never contacted
RELAY_LINES = [f"host-record=smtp.relay.test,{RELAY}",
               'txt-record=_spf.relay.test,"v=spf1 ip4:192.0.2.0/24 -all"']


def txt(name: str, value: str) -> str:
    """A dnsmasq txt-record line, split into 200-byte strings like a real zone."""
    return f"txt-record={name}," + ",".join(f'"{value[i:i + 200]}"' for i in range(0, len(value), 200))


def domain_lines(domain: str, *, spf: str | None = "v=spf1 include:_spf.relay.test -all",
                 dmarc: str | None = None, mx: bool = True, dkim: bool = True) -> list[str]:
    """A sending domain: SPF allowing the relay, the DKIM key at s1, DMARC, an MX with an address."""
    lines = []
    if spf is not None:
        lines.append(txt(domain, spf))
    if dkim:
        lines.append(txt(f"s1._domainkey.{domain}", public_record(KEY)))
    if dmarc is not None:
        lines.append(txt(f"_dmarc.{domain}", dmarc))
    if mx:
        lines += [f"mx-host={domain},mx.{domain},10", f"host-record=mx.{domain},198.51.100.7"]
    return lines


def reject(domain: str) -> str:
    return f"v=DMARC1; p=reject; rua=mailto:dmarc@{domain}"


@dataclass(frozen=True)
class Case:
    domain: str  # the From domain
    lines: list[str]
    fails: tuple[str, ...] = ()  # subjects (prefixes) that must be FAIL; empty: `check` says ready
    warns: tuple[str, ...] = ()
    says: tuple[str, ...] = ()  # phrases the failing findings must contain (the fix)
    return_path: str = ""
    verp: bool = False
    dkim_domain: str = ""
    settings: dict[str, str] = field(default_factory=dict)


SPF_OVER = ("v=spf1 include:_spf.relay.test include:a.spfover.test include:b.spfover.test "
            "include:c.spfover.test include:d.spfover.test -all")
SPF_OVER_LINES = [line for n in "abcd" for line in (
    txt(f"{n}.spfover.test", "v=spf1 a mx a:x.spfover.test -all"),
    f"host-record={n}.spfover.test,198.51.100.9",
    f"mx-host={n}.spfover.test,x.spfover.test,10")] + ["host-record=x.spfover.test,198.51.100.10"]

CASES = [
    Case("good.test", domain_lines("good.test", dmarc=reject("good.test"))),
    Case("nosemi.test", domain_lines("nosemi.test", dmarc="v=DMARC1 p=reject rua=mailto:dmarc@nosemi.test"),
         fails=("DMARC _dmarc.nosemi.test", "Gmail/Yahoo", "Outlook.com"),
         says=("not separated by ';'", '"v=DMARC1; p=reject; rua=mailto:dmarc@nosemi.test"')),
    Case("nop.test", domain_lines("nop.test", dmarc="v=DMARC1; rua=mailto:dmarc@nop.test"),
         fails=("DMARC _dmarc.nop.test",), says=("no p= tag", "read it as p=none")),
    Case("vlast.test", domain_lines("vlast.test", dmarc="p=reject; v=DMARC1"),
         fails=("DMARC _dmarc.vlast.test", "Gmail/Yahoo"), says=("must be the first tag",)),
    Case("badtag.test", domain_lines("badtag.test", dmarc="v=DMARC1; p=reject; adkim=relaxed"),
         fails=("DMARC _dmarc.badtag.test",),
         says=("adkim=relaxed (must be r or s)", "drop the invalid values and apply p=reject")),
    Case("badp.test", domain_lines("badp.test", dmarc="v=DMARC1; p=block"),
         fails=("DMARC _dmarc.badp.test", "Gmail/Yahoo"), says=("p=block", "there is no DMARC")),
    Case("twodmarc.test", domain_lines("twodmarc.test", dmarc=reject("twodmarc.test"))
         + [txt("_dmarc.twodmarc.test", "v=DMARC1; p=none")],
         fails=("DMARC", "Gmail/Yahoo"), says=("2 DMARC records",)),
    Case("nodmarc.test", domain_lines("nodmarc.test"), fails=("DMARC _dmarc.nodmarc.test", "Gmail/Yahoo")),
    Case("misaligned.test", domain_lines("misaligned.test", dmarc=reject("misaligned.test"))
         + domain_lines("other.test"), return_path="bounce@other.test", dkim_domain="other.test",
         fails=("DMARC result for misaligned.test", "Gmail/Yahoo", "Outlook.com"),
         says=("every message would be rejected (p=reject)", "not aligned")),
    Case("quarantine.test", domain_lines("quarantine.test", dmarc="v=DMARC1; p=quarantine; adkim=s")
         + domain_lines("news.quarantine.test"), dkim_domain="news.quarantine.test",
         return_path="bounce@other.quarantine2.test",
         fails=("SPF other.quarantine2.test", "DMARC result for quarantine.test"),
         says=("every message would be sent to spam", "adkim=s")),
    Case("pnone.test", domain_lines("pnone.test", dmarc="v=DMARC1; p=none; rua=mailto:d@pnone.test")
         + domain_lines("elsewhere.test"), return_path="b@elsewhere.test", dkim_domain="elsewhere.test",
         fails=("DMARC result for pnone.test", "Gmail/Yahoo", "Outlook.com"),
         says=("fails for every message",)),
    Case("rpgone.test", domain_lines("rpgone.test", dmarc=reject("rpgone.test")),
         return_path="bounce@gone.rpgone.test",
         fails=("SPF gone.rpgone.test", "MX gone.rpgone.test", "Gmail/Yahoo"), says=("does not exist",)),
    Case("verp.test", domain_lines("verp.test", dmarc=reject("verp.test"), spf="v=spf1 -all")
         + domain_lines("bounces.verp.test", dkim=False), return_path="bounce@bounces.verp.test", verp=True),
    Case("spfover.test", domain_lines("spfover.test", dmarc=reject("spfover.test"), spf=SPF_OVER)
         + SPF_OVER_LINES, warns=("SPF spfover.test",),
         says=("over the limit of 10", "news.spfover.test", "include:a.spfover.test (4 lookups)")),
    Case("spfover2.test", domain_lines("spfover2.test", dmarc=reject("spfover2.test"),
                                       spf=SPF_OVER.replace("include:_spf.relay.test ", "") + "")
         + SPF_OVER_LINES, fails=("SPF spfover2.test", "Gmail/Yahoo"),
         says=("receivers return permerror", "do not add another include")),
    Case("void.test", domain_lines("void.test", dmarc=reject("void.test"),
                                   spf="v=spf1 a:n1.void.test mx:n2.void.test include:n3.void.test "
                                       "include:_spf.relay.test -all"),
         fails=("SPF void.test",), says=("3 lookups find nothing",)),
    Case("spfsyntax.test", domain_lines("spfsyntax.test", dmarc=reject("spfsyntax.test"),
                                        spf="v=spf1 include:_spf.relay.test ip4:300.1.1.1 -all"),
         fails=("SPF spfsyntax.test", "Gmail/Yahoo"), says=("ip4:300.1.1.1 (not an IPv4",)),
    Case("news.parent.test", domain_lines("news.parent.test", dkim=False)
         + [txt("_dmarc.parent.test", "v=DMARC1; p=none; sp=reject; adkim=s; aspf=s"),
            txt("s1._domainkey.parent.test", public_record(KEY))], dkim_domain="parent.test",
         return_path="bounce@parent.test", fails=("DMARC result for news.parent.test",),
         says=("every message would be rejected (sp=reject at _dmarc.parent.test)", "adkim=s, strict")),
    Case("dkimsha1.test", domain_lines("dkimsha1.test", dmarc=reject("dkimsha1.test"), dkim=False)
         + [txt("s1._domainkey.dkimsha1.test", public_record(KEY).replace("v=DKIM1;", "v=DKIM1; h=sha1;"))],
         fails=("DKIM s1._domainkey.dkimsha1.test", "Gmail/Yahoo"), says=("h=sha1",)),
    Case("twospf.test", domain_lines("twospf.test", dmarc=reject("twospf.test"))
         + [txt("twospf.test", "v=spf1 mx -all")], fails=("SPF twospf.test", "Gmail/Yahoo"),
         says=("2 SPF records",)),
    Case("spffail.test", domain_lines("spffail.test", dmarc=reject("spffail.test"),
                                      spf="v=spf1 ip4:198.51.100.0/24 -all"),
         fails=("SPF spffail.test", "Gmail/Yahoo", "Outlook.com"), says=("does not allow the relay",)),
    Case("mxcname.test", domain_lines("mxcname.test", dmarc=reject("mxcname.test"), mx=False)
         + ["mx-host=mxcname.test,in.mxcname.test,10", "host-record=real.mxcname.test,198.51.100.8",
            "cname=in.mxcname.test,real.mxcname.test"],
         fails=("MX mxcname.test",), says=("is a CNAME", "RFC 2181 10.3")),
    Case("nullmx.test", domain_lines("nullmx.test", dmarc=reject("nullmx.test"), mx=False)
         + ["mx-host=nullmx.test,.,0"], fails=("MX nullmx.test",), says=("null MX",)),
    Case("alias.test", domain_lines("alias.test", dkim=False)
         + [txt("dmarc.provider.test", reject("alias.test")), "cname=_dmarc.alias.test,dmarc.provider.test",
            txt("s1.keys.provider.test", public_record(KEY)),
            "cname=s1._domainkey.alias.test,s1.keys.provider.test"]),
    Case("mailtoonly.test", domain_lines("mailtoonly.test", dmarc=reject("mailtoonly.test")),
         settings={"unsubscribe_url": ""}, fails=("Gmail/Yahoo",), says=("one-click unsubscribe",)),
]
ZONES = ["test"]  # every name below: the rest does not exist (and the tree walk ends at _dmarc.test)
LINES = RELAY_LINES + [line for case in CASES for line in case.lines]


def write_config(root: Path, case: Case) -> Path:
    """A gigo-mail.toml for the case (and the DKIM key beside it)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "dkim.pem").write_bytes(KEY.private_bytes(serialization.Encoding.PEM,
                                                      serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))
    newsletter = {"name": "Zone Weekly", "from": f"Zone Weekly <news@{case.domain}>",
                  "unsubscribe_url": f"https://{case.domain}/u?t={{token}}",
                  "unsubscribe_mailto": f"unsubscribe@{case.domain}", **case.settings}
    text = "[newsletter]\n" + "".join(f'{k} = "{v}"\n' for k, v in newsletter.items() if v)
    text += '[smtp]\nurl = "smtp://smtp.relay.test:587"\n'
    text += '[dkim]\nselector = "s1"\nkey_file = "dkim.pem"\n'
    if case.dkim_domain:
        text += f'domain = "{case.dkim_domain}"\n'
    if case.return_path:
        text += f'[bounces]\nreturn_path = "{case.return_path}"\nverp = {"true" if case.verp else "false"}\n'
    (root / "gigo-mail.toml").write_text(text)
    return root
