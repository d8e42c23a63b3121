"""What `gigo-mail check` found: findings with a level, grouped by area, and the verdict."""

from __future__ import annotations

from dataclasses import dataclass, field

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
AREAS = {"dns": "DNS", "issue": "Issue", "links": "Links", "images": "Images", "compat": "Clients",
         "spam": "Spam"}


@dataclass(frozen=True)
class Finding:
    area: str  # a key of AREAS
    level: str  # OK, WARN, FAIL or SKIP
    subject: str  # what was checked: "SPF gigo.dev", "https://x/y", "Outlook"
    detail: str

    @classmethod
    def ok(cls, area: str, subject: str, detail: str = "") -> Finding:
        return cls(area, OK, subject, detail)

    @classmethod
    def warn(cls, area: str, subject: str, detail: str) -> Finding:
        return cls(area, WARN, subject, detail)

    @classmethod
    def fail(cls, area: str, subject: str, detail: str) -> Finding:
        return cls(area, FAIL, subject, detail)

    @classmethod
    def skip(cls, area: str, subject: str, detail: str) -> Finding:
        return cls(area, SKIP, subject, detail)


@dataclass
class CheckReport:
    findings: list[Finding] = field(default_factory=list)

    @property
    def failed(self) -> list[Finding]:
        return [f for f in self.findings if f.level == FAIL]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == WARN]

    @property
    def passed(self) -> bool:
        return not self.failed

    def area(self, name: str) -> list[Finding]:
        return [f for f in self.findings if f.area == name]
