"""The resume policy (selection.Selector), on a real journal."""

from __future__ import annotations

from pathlib import Path

from gigo_mail.journal.deliveries import Journal
from gigo_mail.send.selection import ALREADY_SENT, FAILED, NOT_FAILED, UNCERTAIN, Selector, plan_send

ISSUE = "011"


def test_resume_policy(tmp_path: Path) -> None:
    """The one resume policy, as a run applies it (sender.Selector)."""
    with Journal.for_root(tmp_path) as journal:
        journal.mark_sending(ISSUE, "sent@example.com", "sent@example.com", "<1@x>")
        journal.mark_sent(ISSUE, "sent@example.com", "sent@example.com", "<1@x>", 250, "2.0.0 queued")
        journal.mark_sending(ISSUE, "unsure@example.com", "unsure@example.com", "<2@x>")
        journal.mark_failed(ISSUE, "gone@example.com", "gone@example.com", 550, "5.1.1 no such user", True)
        journal.mark_failed(ISSUE, "busy@example.com", "busy@example.com", 451, "4.7.1 later", False)
        keys = ["sent@example.com", "unsure@example.com", "gone@example.com", "busy@example.com",
                "new@example.com"]

        def plan(retry_failed: bool, resend_uncertain: bool) -> dict[str, str | None]:
            selector = Selector(journal, ISSUE, retry_failed=retry_failed, resend_uncertain=resend_uncertain)
            return {key: selector.reason_to_skip(key) for key in keys}

        assert plan(False, False) == {"sent@example.com": ALREADY_SENT, "unsure@example.com": UNCERTAIN,
                                      "gone@example.com": FAILED, "busy@example.com": None,
                                      "new@example.com": None}
        assert plan(False, True) == {**plan(False, False), "unsure@example.com": None}
        # --retry-failed re-sends the failures (permanent or not) and nobody else; the uncertain
        # stay uncertain (counted as such, so the run does not call itself complete)
        only_failed = {"sent@example.com": NOT_FAILED, "unsure@example.com": UNCERTAIN,
                       "gone@example.com": None, "busy@example.com": None, "new@example.com": NOT_FAILED}
        assert plan(True, False) == only_failed
        assert plan(True, True) == {**only_failed, "unsure@example.com": None}
        # another issue is a separate journal entry; its first send goes to everyone
        assert Selector(journal, "012").reason_to_skip("sent@example.com") is None
        assert Selector(journal, "012", retry_failed=True).reason_to_skip("sent@example.com") == NOT_FAILED


def test_the_plan_and_the_send_run_one_loop_and_agree(tmp_path: Path) -> None:
    """Who the plan counts is who the engine mails: same skips, same resume policy, same limit."""
    import asyncio

    from gigo_mail.address import address_key as key_of
    from gigo_mail.lists.reader import SkippedRow as Skipped
    from gigo_mail.lists.reader import sample_subscriber as person
    from gigo_mail.send.engine import Sender, SendOptions
    from gigo_mail.transport.memory import MemoryTransport, Outbox

    class Built:
        def __init__(self, subscriber, message_id=None) -> None:  # type: ignore[no-untyped-def]
            self.message_id = message_id or f"<{subscriber.key}@x>"
            self.data = b"Subject: hi\r\n\r\nhi\r\n"

    rows = [person(f"r{i}@example.org") for i in range(12)]
    rows.insert(3, Skipped(4, "bad", "invalid", "not an address"))  # type: ignore[arg-type]
    with Journal(tmp_path / "j.sqlite3") as journal:
        journal.mark_sent("011", key_of("r0@example.org"), "r0@example.org", "<0@x>", 250, "ok")
        plan = plan_send(rows, Selector(journal, "011"), limit=7)
        outbox = Outbox()
        sender = Sender(issue_key="011", envelope_from="n@x.example", build=Built,
                        transport_factory=lambda: MemoryTransport(outbox), journal=journal,
                        options=SendOptions(concurrency=2, limit=7, min_rate=1000.0))
        result = asyncio.run(sender.run(rows))
    assert plan.to_send == len(outbox.sent) == 7 and plan.beyond_limit == 4
    assert plan.skipped["invalid"] == result.stats.skipped["invalid"] == 1
    assert plan.not_selected == result.stats.not_selected
