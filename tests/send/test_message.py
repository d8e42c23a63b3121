"""The per-recipient message bytes: structure, headers, escaping and injection safety."""

from __future__ import annotations

import binascii
import html
import os
import re
import shutil
import subprocess
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path

import pytest

from gigo_mail.compose.compile import compile_issue
from gigo_mail.compose.issue import find_issue
from gigo_mail.config import load_config
from gigo_mail.errors import ConfigError
from gigo_mail.lists.reader import sample_subscriber
from gigo_mail.send.message import MessageFactory
from gigo_mail.send.tokens import verify_token
from gigo_mail.transport.wire import dot_stuff
from support import GIF, make_newsletter, write_image_issue, write_issue

SECRET = b"test-secret"


def parse(data: bytes) -> EmailMessage:
    return message_from_bytes(data, policy=policy.default)  # type: ignore[return-value]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_newsletter(tmp_path_factory.mktemp("news"))


@pytest.fixture(scope="module")
def factory(root: Path) -> MessageFactory:
    return MessageFactory(compile_issue(load_config(root), find_issue(root, "011")), secret=SECRET)


def test_structure_and_required_headers(factory: MessageFactory) -> None:
    built = factory.build(sample_subscriber("ana@example.org", "Ana Souza"))
    assert b"\n" not in built.data.replace(b"\r\n", b"")  # CRLF only
    msg = parse(built.data)
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    for name in ("From", "To", "Subject", "Date", "Message-ID"):
        assert len(msg.get_all(name) or []) == 1, name
    assert msg["From"] == "GIGO Tech Trends <newsletter@gigo.dev>"
    assert msg["To"] == "Ana Souza <ana@example.org>"
    assert msg["Reply-To"] == "contact@gigo.dev"
    assert msg["List-Id"] == "GIGO Tech Trends <tech-trends.gigo.dev>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert built.message_id == msg["Message-ID"]
    assert built.message_id.startswith("<") and built.message_id.endswith("@gigo.dev>")


def test_list_unsubscribe_is_plain_uris_with_a_valid_token(factory: MessageFactory) -> None:
    built = factory.build(sample_subscriber("Bob@Example.org", "Bob"))
    raw_header = built.data.split(b"List-Unsubscribe: ", 1)[1].split(b"\r\n", 2)
    assert b"=?" not in raw_header[0] + raw_header[1]
    value = parse(built.data)["List-Unsubscribe"]
    https, mailto = [u.strip().strip("<>") for u in value.split(",")]
    assert https.startswith("https://gigo.dev/unsubscribe?token=")
    # the reader's own tokenised address (answers.proof checks it); no address inside, in any encoding
    assert re.fullmatch(r"mailto:unsubscribe\+011\.[0-9a-f]{20}@gigo\.dev\?subject=unsubscribe",
                        mailto), mailto
    token = https.split("token=", 1)[1]
    assert verify_token(SECRET, token) == "bob@example.org"
    assert https in parse(built.data).get_body(("html",)).get_content()  # the visible link is the same


def test_bodies_round_trip_exactly(factory: MessageFactory) -> None:
    sub = sample_subscriber("chen@example.org", "陈伟")
    msg = parse(factory.build(sub).data)
    url = factory.unsubscribe_link(sub.email)
    values = factory.compiled.values(sub.fields, sub.name, sub.email, url)
    expected_html = factory.compiled.html.fill([html.escape(v) for v in values])
    expected_text = factory.compiled.text.fill(values)
    assert msg.get_body(("html",)).get_content().replace("\r\n", "\n") == expected_html
    assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n") == expected_text
    assert max(len(line) for line in factory.build(sub).data.split(b"\r\n")) <= 998


def test_unique_message_ids(factory: MessageFactory) -> None:
    ids = {factory.build(sample_subscriber(f"u{i}@example.org")).message_id for i in range(300)}
    assert len(ids) == 300


def test_crlf_in_name_cannot_create_a_header(factory: MessageFactory) -> None:
    sub = sample_subscriber("eve@example.org")
    evil = type(sub)(line=2, email=sub.email, key=sub.key, smtp_address=sub.smtp_address,
                     needs_smtputf8=False, name="Eve\r\nBcc: victim@example.com\nX-Evil: 1",
                     fields={**sub.fields, "name": "Eve\r\nBcc: victim@example.com"})
    data = factory.build(evil).data
    msg = parse(data)
    assert msg["Bcc"] is None and msg["X-Evil"] is None
    assert b"\r\nBcc:" not in data and b"\r\nX-Evil:" not in data
    assert "Eve" in msg["To"] and "victim@example.com" in msg["To"]  # kept as display text, one line


