"""What receivers do with the mail, from the identities DNS gave: DMARC's result and each rule set's verdict.

DMARC passes when SPF passes for an envelope-sender domain aligned with From, or a DKIM
signature verifies for a ``d=`` aligned with From (RFC 7489 3.1, 4.2). With neither,
``p=reject`` or ``p=quarantine`` means every message is rejected or sent to spam: a failure.

The rule sets are the published ones for bulk senders, checked as far as DNS and the
configuration can tell:
- Gmail and Yahoo (February 2024, more than 5,000 messages a day): SPF and DKIM pass, a
  DMARC record (p=none is enough), From aligned with SPF or DKIM, one-click unsubscribe
  (RFC 8058).
- Microsoft outlook.com, hotmail.com, live.com (May 2025, same volume): SPF and DKIM pass,
  a DMARC record of at least p=none aligned with SPF or DKIM; mail that fails is refused
  with 550 5.7.515.
"""

from __future__ import annotations

from dataclasses import dataclass

from gigo_mail.check.dmarc import Policy
from gigo_mail.check.lookup import aligned
from gigo_mail.check.report import Finding

RULE_SETS = {  # the finding's subject: (the rules' name, one-click unsubscribe required)
    "Gmail/Yahoo 2024": ("Gmail and Yahoo bulk-sender rules (2024)", True),
    "Outlook.com 2025": ("Microsoft's rules for high-volume senders to outlook.com (2025)", False),
}


@dataclass(frozen=True)
class Identities:
    from_domain: str
    envelope_domain: str
    spf_pass: bool | None  # None: the relay is not known (the local capture inbox), so SPF was not evaluated
    dkim_domain: str  # "" when not signing
    dkim_pass: bool  # the published key matches the configured one
    policy: Policy
    one_click: bool  # List-Unsubscribe-Post is sent (an https unsubscribe URL is configured)

    @property
    def spf_aligned(self) -> bool:
        return aligned(self.envelope_domain, self.from_domain, self.policy.aspf == "s")

    @property
    def dkim_aligned(self) -> bool:
        strict = self.policy.adkim == "s"
        return bool(self.dkim_domain) and aligned(self.dkim_domain, self.from_domain, strict)

    @property
    def dmarc_pass(self) -> bool | None:
        """Whether DMARC passes; None when it hangs on the SPF result, which was not evaluated."""
        if self.dkim_pass and self.dkim_aligned:
            return True
        if not self.spf_aligned or self.spf_pass is False:
            return False
        return self.spf_pass

    def why_not(self) -> str:
        """Why neither identity aligns and passes, in a receiver's words."""
        mode = {"s": "strict", "r": "relaxed"}
        if not self.spf_aligned:
            spf = (f"SPF is for the envelope domain {self.envelope_domain}, not aligned with From "
                   f"{self.from_domain} (aspf={self.policy.aspf}, {mode[self.policy.aspf]})")
        elif self.spf_pass is False:
            spf = f"SPF does not pass for {self.envelope_domain}"
        else:
            spf = "SPF was not evaluated (no remote relay)"
        if not self.dkim_domain:
            dkim = "messages are not DKIM-signed"
        elif not self.dkim_pass:
            dkim = f"the DKIM key for d={self.dkim_domain} does not verify"
        else:
            dkim = (f"DKIM d={self.dkim_domain} is not aligned with {self.from_domain} "
                    f"(adkim={self.policy.adkim}, {mode[self.policy.adkim]})")
        return f"{spf}, and {dkim}"


def _fix(ids: Identities) -> str:
    return (f"sign with d={ids.from_domain} ([dkim] domain) and publish its key, or send with [bounces] "
            f"return_path on {ids.from_domain} (or a subdomain of it) whose SPF allows the relay")


def dmarc_outcome(ids: Identities) -> list[Finding]:
    subject = f"DMARC result for {ids.from_domain}"
    policy = ids.policy.policy
    result = ids.dmarc_pass
    if result is True:
        how = [name for name, ok in (("DKIM", ids.dkim_pass and ids.dkim_aligned),
                                     ("SPF", ids.spf_aligned and ids.spf_pass)) if ok]
        if ids.policy.applied is None:
            return [Finding.ok("dns", subject, f"no DMARC record applies yet; aligned {' and '.join(how)} "
                                               "will pass once it is published")]
        return [Finding.ok("dns", subject, f"passes through aligned {' and '.join(how)}")]
    if result is None:
        return [Finding.warn("dns", subject, f"passes only if SPF for {ids.envelope_domain} allows the "
                                             f"relay, which was not checked ({ids.why_not()}); run check "
                                             "with --smtp set to the real relay")]
    if policy in ("reject", "quarantine"):
        fate = "rejected" if policy == "reject" else "sent to spam"
        where = f"{ids.policy.tag}={policy}" + (f" at {ids.policy.applied.name}" if ids.policy.tag != "p"
                                                 and ids.policy.applied else "")
        return [Finding.fail("dns", subject, f"every message would be {fate} ({where}): {ids.why_not()}; "
                                             + _fix(ids))]
    if policy == "none":
        return [Finding.fail("dns", subject, f"fails for every message ({ids.why_not()}); p=none lets it "
                                             "through here, but bulk-sender rules require DMARC alignment; "
                                             + _fix(ids))]
    return [Finding.fail("dns", subject, f"no DMARC policy applies, and nothing aligns ({ids.why_not()}); "
                                         + _fix(ids))]


def receiver_verdicts(ids: Identities) -> list[Finding]:
    """One finding per rule set: what it requires that is missing."""
    findings = []
    for name, (rules, wants_one_click) in RULE_SETS.items():
        missing = []
        unknown = []
        if ids.spf_pass is None:
            unknown.append(f"SPF for {ids.envelope_domain} (relay not checked)")
        elif not ids.spf_pass:
            missing.append(f"SPF pass for {ids.envelope_domain}")
        if not ids.dkim_pass:
            missing.append("a DKIM signature that verifies")
        if ids.policy.applied is None:
            missing.append(f"a valid DMARC record for {ids.from_domain}")
        if ids.dmarc_pass is False:
            missing.append("From aligned with SPF or DKIM")
        if wants_one_click and not ids.one_click:
            missing.append("one-click unsubscribe (RFC 8058: set [newsletter] unsubscribe_url)")
        if missing:
            findings.append(Finding.fail("dns", name, f"{rules} not met, the mail is refused or junked: "
                                                      "missing "
                                                      + "; ".join(missing)))
        elif unknown:
            findings.append(Finding.warn("dns", name, f"{rules} met, except what was not checked: "
                                                      + "; ".join(unknown)))
        else:
            findings.append(Finding.ok("dns", name, f"{rules} met: SPF and DKIM pass, DMARC aligned"
                                                    + (", one-click unsubscribe" if wants_one_click else "")))
    return findings
