"""Platform exports as they come (tests/data/exports: BOMs, CRLF, quoted fields, opted-out rows):
recognised by their header, who is mailed, and with what To: name, through a real dry run."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from gigo_mail.cli.app import app
from gigo_mail.config import ListSettings, load_config
from gigo_mail.errors import ConfigError, ListFormatError
from gigo_mail.lists.formats import (
    UNCLEAR,
    json_fields,
    looks_like_opt_out,
    normalize_column,
    parse_tags,
    recognise,
)
from gigo_mail.lists.reader import SkippedRow, Subscriber, describe_list, read_subscribers
from support import export_newsletter, to_header

EXPORTS = Path(__file__).resolve().parents[1] / "data" / "exports"
runner = CliRunner()

# file -> (recognised as, [(address, To: display name, "Hello ..." greeting)], {skip kind: count})
EXPECTED: dict[str, tuple[str, list[tuple[str, str, str]], dict[str, int]]] = {
    "mailchimp_subscribed.csv": ("Mailchimp (subscribed export)", [
        ("ingrid.berg@example.org", "Ingrid Berg", "Hello Ingrid"),
        ("liam.oconnor@example.org", "Liam O'Connor, Jr.", "Hello Liam"),
        ("Zoe.Muller@example.org", "Zoë Müller", "Hello Zoë"),
        ("sam@example.org", "", "Hello there")], {}),
    "mailchimp_unsubscribed.csv": ("Mailchimp (unsubscribed export)", [], {"unsubscribed": 2}),
    "mailchimp_cleaned.csv": ("Mailchimp (cleaned export: hard bounces)", [], {"bounced": 1}),
    "substack.csv": ("Substack", [
        ("ana.lima@example.org", "", "Hello there"), ("ben@example.org", "", "Hello there"),
        ("dan@example.org", "", "Hello there")], {"unsubscribed": 1}),
    "buttondown.csv": ("Buttondown", [
        ("ola@example.org", "Ola Nordmann", "Hello Ola"),
        ("premium.pia@example.org", "Pia Paid", "Hello Pia"),
        ("leaving.soon@example.org", "Lars", "Hello Lars")], {"unsubscribed": 3}),
    "listmonk.csv": ("listmonk", [
        ("kari@example.org", "Kari Nordmann", "Hello Kari"), ("sven@example.org", "Sven", "Hello Sven")],
        {"unsubscribed": 2}),
    "ghost.csv": ("Ghost (members export)", [
        ("grace@example.org", "Grace Hopper", "Hello Grace"),
        ("katherine@example.org", "Katherine Johnson", "Hello Katherine")], {"unsubscribed": 2}),
    "kit.csv": ("Kit (ConvertKit)", [
        ("maja@example.org", "Maja", "Hello Maja"), ("nils@example.org", "", "Hello there")],
        {"unsubscribed": 2, "bounced": 1}),
    "beehiiv.csv": ("beehiiv", [
        ("hanna@example.org", "Hanna Virtanen", "Hello Hanna"),
        ("ivo@example.org", "Ivo de Vries", "Hello Ivo")],
        {"unsubscribed": 2}),
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
    # an export of opted-out rows only leaves nobody to send to: exit 1, saying so
    assert result.exit_code == (0 if mailed else 1), result.output
    assert mailed or "nobody to send to" in result.output
    assert label in result.stdout
    shown = {line.split(":")[1].rsplit(None, 1)[0].strip(): int(line.split()[-1])
             for line in result.stdout.splitlines() if line.startswith("skipped: ")}
    assert shown == skipped
    sent = sorted(to_header(path.read_bytes()) for path in out.glob("*.eml")) if mailed else []
    assert sent == sorted(mailed)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_skipped_rows_are_counted_per_reason_with_their_lines(name: str) -> None:
    _, mailed, skipped = EXPECTED[name]
    rows = list(read_subscribers(EXPORTS / name))
    kinds: dict[str, int] = {}
    for row in rows:
        if isinstance(row, SkippedRow):
            kinds[row.kind] = kinds.get(row.kind, 0) + 1
            assert row.line >= 2 and row.reason
    assert kinds == skipped
    assert len([r for r in rows if isinstance(r, Subscriber)]) == len(mailed)


def test_every_export_starts_with_a_bom_or_uses_crlf_as_exported() -> None:
    raw = {p.name: p.read_bytes() for p in EXPORTS.glob("*.csv")}
    assert sum(data.startswith(b"\xef\xbb\xbf") for data in raw.values()) >= 6
    assert sum(b"\r\n" in data for data in raw.values()) >= 7


def test_fields_from_json_columns_tags_and_names() -> None:
    kari, *_ = (r for r in read_subscribers(EXPORTS / "listmonk.csv") if isinstance(r, Subscriber))
    assert kari.fields["city"] == "Bergen" and kari.fields["plan"] == "paid"
    assert (kari.fields["first_name"], kari.fields["last_name"]) == ("Kari", "Nordmann")
    ingrid = next(r for r in read_subscribers(EXPORTS / "mailchimp_subscribed.csv")
                  if isinstance(r, Subscriber))
    assert ingrid.tags == ("paid", "beta") and ingrid.fields["tags"] == "paid, beta"
    assert ingrid.fields["first_name"] == ingrid.fields["first name"] == "Ingrid"  # both spellings
    grace = next(r for r in read_subscribers(EXPORTS / "ghost.csv") if isinstance(r, Subscriber))
    assert grace.tags == ("VIP", "beta") and grace.fields["note"] == "Early backer, met in person"


def test_mailchimp_unsubscribed_export_gives_every_row_the_same_reason() -> None:
    rows = list(read_subscribers(EXPORTS / "mailchimp_unsubscribed.csv"))
    assert [(r.line, r.kind) for r in rows if isinstance(r, SkippedRow)] == [(2, "unsubscribed"),
                                                                          (3, "unsubscribed")]
    assert all("unsubscribed export" in r.reason for r in rows if isinstance(r, SkippedRow))


@pytest.mark.parametrize(("header", "key"), [
    (["email", "active_subscription", "expiry", "email_disabled", "prefer_digests", "created_at"],
     "substack"),
    (["id", "email", "name", "note", "subscribed_to_emails", "complimentary_plan", "stripe_customer_id",
      "created_at", "deleted_at", "labels", "products"], "ghost"),  # older Ghost: products, not tiers
    (["email_address", "first_name", "state", "created_at"], "kit"),
    (["email", "name", "city"], "plain"),
])
def test_recognised_by_the_columns_that_matter(header: list[str], key: str) -> None:
    assert recognise(header).key == key


def test_normalize_and_opt_out_looking_columns() -> None:
    assert normalize_column(" First Name ") == "first_name" and normalize_column("E-mail") == "e_mail"
    assert [c for c in ("status", "gdpr_consent", "do_not_email", "email_opt_out", "city", "unsub_reason",
                        "created_at") if looks_like_opt_out(c)] == [
        "status", "gdpr_consent", "do_not_email", "email_opt_out", "unsub_reason"]


def test_an_uncovered_opt_out_column_makes_its_values_unclear(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text("email,name,Marketing Consent,Unsubscribed\nann@example.org,Ann,yes,\n"
                    "bob@example.org,Bob,,\ncy@example.org,Cy,withdrawn,\ndee@example.org,Dee,2024-05-01,\n"
                    "eve@example.org,Eve,2024-05-01,yes\n", encoding="utf-8")
    rows = list(read_subscribers(path))
    # A consent column must say yes: an empty cell is unclear too, a date is when they said it.
    # An opt-out column says no: an empty cell claims nothing.
    assert [(r.email, r.kind, r.column, r.value) for r in rows if isinstance(r, SkippedRow)] == [
        ("ann@example.org", UNCLEAR, "marketing_consent", "yes"),
        ("bob@example.org", UNCLEAR, "marketing_consent", ""),
        ("cy@example.org", UNCLEAR, "marketing_consent", "withdrawn"),
        ("eve@example.org", UNCLEAR, "unsubscribed", "yes")]
    assert [r.email for r in rows if isinstance(r, Subscriber)] == ["dee@example.org"]


def test_custom_format_from_the_config(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text("E-Post;Vorname;Einwilligung;Gruppen\nann@example.org;Ann;ja;\"a, b\"\n"
                    "bob@example.org;Bob;nein;\ncy@example.org;Cy;vielleicht;\n", encoding="utf-8")
    settings = ListSettings(email="E-Post", first_name="Vorname", tags="Gruppen",
                            opt_out_column="Einwilligung", opt_out_values=("nein",), opt_in_values=("ja",))
    rows = list(read_subscribers(path, settings=settings))
    ann = rows[0]
    assert isinstance(ann, Subscriber) and ann.name == "Ann" and ann.fields["first_name"] == "Ann"
    assert ann.tags == ("a", "b")
    assert [(r.email, r.kind) for r in rows[1:]] == [("bob@example.org", "unsubscribed"),
                                                      ("cy@example.org", UNCLEAR)]
    assert describe_list(path, settings).format.label.startswith("custom")


def test_custom_format_naming_a_missing_column_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text("email\nann@example.org\n", encoding="utf-8")
    with pytest.raises(ListFormatError, match=r"\[list\] opt_out_column = 'consent' is not a column"):
        read_subscribers(path, settings=ListSettings(opt_out_column="consent", opt_out_values=("no",)))


def test_not_opt_out_releases_a_column_that_only_looks_like_one(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text("email,state\nann@example.org,CA\n", encoding="utf-8")
    assert isinstance(next(read_subscribers(path)), SkippedRow)
    assert isinstance(next(read_subscribers(path, settings=ListSettings(not_opt_out=("state",)))), Subscriber)


@pytest.mark.parametrize(("cell", "tags"), [
    ('"tag one","tag, two"', ("tag one", "tag, two")), ("VIP, beta", ("VIP", "beta")),
    ("a; b", ("a", "b")), ('["x", "y", "x"]', ("x", "y")), ("", ())])
def test_tags_as_each_platform_writes_them(cell: str, tags: tuple[str, ...]) -> None:
    assert parse_tags(cell) == tags


def test_json_fields_flatten_and_ignore_non_objects() -> None:
    assert json_fields('{"City": "Oslo", "plan": {"tier": "gold"}, "vip": true, "n": null}') == {
        "city": "Oslo", "plan_tier": "gold", "vip": "true", "n": ""}
    assert json_fields("not json") == {} and json_fields("{broken") == {}


def test_a_kit_state_kit_does_not_have_is_unclear_not_guessed(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text("email_address,first_name,state\nann@example.org,Ann,CA\nbob@example.org,Bob,active\n",
                    encoding="utf-8")
    assert describe_list(path).format.key == "kit"
    skipped = [(r.kind, r.value) for r in read_subscribers(path) if isinstance(r, SkippedRow)]
    assert skipped == [(UNCLEAR, "CA")]


@pytest.mark.parametrize(("toml", "message"), [
    ('[list]\nopt_out_values = "no"\n',
     "gigo-mail.toml:4:18: [list] opt_out_values is 'no', not a list of strings"),
    ("[list]\nopt_out_colum = 'x'\n",
     "gigo-mail.toml:4:17: unknown setting 'opt_out_colum' in [list] — did you mean 'opt_out_column'?"),
    ("[suppression]\nsoft_bounces = 0\n", "gigo-mail.toml:4:16: [suppression] soft_bounces is 0, below 1"),
])
def test_list_settings_errors_are_one_line(tmp_path: Path, toml: str, message: str) -> None:
    (tmp_path / "gigo-mail.toml").write_text('[newsletter]\nname = "N"\n' + toml, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