def test_non_ascii_names_are_rfc2047_and_idn_is_punycode(factory: MessageFactory) -> None:
    built = factory.build(sample_subscriber("bjorn@exämple.org", "Björn Åström"))
    assert built.data.startswith(b"To: =?utf-8?")
    msg = parse(built.data)
    assert msg["To"] == "Björn Åström <bjorn@xn--exmple-cua.org>"
    built.data.decode("ascii")  # the whole message stays ASCII


def test_utf8_local_part_keeps_utf8_address(factory: MessageFactory) -> None:
    sub = sample_subscriber("björn@example.org", "Björn")
    assert sub.needs_smtputf8
    data = factory.build(sub).data
    assert "björn@example.org".encode() in data.split(b"\r\n\r\n", 1)[0]


def test_test_mode_prefixes_subject_and_fills_samples(root: Path) -> None:
    write_issue(root, "030.md", "subject: For {{ subscriber.name }}\npreheader: p",
                "Hi {{ subscriber.name }} in {{ subscriber.city }}\n")
    compiled = compile_issue(load_config(root), find_issue(root, "30"))
    factory = MessageFactory(compiled, secret=SECRET, test=True)
    msg = parse(factory.build(sample_subscriber("me@example.org")).data)
    assert msg["Subject"] == "[TEST] For Ada Lovelace"
    assert "Hi Ada Lovelace in [city]" in msg.get_body(("plain",)).get_content()
    real = MessageFactory(compiled, secret=SECRET)
    msg = parse(real.build(sample_subscriber("x@example.org", "Xi", fields={"city": "Oslo"})).data)
    assert msg["Subject"] == "For Xi"
    assert "Hi Xi in Oslo" in msg.get_body(("plain",)).get_content()


def test_embedded_images_travel_as_related_parts(root: Path) -> None:
    write_image_issue(root, "031")
    compiled = compile_issue(load_config(root), find_issue(root, "31"))
    msg = parse(MessageFactory(compiled, secret=SECRET).build(sample_subscriber("a@example.org")).data)
    types = [p.get_content_type() for p in msg.walk()]
    assert types == ["multipart/alternative", "text/plain", "multipart/related", "text/html", "image/gif"]
    image = list(msg.walk())[-1]
    assert image.get_content() == GIF
    assert f"cid:{image['Content-ID'].strip('<>')}" in msg.get_body(("html",)).get_content()


def test_unsubscribe_is_required(root: Path, tmp_path: Path) -> None:
    config = load_config(root)
    compiled = compile_issue(config, find_issue(root, "011"))
    from dataclasses import replace
    bare = replace(compiled, config=replace(config, newsletter=replace(
        config.newsletter, unsubscribe_url="", unsubscribe_mailto="")))
    with pytest.raises(ConfigError, match="unsubscribe"):
        MessageFactory(bare, secret=SECRET)


def test_linked_images_are_not_attached(tmp_path: Path) -> None:
    root = make_newsletter(tmp_path)
    write_image_issue(root, "032", images="link")
    compiled = compile_issue(load_config(root), find_issue(root, "32"))
    msg = parse(MessageFactory(compiled, secret=SECRET).build(sample_subscriber("a@example.org")).data)
    assert [p.get_content_type() for p in msg.walk()] == ["multipart/alternative", "text/plain", "text/html"]
    assert 'src="https://gigo.dev/issues/032/dot.gif"' in msg.get_body(("html",)).get_content()


def test_mailto_only_unsubscribe(root: Path) -> None:
    from dataclasses import replace
    config = load_config(root)
    compiled = compile_issue(config, find_issue(root, "011"))
    mailto_only = replace(compiled, config=replace(config, newsletter=replace(config.newsletter,
                                                                             unsubscribe_url="")))
    msg = parse(MessageFactory(mailto_only, secret=SECRET).build(sample_subscriber("a@example.org")).data)
    assert re.fullmatch(r"<mailto:unsubscribe\+011\.[0-9a-f]{20}@gigo\.dev\?subject=unsubscribe>",
                        msg["List-Unsubscribe"])
    assert msg["List-Unsubscribe-Post"] is None  # one-click needs an https URI


