"""The second set of platform exports (issue 19): MailerLite, EmailOctopus, Sendy, Brevo, Mailjet,
Campaign Monitor, AWeber and Constant Contact as they are downloaded (tests/data/exports: BOMs,
CRLF, ';', quoted fields), a Mailchimp audience without tags, and lists written in German.
Recognised by their header (data/lists/platforms.toml), exactly the opted-in mailed, with the
right To: name, through a real dry run; the same files through `subscribers check` and
`unsubscribe --from`."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from gigo_mail.cli.app import app
from gigo_mail.journal.deliveries import Journal
from gigo_mail.lists.platforms import platforms
from gigo_mail.lists.reader import check_list, read_subscribers
from support import export_newsletter, to_header

EXPORTS = Path(__file__).resolve().parents[1] / "data" / "exports"
runner = CliRunner()

# file -> (recognised as, [(address, To: display name, greeting)], {skip kind: count})
EXPECTED: dict[str, tuple[str, list[tuple[str, str, str]], dict[str, int]]] = {
    "mailerlite.csv": ("MailerLite", [
        ("olivia.hansen@example.org", "Olivia Hansen", "Hello Olivia"),
        ("filip.strand@example.org", "Filip Strand", "Hello Filip")], {"unsubscribed": 3, "bounced": 1}),
    "emailoctopus.csv": ("EmailOctopus", [
        ("ella.virtanen@example.fi", "Ella Virtanen", "Hello Ella"),
        ("eino.nieminen@example.fi", "Eino Nieminen", "Hello Eino")], {"unsubscribed": 2}),
    "sendy.csv": ("Sendy", [
        ("weiming.tan@example.sg", "Tan Wei Ming", "Hello Tan"),
        ("mei.lin@example.sg", "Mei Lin", "Hello Mei")], {"unsubscribed": 3, "bounced": 1}),
    "brevo.csv": ("Brevo (Sendinblue)", [
        ("camille.martin@example.fr", "Camille Martin", "Hello Camille"),
        ("chloe.dubois@example.fr", "Chloé Dubois", "Hello Chloé"),
        ("hugo.thomas@example.fr", "Hugo Thomas", "Hello Hugo")], {"unsubscribed": 1}),
    "mailjet.csv": ("Mailjet", [
        ("lucia.garcia@example.es", "Lucía García", "Hello Lucía"),
        ("sofia.martinez@example.es", "Sofía Martínez", "Hello Sofía")], {"unsubscribed": 1}),
    "campaign_monitor.csv": ("Campaign Monitor", [
        ("liam.smith@example.com.au", "Liam Smith", "Hello Liam"),
        ("mia.white@example.com.au", "Mia White", "Hello Mia")], {"unsubscribed": 3, "bounced": 1}),
    "aweber.csv": ("AWeber", [
        ("james.miller@example.com", "James Miller", "Hello James"),
        ("susan.clark@example.com", "Susan Clark", "Hello Susan")], {"unsubscribed": 2}),
    "constant_contact.csv": ("Constant Contact", [
        ("ethan.hall@example.com", "Ethan Hall", "Hello Ethan"),
        ("kate.adams@example.com", "Kate Adams", "Hello Kate")], {"unsubscribed": 4}),
    "mailchimp_no_tags.csv": ("Mailchimp (subscribed export)", [
        ("astrid.lind@example.se", "Astrid Lind", "Hello Astrid"),
        ("erik.holm@example.se", "Erik Holm", "Hello Erik")], {}),
    "de_namen.csv": ("plain CSV", [
        ("anna.schmidt@example.de", "Anna Schmidt", "Hello Anna"),
        ("juergen.gross@example.de", "Jürgen Groß", "Hello Jürgen")], {}),
}


@pytest.fixture
def newsletter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return export_newsletter(tmp_path, monkeypatch)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_export_is_recognised_and_exactly_the_opted_in_are_mailed(newsletter: Path, name: str) -> None:
    label, mailed, skipped = EXPECTED[name]
    out = newsletter / "outbox"
    result = runner.invoke(app, ["send", "060", "--list", str(EXPORTS / name), "--dry-run",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert label in result.stdout
    shown = {line.split(":")[1].rsplit(None, 1)[0].strip(): int(line.split()[-1])
             for line in result.stdout.splitlines() if line.startswith("skipped: ")}
    assert shown == skipped
    sent = sorted(to_header(path.read_bytes()) for path in out.glob("*.eml"))
    assert [(a.lower(), n, g) for a, n, g in sent] == sorted((a.lower(), n, g) for a, n, g in mailed)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_subscribers_check_agrees_with_the_dry_run(newsletter: Path, name: str) -> None:
    label, mailed, skipped = EXPECTED[name]
    report = check_list(EXPORTS / name)
    assert report.format.startswith(label) and report.valid == len(mailed) and not report.unclear
    assert {k: v for k, v in report.skipped_counts.items() if v} == skipped


def test_every_platform_of_the_table_has_an_export_here_and_cites_its_documentation() -> None:
    labels = {label for label, _, _ in EXPECTED.values()}
    for spec in platforms():
        assert spec.label in labels, spec.key
        assert spec.docs and all(url.startswith("https://") for url in spec.docs)


def test_a_german_list_with_a_consent_column_is_refused_by_send_and_check(newsletter: Path) -> None:
    """The issue's case: `E-Mail;Vorname;Nachname;Einwilligung` (';', a BOM) was mailed in full."""
    path = EXPORTS / "de_einwilligung.csv"
    for args in (["send", "060", "--list", str(path), "--dry-run", "--out", "outbox"],
                 ["send", "060", "--list", str(path), "--yes", "--smtp", "smtp://127.0.0.1:9"],
                 ["subscribers", "check", str(path)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, result.output
        assert "cannot tell who opted out" in result.stderr
        assert "'einwilligung' ('', 'ausstehend', 'ja', 'nein', 'widerrufen')" in result.stderr
    assert not (newsletter / "outbox").exists()
    rows = list(read_subscribers(path))
    assert {r.email for r in rows if r.kind == "unclear"} == {  # type: ignore[union-attr]
        "anna.schmidt@example.de", "jonas.weber@example.de", "lea.fischer@example.de",
        "paul.wagner@example.de", "mia.becker@example.de", "felix.hoffmann@example.de"}


def test_the_german_list_with_opt_in_values_mails_only_the_yes(newsletter: Path) -> None:
    config = newsletter / "gigo-mail.toml"
    config.write_text(config.read_text() + '\n[list]\nopt_out_column = "Einwilligung"\n'
                      'opt_in_values = ["ja"]\nopt_out_values = ["nein", "widerrufen", "ausstehend", ""]\n'
                      'first_name = "Vorname"\nlast_name = "Nachname"\n')
    result = runner.invoke(app, ["send", "060", "--list", str(EXPORTS / "de_einwilligung.csv"), "--dry-run",
                                 "--out", "outbox"])
    assert result.exit_code == 0, result.output
    sent = sorted(to_header(p.read_bytes()) for p in (newsletter / "outbox").glob("*.eml"))
    assert sent == [("anna.schmidt@example.de", "Anna Schmidt", "Hello Anna"),
                    ("felix.hoffmann@example.de", "Felix Hoffmann", "Hello Felix")]


def test_unsubscribe_from_imports_the_opted_out_rows_of_each_new_platform(newsletter: Path) -> None:
    result = runner.invoke(app, ["unsubscribe", "--from", str(EXPORTS / "campaign_monitor.csv")])
    assert result.exit_code == 0, result.output
    with Journal.for_root(newsletter) as journal:
        reasons = {row.email: row.reason for row in journal.suppressions()}
    assert reasons == {
        "olivia.jones@example.com.au": "unsubscribed: imported from campaign_monitor.csv",
        "william.brown@example.com.au": "unsubscribed: imported from campaign_monitor.csv",
        "jack.taylor@example.com.au": "unsubscribed: imported from campaign_monitor.csv",
        "ava.wilson@example.com.au": "bounced: imported from campaign_monitor.csv"}


def test_a_mailchimp_export_from_a_german_account_is_still_mailchimp(newsletter: Path) -> None:
    """Mailchimp labels the address column in the account's language (E-Mail-Adresse); its system
    columns (MEMBER_RATING, UNSUB_TIME, LEID...) stay in English."""
    path = EXPORTS / "mailchimp_unsubscribed_de.csv"
    report = check_list(path)
    assert report.format == "Mailchimp (unsubscribed export)" and report.valid == 0
    assert report.skipped_counts["unsubscribed"] == 2 and not report.unclear
    result = runner.invoke(app, ["unsubscribe", "--from", str(path)])
    assert result.exit_code == 0 and "Added 2 new addresses" in result.stdout, result.output


def test_campaign_monitor_with_a_plain_date_column_is_not_taken_for_kit() -> None:
    """Campaign Monitor's subscriber has EmailAddress, Date and State (its API); Kit's export has
    email_address and state too, with states Campaign Monitor does not use."""
    from gigo_mail.lists.formats import recognise

    fmt = recognise(["email_address", "name", "date", "state"])
    assert fmt.label == "Campaign Monitor"
    assert [r.decide("Unconfirmed") for r in fmt.rules] == ["unsubscribed"]
