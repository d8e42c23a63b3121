"""Consent and names in the languages of the big European markets (issue 19): a table of words
shipped with the package (data/lists/consent_words.toml), one test per language.

For each language, a list written in it, as a shop there would export it: its address column,
first and last name, a consent column and a status column. The consent column stops the send,
naming the column and its values, an empty cell included; the status words decide; the names
reach the To header."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from gigo_mail.errors import ListFormatError
from gigo_mail.lists.formats import recognise, unclear_message
from gigo_mail.lists.reader import SkippedRow, Subscriber, check_list, read_subscribers
from gigo_mail.lists.words import CONSENT, OPT_OUT, STATUS, fold, load, table, words

# language -> (address, first name, last name, consent, status column, a word each: mailed, unsubscribed)
LISTS: dict[str, tuple[str, str, str, str, str, str, str]] = {
    "en": ("Email Address", "First Name", "Last Name", "Marketing Consent", "Status", "active",
           "unsubscribed"),
    "de": ("E-Mail", "Vorname", "Nachname", "Einwilligung", "Status", "aktiv", "abgemeldet"),
    "fr": ("Adresse e-mail", "Prénom", "Nom", "Consentement", "Statut", "abonné", "désinscrit"),
    "es": ("Correo electrónico", "Nombre", "Apellido", "Consentimiento", "Estado", "activo", "baja"),
    "it": ("Indirizzo email", "Nome", "Cognome", "Consenso", "Stato", "iscritto", "disiscritto"),
    "nl": ("E-mailadres", "Voornaam", "Achternaam", "Toestemming", "Status", "actief", "afgemeld"),
    "pt": ("Endereço de e-mail", "Primeiro nome", "Sobrenome", "Consentimento", "Situação", "ativo",
           "descadastrado"),
    "pl": ("Adres e-mail", "Imię", "Nazwisko", "Zgoda marketingowa", "Status", "aktywny", "wypisany"),
    "sv": ("E-postadress", "Förnamn", "Efternamn", "Samtycke", "Status", "aktiv", "avregistrerad"),
    "da": ("E-mailadresse", "Fornavn", "Efternavn", "Samtykke", "Status", "aktiv", "afmeldt"),
    "nb": ("E-postadresse", "Fornavn", "Etternavn", "Samtykke", "Status", "aktiv", "avmeldt"),
    "fi": ("Sähköpostiosoite", "Etunimi", "Sukunimi", "Markkinointilupa", "Tila", "aktiivinen", "peruttu"),
    "cs": ("E-mailová adresa", "Jméno", "Příjmení", "Souhlas", "Stav", "aktivní", "odhlášen"),
}
# language -> (a yes and a no as people write them in a consent column)
ANSWERS = {"en": ("yes", "no"), "de": ("ja", "nein"), "fr": ("oui", "non"), "es": ("sí", "no"),
           "it": ("sì", "no"), "nl": ("ja", "nee"), "pt": ("sim", "não"), "pl": ("tak", "nie"),
           "sv": ("ja", "nej"), "da": ("ja", "nej"), "nb": ("ja", "nei"), "fi": ("kyllä", "ei"),
           "cs": ("ano", "ne")}


def write(path: Path, header: list[str], rows: list[list[str]], delimiter: str = ";") -> Path:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(b"\xef\xbb\xbf" + out.getvalue().encode("utf-8"))  # Excel's "CSV UTF-8": a BOM
    return path


def test_every_language_of_the_issue_is_in_the_table() -> None:
    assert set(table()) == set(LISTS) == set(words().languages)
    for language, entry in table().items():
        for key in ("consent", "opt_out", "status", "mailed", "unsubscribed", "first_name", "last_name"):
            assert entry.get(key), f"[{language}] has no {key}"


@pytest.mark.parametrize("language", sorted(LISTS))
def test_a_consent_column_in_each_language_stops_the_send_naming_it_and_its_values(
        tmp_path: Path, language: str) -> None:
    email, first, last, consent, _, _, _ = LISTS[language]
    yes, no = ANSWERS[language]
    path = write(tmp_path / f"{language}.csv", [email, first, last, consent], [
        ["ann@example.org", "Ann", "Berg", yes], ["bob@example.org", "Bob", "Lind", no],
        ["cy@example.org", "Cy", "Moe", ""]])
    report = check_list(path)
    assert report.valid == 0 and report.skipped_counts["unclear"] == 3
    [(column, values)] = report.unclear.items()
    assert words().column_kind(column) == CONSENT
    assert values == {yes, no, ""}
    message = unclear_message(str(path), report.unclear)
    assert f"'{column}'" in message and repr(yes) in message and "''" in message


@pytest.mark.parametrize("language", sorted(LISTS))
def test_names_and_the_address_column_in_each_language_are_mapped(tmp_path: Path, language: str) -> None:
    email, first, last, _, _, _, _ = LISTS[language]
    path = write(tmp_path / f"{language}.csv", [email, first, last, "City"],
                 [["Ann.Berg@Example.org", "Ann", "Berg", "Oslo"]])
    [row] = list(read_subscribers(path))
    assert isinstance(row, Subscriber)
    assert row.email == "Ann.Berg@Example.org" and row.key == "ann.berg@example.org"
    assert (row.fields["first_name"], row.fields["last_name"], row.name) == ("Ann", "Berg", "Ann Berg")


@pytest.mark.parametrize("language", sorted(LISTS))
def test_status_words_in_each_language_decide_who_is_mailed(tmp_path: Path, language: str) -> None:
    email, _, _, _, status, mailed, unsubscribed = LISTS[language]
    path = write(tmp_path / f"{language}.csv", [email, status], [
        ["ann@example.org", mailed], ["bob@example.org", unsubscribed.upper()],
        ["cy@example.org", "paused-until-spring"]], delimiter=",")
    assert words().column_kind(recognise_header(path)[1]) == STATUS
    rows = list(read_subscribers(path))
    assert [r.email for r in rows if isinstance(r, Subscriber)] == ["ann@example.org"]
    skipped = {r.email: r.kind for r in rows if isinstance(r, SkippedRow)}
    assert skipped == {"bob@example.org": "unsubscribed", "cy@example.org": "unclear"}


def recognise_header(path: Path) -> list[str]:
    from gigo_mail.lists.csv_file import CsvTable
    from gigo_mail.lists.rules import normalize_column

    table_ = CsvTable(path)
    table_.close()
    return [normalize_column(c) for c in table_.columns]


@pytest.mark.parametrize(("language", "column"), [
    ("de", "Abgemeldet"), ("de", "Newsletter-Abmeldung"), ("fr", "Désinscrit"), ("es", "Baja"),
    ("it", "Disiscritto"), ("nl", "Afgemeld"), ("pt", "Descadastrado"), ("pl", "Wypisany"),
    ("sv", "Avregistrerad"), ("da", "Afmeldt"), ("nb", "Avmeldt"), ("fi", "Peruttu"), ("cs", "Odhlášen")])
def test_an_opt_out_column_in_each_language_stops_on_any_value_but_not_on_an_empty_cell(
        tmp_path: Path, language: str, column: str) -> None:
    path = write(tmp_path / "list.csv", ["email", column],
                 [["ann@example.org", ""], ["bob@example.org", "x"]])
    assert words().column_kind(recognise_header(path)[1]) == OPT_OUT
    rows = list(read_subscribers(path))
    assert [r.email for r in rows if isinstance(r, Subscriber)] == ["ann@example.org"]
    assert [(r.email, r.kind) for r in rows if isinstance(r, SkippedRow)] == [("bob@example.org", "unclear")]


def test_the_refusal_suggests_the_setting_when_every_value_is_a_known_yes_or_no() -> None:
    message = unclear_message("list.csv", {"zgoda": {"tak", "nie", ""}})
    assert 'opt_out_column = "zgoda", opt_in_values = ["tak"], opt_out_values = ["", "nie"]' in message
    assert "opt_in_values = [" not in unclear_message("list.csv", {"zgoda": {"tak", "maybe"}})


@pytest.mark.parametrize(("header", "kind"), [
    ("HasOptedOutOfEmail", OPT_OUT), ("isUnsubscribed", OPT_OUT), ("EmailOptOut", OPT_OUT),
    ("DoNotEmail", OPT_OUT), ("Unsubscribed from all email", OPT_OUT), ("Email Opt Out", OPT_OUT),
    ("MarketingConsent", CONSENT), ("Accepts Email Marketing", CONSENT), ("GDPR", CONSENT),
    ("DOUBLE_OPT-IN", CONSENT),
    ("OPTIN_TIME", ""), ("Opens", ""), ("Subscriber", "")])
def test_opt_out_and_consent_headers_as_exports_write_them(header: str, kind: str) -> None:
    """Headers from CRMs and shops (Salesforce, HubSpot, Zoho, Shopify), camelCase included."""
    from gigo_mail.lists.rules import normalize_column

    assert words().column_kind(normalize_column(header)) == kind


def test_words_are_compared_without_case_or_accents() -> None:
    assert fold("Désinscrit") == fold("DESINSCRIT") == "desinscrit"
    assert words().status_of("ODHLÁŠEN") == words().status_of("odhlasen") == "unsubscribed"
    assert words().column_kind("prijmeni") == "" and words().column_kind("souhlas") == CONSENT


def test_a_value_that_means_two_things_is_refused_when_the_table_loads() -> None:
    with pytest.raises(ValueError, match="'nein' is both"):
        load('[a]\nmailed = ["nein"]\n[b]\nunsubscribed = ["nein"]\n')


def test_a_list_with_no_address_column_in_any_language_is_one_line(tmp_path: Path) -> None:
    path = write(tmp_path / "list.csv", ["Vorname", "Nachname"], [["Ann", "Berg"]])
    with pytest.raises(ListFormatError, match="no 'email' column"):
        list(read_subscribers(path))
    assert recognise(["e_mail", "vorname"]).aliases == {"first_name": "vorname"}