def test_the_mailto_token_can_be_turned_off_for_a_mailbox_without_plus_addresses(tmp_path: Path) -> None:
    plain = make_newsletter(tmp_path / "plain")
    config = plain / "gigo-mail.toml"
    config.write_text(config.read_text() + "\n[unsubscribe]\nmailto_token = false\n")
    factory = MessageFactory(compile_issue(load_config(plain), find_issue(plain, "011")), secret=SECRET)
    value = parse(factory.build(sample_subscriber("a@example.org")).data)["List-Unsubscribe"]
    assert value.startswith("<https://")
    assert value.endswith(", <mailto:unsubscribe@gigo.dev?subject=unsubscribe>")
    config.write_text(config.read_text().replace("mailto_token = false", 'mailto_token = "no"'))
    with pytest.raises(ConfigError, match=r"\[unsubscribe\] mailto_token is .no., not true or false"):
        load_config(plain)


# --- RFC 5322 / 2047 / 2045 line limits, for any name and any address -------------------------

SCRIPTS = {"ascii": "Ann Lee ", "latin": "Zoë Ünal-Åström ", "cjk": "陈伟东京都", "arabic": "محمد علي "}
LENGTHS = (1, 45, 46, 200, 5000)


def _name(script: str, length: int) -> str:
    seed = SCRIPTS[script]
    return (seed * (length // len(seed) + 1))[:length].strip() or seed[0]


def _address(length: int) -> str:
    domain = "@ex.io"  # 6 characters: "a@ex.io" is the shortest at 7; the local part grows
    return "a" * max(1, length - len(domain)) + domain


def _check_limits(data: bytes) -> EmailMessage:
    lines = data.split(b"\r\n")
    assert max(len(line) for line in lines) <= 998
    head, body = data.split(b"\r\n\r\n", 1)
    assert max(len(line) for line in head.split(b"\r\n")) <= 998
    for word in head.replace(b"\r\n ", b" ").replace(b"\r\n", b" ").split(b" "):
        if word.startswith(b"=?"):
            assert len(word) <= 75, word
    qp_lines = [line for line in body.split(b"\r\n") if not line.startswith(b"--")]
    assert max(len(line) for line in qp_lines) <= 76
    msg = parse(data)
    assert not msg.defects
    for part in msg.walk():
        assert not part.defects, part.defects
        for name, value in part.items():
            assert not getattr(value, "defects", ()), (name, value.defects)
    return msg


def _display_name(data: bytes) -> str:
    """The To display name as RFC 2047 6.2 decodes it: the space between two adjacent encoded
    words is not part of the text. (policy.default's address parser keeps that space, a CPython
    quirk; the legacy decoder follows the RFC, as mail clients do.)"""
    raw = message_from_bytes(data, policy=policy.compat32)["To"]
    display, _ = parseaddr(raw)
    return str(make_header(decode_header(display)))


@pytest.fixture(scope="module")
def name_factory(root: Path) -> MessageFactory:
    write_issue(root, "070.md", "number: 70\ntitle: Names\nsubject: Hi {{ subscriber.name }}\npreheader: p",
                "Hello {{ subscriber.name }} ({{ subscriber.email }}), thanks.\n")
    return MessageFactory(compile_issue(load_config(root), find_issue(root, "070")), secret=SECRET)


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_names_of_any_length_fold_and_decode_exactly(name_factory: MessageFactory, script: str) -> None:
    for length in LENGTHS:
        name = _name(script, length)
        data = name_factory.build(sample_subscriber("ann@example.org", name)).data
        msg = _check_limits(data)
        assert _display_name(data) == name
        assert msg["To"].addresses[0].addr_spec == "ann@example.org"
        assert str(msg["Subject"]) == f"Hi {name}"
        text = msg.get_body(("plain",)).get_content()
        assert f"Hello {name} (ann@example.org), thanks." in text
        html_part = msg.get_body(("html",)).get_content()
        assert f"Hello {html.escape(name)} (ann@example.org), thanks." in html_part


def test_addresses_of_every_length_keep_qp_lines_within_76(name_factory: MessageFactory) -> None:
    for length in range(6, 81):
        address = _address(length)
        msg = _check_limits(name_factory.build(sample_subscriber(address, "Ann")).data)
        assert msg["To"].addresses[0].addr_spec == address
        assert f"Hello Ann ({address}), thanks." in msg.get_body(("plain",)).get_content()


def test_a_value_filling_a_qp_line_gets_its_soft_break_within_76() -> None:
    from gigo_mail.send.message import qp

    for length in range(60, 160):
        encoded = qp(b"x" * length + "é".encode())
        assert max(len(line) for line in (encoded + b"=").split(b"\r\n")) <= 76
        assert binascii.a2b_qp(encoded.replace(b"\r\n", b"\n")) == b"x" * length + "é".encode()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("spamassassin") is None, reason="SpamAssassin is not installed")
def test_spamassassin_finds_no_hidden_text(factory: MessageFactory, tmp_path: Path) -> None:
    """The padded preheader must not read as low-contrast text (HTML_FONT_LOW_CONTRAST).
    The package's rules and plugin list (*.pre), not this machine's local.cf."""
    built = factory.build(sample_subscriber("ana@example.org", "Ana Souza"))
    (tmp_path / "site").mkdir()
    for pre in Path("/etc/spamassassin").glob("*.pre"):
        shutil.copy(pre, tmp_path / "site")
    done = subprocess.run(
        ["spamassassin", "-L", "-t", f"--siteconfigpath={tmp_path / 'site'}",
         f"--prefspath={tmp_path / 'user_prefs'}"],
        input=built.data, capture_output=True, timeout=120, check=True,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)})
    report = done.stdout.decode("utf-8", "replace")
    score = re.search(r"Content analysis details:\s+\((-?[\d.]+) points", report)
    assert score, report[-2000:]
    assert "HTML_FONT_LOW_CONTRAST" not in report and "HTML_OBFUSCATE" not in report
    assert float(score.group(1)) < 1.0


