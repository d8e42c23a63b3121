"""What was sent of each issue: the issue files joined with the journal (``gigo-mail issues``).

The join lives here, not in the command, so that a program listing issues sees what the
command shows: sent issues whose file was removed or renamed are listed too."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gigo_mail.compose.issue import list_issues
from gigo_mail.journal.deliveries import Journal, Run

__all__ = ["IssueHistory", "issue_history"]


@dataclass(frozen=True, kw_only=True)
class IssueHistory:
    """One issue and what the journal knows of it; ``sent`` is None when it was never sent."""

    key: str
    date: str
    subject: str
    has_file: bool = True
    sent: int | None = None
    failed: int = 0
    uncertain: int = 0
    last_run: Run | None = None


def issue_history(root: Path) -> list[IssueHistory]:
    """Every issue file, then every issue the journal has without a file; the journal is only read
    (listing must not create state)."""
    found = list_issues(root)
    keys = {issue.key for issue in found}
    rows = [(i.key, str(i.date or "-"), i.subject or "(no subject)", True) for i in found]
    journal = Journal.existing(root)
    if journal is None:
        return [IssueHistory(key=k, date=d, subject=s, has_file=f) for k, d, s, f in rows]
    try:
        rows += [(key, "-", "(no issue file)", False) for key in journal.issue_keys() if key not in keys]
        history = []
        for key, when, subject, has_file in rows:
            counts, runs = journal.counts(key), journal.runs(key)
            if not runs and not any(counts.values()):
                history.append(IssueHistory(key=key, date=when, subject=subject, has_file=has_file))
                continue
            history.append(IssueHistory(key=key, date=when, subject=subject, has_file=has_file,
                                        sent=counts.get("sent", 0), failed=counts.get("failed", 0),
                                        uncertain=counts.get("sending", 0),
                                        last_run=runs[-1] if runs else None))
        return history
    finally:
        journal.close()
