"""campaign.prepare_send: the [smtp] settings and the options become one prepared send."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from gigo_mail.config import Smtp, load_config
from gigo_mail.errors import ConfirmationRequired, NobodyToSendError, UnclearOptOutError
from gigo_mail.send.campaign import prepare_send, send_options
from gigo_mail.send.engine import SendOptions
from gigo_mail.send.request import SendRequest, password_for
from gigo_mail.transport import parse_smtp_url
from support import make_newsletter, write_issue

SMTP_SETTINGS = ("concurrency", "rate", "max_per_connection", "attempts", "max_errors")


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_newsletter(tmp_path / "nl")
    config = root / "gigo-mail.toml"
    text = config.read_text()
    assert "\nconcurrency = 8\n" in text
    text = text.replace("\nconcurrency = 8\n", "\nconcurrency = 3\nrate = 7\nattempts = 2\nmax_errors = 4\n")
    config.write_text(text)
    write_issue(root, "050.md", "number: 50\ntitle: Fifty\nsubject: Issue fifty\npreheader: p",
                "Hello {{ subscriber.name }} from {{ subscriber.city }}.\n")
    (root / "list.csv").write_text("email,name\na@example.com,A\nb@example.com,B\n", encoding="utf-8")
    monkeypatch.setenv("GIGO_UNSUBSCRIBE_SECRET", "s")
    for name in ("GIGO_SMTP_URL", "GIGO_SMTP_PASSWORD", "GIGO_SMTP_CAFILE"):
        monkeypatch.delenv(name, raising=False)
    return root


def test_send_options_default_to_the_smtp_settings_defaults() -> None:
    options, settings = SendOptions(), Smtp()
    assert {name: getattr(options, name) for name in SMTP_SETTINGS} == \
        {name: getattr(settings, name) for name in SMTP_SETTINGS}
    assert set(SMTP_SETTINGS) <= {f.name for f in fields(Smtp)}


def test_options_come_from_the_config_then_the_command(root: Path) -> None:
    config = load_config(root)
    options = send_options(config, SendRequest(ref="050", list_path=root / "list.csv"))
    assert (options.concurrency, options.rate, options.attempts, options.max_errors) == (3, 7.0, 2, 4)
    request = SendRequest(ref="050", list_path=root / "list.csv", rate=0.0, concurrency=5, limit=1)
    options = send_options(config, request)
    assert (options.concurrency, options.rate, options.limit, options.attempts) == (5, 0.0, 1, 2)


def test_a_dry_run_keeps_attempts_and_max_errors(root: Path) -> None:
    request = SendRequest(ref="050", list_path=root / "list.csv", dry_run=True, no_write=True)
    with prepare_send(load_config(root), request) as campaign:
        options = campaign.sender().options
        assert (options.concurrency, options.rate) == (1, 0.0)
        assert (options.attempts, options.max_errors) == (2, 4)
        assert campaign.journal is None  # no journal yet, and a dry run makes none
    assert not (root / ".gigo" / "journal.sqlite3").exists()


def test_a_list_send_is_planned_in_one_pass_with_the_lists_columns(root: Path) -> None:
    with prepare_send(load_config(root), SendRequest(ref="050", list_path=root / "list.csv")) as campaign:
        assert campaign.plan is not None and campaign.plan.to_send == 2
        assert campaign.missing_columns == ["city"]
        assert campaign.planned == 2 and campaign.records
        assert [row.email for row in campaign.rows()] == ["a@example.com", "b@example.com"]


def test_the_password_comes_from_the_environment_then_the_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GIGO_SMTP_PASSWORD", raising=False)
    url = parse_smtp_url("smtp://ann@127.0.0.1:2525")
    assert password_for(parse_smtp_url("smtp://127.0.0.1:2525"), None) is None
    assert password_for(url, lambda u: f"typed for {u.user}") == "typed for ann"
    with pytest.raises(ConfirmationRequired, match="set GIGO_SMTP_PASSWORD"):
        password_for(url, None)
    monkeypatch.setenv("GIGO_SMTP_PASSWORD", "from-env")
    assert password_for(url, None) == "from-env"


def test_requests_and_options_take_keywords_only() -> None:
    """A reorder of same-typed options must not silently change who gets mailed."""
    from gigo_mail.check.run import CheckOptions
    from gigo_mail.config import ListSettings, Smtp
    from gigo_mail.send.engine import SendOptions
    from gigo_mail.web.public import ServeLimits

    for cls, args in ((SendRequest, ("050", None)), (SendOptions, (4,)), (CheckOptions, (True,)),
                      (ServeLimits, (1.0,)), (ListSettings, ("list.csv",)), (Smtp, ("smtp://x",))):
        with pytest.raises(TypeError):
            cls(*args)


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_program_is_stopped_on_unclear_opt_outs_as_the_command_is(root: Path, dry_run: bool) -> None:
    """The refusal lives in the core: prepare_send counts the plan, and no sender can be had."""
    (root / "unclear.csv").write_text("email,status\na@example.com,active\nb@example.com,maybe later\n",
                                      encoding="utf-8")
    request = SendRequest(ref="050", list_path=root / "unclear.csv", dry_run=dry_run, no_write=True)
    with prepare_send(load_config(root), request) as campaign:
        refused = campaign.refusal()
        assert refused is not None and "maybe later" in str(refused) and "status" in str(refused)
        with pytest.raises(UnclearOptOutError):
            campaign.sender()


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_program_is_stopped_when_the_list_leaves_nobody_to_send_to(root: Path, dry_run: bool) -> None:
    """An empty plan is refused in the core too, with the count per reason; a list whose readers all
    have the issue already is not refused (nothing is left to do, which is done)."""
    (root / "gone.csv").write_text("email,status\na@example.com,unsubscribed\nb@,active\n", encoding="utf-8")
    request = SendRequest(ref="050", list_path=root / "gone.csv", dry_run=dry_run, no_write=True)
    with prepare_send(load_config(root), request) as campaign:
        refused = campaign.refusal()
        assert isinstance(refused, NobodyToSendError)
        assert "of the 2 rows" in str(refused) and "1 invalid, 1 unsubscribed" in str(refused)
        with pytest.raises(NobodyToSendError):
            campaign.sender()