@pytest.fixture(scope="module")
def slotted(root: Path) -> MessageFactory:
    """An issue whose values start lines (after a line break, and at the start of the body)."""
    write_issue(root, "032.md", "subject: s\npreheader: p",
                "{{ subscriber.name }}\n\n.literal line\n\n{{ subscriber.city }} and {{ subscriber.name }}\n")
    return MessageFactory(compile_issue(load_config(root), find_issue(root, "32")), secret=SECRET)


@pytest.mark.parametrize("name", ["Ana", ".Dot first", "a." * 60, ".", "x" * 75 + ".tail", "Zoë .. ünïcode",
                                  "line\n.break"])
def test_wire_form_prepared_once_is_exactly_the_dot_stuffed_message(factory: MessageFactory,
                                                                    slotted: MessageFactory,
                                                                    name: str) -> None:
    """The DATA payload joined from pieces stuffed once per issue equals stuffing the whole."""
    for which in (factory, slotted):
        built = which.build(sample_subscriber("ana@example.org", name, fields={"city": ".Paris"}))
        assert built.data.count(b"\r\n.") >= 1  # both issues have lines that need stuffing
        assert built.wire == dot_stuff(built.data)
        assert built.wire.endswith(b"\r\n.\r\n")


BLANK_LINES = [("y" * (length - 1) + blank) for length in range(60, 81) for blank in (" ", "\t")]


def test_lines_ending_in_a_blank_stay_within_76_and_keep_the_blank() -> None:
    """binascii encodes a blank at a line's end as =20/=09 after measuring: a 75- or 76-character
    line ending in one came out 77-78 characters long (RFC 2045 6.7 allows 76)."""
    from gigo_mail.send.message import qp

    for line in BLANK_LINES:
        for data in (f"{line}\nnext\n".encode(), line.encode(), f"{line}\n".encode()):
            encoded = qp(data)
            lines = (encoded + b"=").split(b"\r\n")  # the soft break a slot would add after it
            assert max(len(out) for out in lines) <= 76, (len(line), lines)
            assert not any(out.endswith((b" ", b"\t")) for out in encoded.split(b"\r\n")), lines
            assert binascii.a2b_qp(encoded.replace(b"\r\n", b"\n")) == data


def test_code_blocks_with_trailing_blanks_send_within_76(root: Path) -> None:
    """The issue's case: a code block whose lines end in a space or a tab, in every message."""
    code = "\n".join(BLANK_LINES)
    write_issue(root, "071.md", "number: 71\ntitle: Code\nsubject: Code\npreheader: p",
                f"Hello {{{{ subscriber.name }}}}\n\n```\n{code}\n```\n")
    factory = MessageFactory(compile_issue(load_config(root), find_issue(root, "071")), secret=SECRET)
    msg = _check_limits(factory.build(sample_subscriber("ann@example.org", "Ann")).data)
    text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    for line in BLANK_LINES:
        assert f"{line}\n" in text, repr(line)
