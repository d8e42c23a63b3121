"""SmtpTransport and FileTransport against a real aiosmtpd server, with handmade bytes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import SmtpServer, StalledServer, TlsFiles
from gigo_mail.errors import (
    ConfigError,
    SMTPFatalError,
    SMTPPermanentError,
    SMTPSessionRefused,
    SMTPTransientError,
    SMTPUncertainError,
)
from gigo_mail.transport import (
    FileTransport,
    SMTPConnectFailed,
    SmtpEndpoint,
    SmtpTransport,
    dot_stuff,
    parse_smtp_url,
)

SENDER = "news@gigo.example"


def message(to: str, body: str = "Hello.\r\n") -> bytes:
    return (f"From: News <{SENDER}>\r\nTo: {to}\r\nSubject: hi\r\nMessage-ID: <1@gigo.example>\r\n\r\n"
            f"{body}").encode()


def endpoint(server: SmtpServer, password: str | None = None, cafile: Path | None = None) -> SmtpEndpoint:
    return SmtpEndpoint(parse_smtp_url(server.url), password=password, timeout=5,
                        cafile=str(cafile) if cafile else None)


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


async def send_one(to: SmtpEndpoint, recipient: str) -> None:
    """One session: open, send one message to ``recipient``, close (whatever the send raised)."""
    transport = SmtpTransport(to)
    await transport.open()
    try:
        await transport.send(SENDER, recipient, message(recipient))
    finally:
        await transport.close()


# --- URL and dot-stuffing ---------------------------------------------------------------

def test_parse_smtp_url_schemes_and_defaults() -> None:
    starttls = parse_smtp_url("smtp://ann@mail.example.com:587")
    assert (starttls.host, starttls.port, starttls.user, starttls.tls) == ("mail.example.com", 587, "ann",
                                                                          "starttls")
    assert parse_smtp_url("smtps://ann%40corp@mail.example.com").port == 465
    assert parse_smtp_url("smtps://ann%40corp@mail.example.com").user == "ann@corp"
    assert parse_smtp_url("smtps://x@mail.example.com").tls == "implicit"
    assert parse_smtp_url("smtp://127.0.0.1:1025").tls == "opportunistic"
    assert str(parse_smtp_url("smtp://ann@mail.example.com:2525")) == "smtp://ann@mail.example.com:2525"


@pytest.mark.parametrize("url", ["http://x", "smtp://ann:secret@host:587", "smtp://:25", "smtp://h:notaport",
                                 "smtp://[::1", "smtp://host:0"])
def test_parse_smtp_url_refuses_bad_urls(url: str) -> None:
    with pytest.raises(ConfigError):
        parse_smtp_url(url)


def test_password_in_url_is_never_echoed() -> None:
    with pytest.raises(ConfigError) as info:
        parse_smtp_url("smtp://ann:hunter2@host:587")
    assert "hunter2" not in str(info.value)


def test_dot_stuff_fast_path_and_normalisation() -> None:
    assert dot_stuff(b".lead\r\nmid\r\n.dot\r\n") == b"..lead\r\nmid\r\n..dot\r\n.\r\n"
    assert dot_stuff(b"no newline at end") == b"no newline at end\r\n.\r\n"
    assert dot_stuff(b"bare\nlf\n.x\rcr") == b"bare\r\nlf\r\n..x\r\ncr\r\n.\r\n"


# --- SMTP ----------------------------------------------------------------------------------

def test_messages_arrive_intact_over_one_connection(any_smtp_server: SmtpServer) -> None:
    tricky = "line one\r\n.starts with a dot\r\n..two dots\r\n.\r\nend\r\n"

    async def go() -> None:
        transport = SmtpTransport(endpoint(any_smtp_server))
        await transport.open()
        assert transport.pipelining is any_smtp_server.handler.pipelining
        for i in range(20):
            reply = await transport.send(SENDER, f"r{i}@example.com", message(f"r{i}@example.com", tricky))
            assert reply.code == 250
        await transport.close()

    run(go())
    handler = any_smtp_server.handler
    assert handler.sessions == 1
    assert [m.rcpt_tos for m in handler.messages] == [[f"r{i}@example.com"] for i in range(20)]
    assert all(m.data == message(m.rcpt_tos[0], tricky) for m in handler.messages)
    assert all(m.mail_from == SENDER for m in handler.messages)


def test_rcpt_replies_become_transient_or_permanent_and_connection_survives(
        any_smtp_server: SmtpServer) -> None:
    handler = any_smtp_server.handler
    handler.rcpt_reply["gone@example.com"] = "550 5.1.1 no such user"
    handler.rcpt_reply["later@example.com"] = "451 4.7.1 try again later"

    async def go() -> tuple[BaseException, BaseException]:
        transport = SmtpTransport(endpoint(any_smtp_server))
        await transport.open()
        with pytest.raises(SMTPPermanentError) as permanent:
            await transport.send(SENDER, "gone@example.com", message("gone@example.com"))
        with pytest.raises(SMTPTransientError) as transient:
            await transport.send(SENDER, "later@example.com", message("later@example.com"))
        assert transport.is_open
        await transport.send(SENDER, "ok@example.com", message("ok@example.com"))
        await transport.close()
        return permanent.value, transient.value

    permanent, transient = run(go())
    assert (permanent.code, permanent.text) == (550, "5.1.1 no such user")  # type: ignore[attr-defined]
    assert transient.code == 451  # type: ignore[attr-defined]
    assert [m.rcpt_tos for m in handler.messages] == [["ok@example.com"]]
    assert handler.sessions == 1


def test_data_reply_451_is_transient(any_smtp_server: SmtpServer) -> None:
    any_smtp_server.handler.data_fail_first = (1, "451 4.3.0 queue full")

    async def go() -> None:
        transport = SmtpTransport(endpoint(any_smtp_server))
        await transport.open()
        committed: list[str] = []
        with pytest.raises(SMTPTransientError) as info:
            await transport.send(SENDER, "a@example.com", message("a@example.com"),
                                 before_commit=lambda: committed.append("a"))
        assert info.value.code == 451 and committed == ["a"]
        await transport.send(SENDER, "a@example.com", message("a@example.com"))
        await transport.close()

    run(go())
    assert len(any_smtp_server.messages) == 1


def test_drop_before_the_final_dot_is_transient_and_reopen_works(start_smtp: Callable[..., SmtpServer]
                                                                  ) -> None:
    server = start_smtp(pipelining=True)
    server.handler.drop_after = 2
    server.handler.drop_at = "rcpt"

    async def go() -> None:
        transport = SmtpTransport(endpoint(server))
        await transport.open()
        await transport.send(SENDER, "a@example.com", message("a@example.com"))
        await transport.send(SENDER, "b@example.com", message("b@example.com"))
        with pytest.raises(SMTPTransientError):
            await transport.send(SENDER, "c@example.com", message("c@example.com"))
        assert not transport.is_open
        await transport.open()
        await transport.send(SENDER, "c@example.com", message("c@example.com"))
        await transport.close()

    run(go())
    assert server.handler.sessions == 2
    assert [m.rcpt_tos[0] for m in server.messages] == ["a@example.com", "b@example.com", "c@example.com"]


def test_smtputf8_used_when_offered_and_refused_when_not(start_smtp: Callable[..., SmtpServer]) -> None:
    with_utf8 = start_smtp(smtputf8=True)
    without = start_smtp(smtputf8=False)
    address = "jörg@example.com"

    async def go() -> None:
        transport = SmtpTransport(endpoint(with_utf8))
        await transport.open()
        await transport.send(SENDER, address, message("x@example.com"), smtputf8=True)
        await transport.close()
        plain = SmtpTransport(endpoint(without))
        await plain.open()
        with pytest.raises(SMTPPermanentError, match="SMTPUTF8"):
            await plain.send(SENDER, address, message("x@example.com"), smtputf8=True)
        await plain.send(SENDER, "ok@example.com", message("ok@example.com"))
        await plain.close()

    run(go())
    assert with_utf8.messages[0].rcpt_tos == [address]
    assert "SMTPUTF8" in with_utf8.messages[0].mail_options
    assert [m.rcpt_tos for m in without.messages] == [["ok@example.com"]]


def test_crlf_in_envelope_address_is_refused(smtp_server: SmtpServer) -> None:
    async def go() -> None:
        transport = SmtpTransport(endpoint(smtp_server))
        await transport.open()
        with pytest.raises(SMTPPermanentError):
            await transport.send(SENDER, "a@example.com>\r\nRCPT TO:<evil@example.com", message("a"))
        await transport.close()

    run(go())
    assert smtp_server.handler.rcpt_attempts["evil@example.com"] == 0


def test_starttls_with_trusted_ca(start_smtp: Callable[..., SmtpServer], tls_files: TlsFiles) -> None:
    server = start_smtp(tls="starttls", tls_files=tls_files, pipelining=True)

    async def go() -> bool:
        transport = SmtpTransport(endpoint(server, cafile=tls_files.ca_file))
        await transport.open()
        encrypted = transport._transport.get_extra_info("sslcontext") is not None  # type: ignore[union-attr]
        await transport.send(SENDER, "a@example.com", message("a@example.com"))
        await transport.close()
        return encrypted

    assert run(go()) is True
    assert len(server.messages) == 1


def test_implicit_tls_with_auth(start_smtp: Callable[..., SmtpServer], tls_files: TlsFiles) -> None:
    server = start_smtp(tls="implicit", tls_files=tls_files, password="s3cret")

    async def go() -> None:
        transport = SmtpTransport(endpoint(server, password="s3cret", cafile=tls_files.ca_file))
        await transport.open()
        await transport.send(SENDER, "a@example.com", message("a@example.com"))
        await transport.close()

    run(go())
    assert len(server.messages) == 1


def test_untrusted_certificate_is_fatal(start_smtp: Callable[..., SmtpServer],
                                        untrusted_tls_files: TlsFiles) -> None:
    server = start_smtp(tls="starttls", tls_files=untrusted_tls_files)
    with pytest.raises(SMTPFatalError, match="TLS with 127.0.0.1"):
        run(SmtpTransport(endpoint(server, cafile=untrusted_tls_files.ca_file)).open())
    assert server.messages == []


def test_wrong_password_is_fatal_and_not_echoed(start_smtp: Callable[..., SmtpServer]) -> None:
    server = start_smtp(password="s3cret")
    with pytest.raises(SMTPFatalError) as info:
        run(SmtpTransport(endpoint(server, password="wrong-pw")).open())
    assert "refused login for 'ann'" in str(info.value)
    assert "wrong-pw" not in str(info.value)


def test_connection_refused_is_connect_failure(start_smtp: Callable[..., SmtpServer]) -> None:
    server = start_smtp()
    url = parse_smtp_url(server.url)
    server.stop()
    with pytest.raises(SMTPConnectFailed, match="refused the connection"):
        run(SmtpTransport(SmtpEndpoint(url, timeout=2)).open())
    server.stop = lambda: None  # type: ignore[method-assign]


def test_file_transport_writes_eml(tmp_path: Path) -> None:
    async def go() -> None:
        files = FileTransport(tmp_path / "outbox")
        await files.open()
        await files.send(SENDER, "a@example.com", message("a@example.com"))
        await files.send(SENDER, "b@example.com", message("b@example.com"))
        await files.close()

    run(go())
    written = sorted(p.name for p in (tmp_path / "outbox").iterdir())
    assert written == ["000001-a@example.com.eml", "000002-b@example.com.eml"]
    assert (tmp_path / "outbox" / written[1]).read_bytes() == message("b@example.com")


# --- after the final dot: uncertain, and its own timeout -----------------------------------

@pytest.mark.parametrize("pipelining", [False, True], ids=["sequential", "pipelining"])
def test_drop_after_the_final_dot_is_uncertain(start_smtp: Callable[..., SmtpServer],
                                               pipelining: bool) -> None:
    server = start_smtp(pipelining=pipelining)
    server.handler.drop_after = 1
    server.handler.drop_at = "kept"  # the server keeps the message, its 250 is lost

    async def go() -> SMTPUncertainError:
        transport = SmtpTransport(endpoint(server))
        await transport.open()
        await transport.send(SENDER, "a@example.com", message("a@example.com"))
        with pytest.raises(SMTPUncertainError) as caught:
            await transport.send(SENDER, "b@example.com", message("b@example.com"))
        assert not transport.is_open
        return caught.value

    error = run(go())
    assert not error.timed_out and "final dot" in error.text
    assert server.handler.delivered_to()["b@example.com"] == 1  # which is why it must not be retried


def test_final_reply_waits_data_timeout_not_the_command_timeout(
        start_stalled: Callable[..., StalledServer]) -> None:
    slow = start_stalled(reply_delay=0.6)  # answers the final dot after 0.6 s, like a busy MTA

    async def go(data_timeout: float) -> None:
        transport = SmtpTransport(SmtpEndpoint(parse_smtp_url(slow.url), timeout=0.3,
                                               data_timeout=data_timeout))
        await transport.open()
        try:
            await transport.send(SENDER, "a@example.com", message("a@example.com"))
        finally:
            await transport.close()

    run(go(3.0))  # 0.3 s for every other command, yet the slow 250 is heard
    with pytest.raises(SMTPUncertainError) as caught:
        run(go(0.2))
    assert caught.value.timed_out and "0.2 s" in str(caught.value)
    assert slow.received == ["a@example.com", "a@example.com"]


def test_data_timeout_defaults_to_rfc_5321_ten_minutes() -> None:
    assert SmtpEndpoint(parse_smtp_url("smtp://127.0.0.1:25")).data_timeout == 600


def test_stall_before_the_final_dot_is_transient(start_stalled: Callable[..., StalledServer]) -> None:
    stalled = start_stalled(stall_at="greeting")

    async def go() -> None:
        await SmtpTransport(SmtpEndpoint(parse_smtp_url(stalled.url), timeout=0.2)).open()

    with pytest.raises(SMTPConnectFailed, match="did not answer within 0.2 s"):
        run(go())


# --- whom a refusal is about ------------------------------------------------------------------

@pytest.mark.parametrize(("reply", "hint"), [
    ("530 5.7.0 Authentication required", "wants a login"),
    ("554 5.7.1 <b@example.com>: Relay access denied", "will not relay"),
    ("554 5.7.1 <b@example.com>: Recipient address rejected: Access denied", "will not relay"),
    ("550 5.7.8 Authentication credentials invalid", "wants a login"),
])
def test_session_refusals_at_rcpt_are_not_about_the_recipient(smtp_server: SmtpServer, reply: str,
                                                              hint: str) -> None:
    smtp_server.handler.rcpt_reply["b@example.com"] = reply
    with pytest.raises(SMTPSessionRefused) as caught:
        run(send_one(endpoint(smtp_server), "b@example.com"))
    assert hint in str(caught.value) and caught.value.code == int(reply[:3])


def test_mail_from_refused_by_an_auth_server_is_a_session_refusal(start_smtp: Callable[..., SmtpServer]
                                                                  ) -> None:
    server = start_smtp(password="s3cret")  # aiosmtpd with auth required: 530 to MAIL FROM
    anonymous = SmtpEndpoint(parse_smtp_url(f"smtp://127.0.0.1:{server.port}"), timeout=5)
    with pytest.raises(SMTPSessionRefused, match="530 5.7.0 Authentication required: the server wants"):
        run(send_one(anonymous, "a@example.com"))


@pytest.mark.parametrize(("reply", "about_recipient"), [
    ("550 5.1.1 no such user", True), ("552 5.2.2 mailbox full", True),
    ("554 5.7.1 message refused", False), ("550 no such user", False),
])
def test_permanent_refusals_say_whether_they_are_about_the_recipient(smtp_server: SmtpServer, reply: str,
                                                                    about_recipient: bool) -> None:
    smtp_server.handler.rcpt_reply["b@example.com"] = reply
    with pytest.raises(SMTPPermanentError) as caught:
        run(send_one(endpoint(smtp_server), "b@example.com"))
    assert caught.value.about_recipient is about_recipient


def test_tls_hostname_mismatch_gets_its_own_hint(start_smtp: Callable[..., SmtpServer],
                                                 tmp_path: Path) -> None:
    import ssl

    import trustme

    from conftest import TlsFiles as Files

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("mail.other.example").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server = start_smtp(tls="starttls", tls_files=Files(ca_file, context))
    with pytest.raises(SMTPFatalError, match="is not for '127.0.0.1'") as caught:
        run(SmtpTransport(endpoint(server, cafile=ca_file)).open())
    assert "GIGO_SMTP_CAFILE" not in str(caught.value)


def test_smtps_to_a_plain_port_says_use_starttls(smtp_server: SmtpServer) -> None:
    url = parse_smtp_url(f"smtps://127.0.0.1:{smtp_server.port}")
    with pytest.raises(SMTPFatalError, match="does not speak TLS from the start") as caught:
        run(SmtpTransport(SmtpEndpoint(url, timeout=5)).open())
    assert f"smtp://127.0.0.1:{smtp_server.port}" in str(caught.value)


def test_a_common_refusal_is_named_only_when_most_recipients_got_it() -> None:
    from gigo_mail.transport.replies import common_refusal

    relay = (554, "5.7.1 Relay access denied")
    assert common_refusal([relay] * 10 + [(550, "5.1.1 no such user")] * 3) == ("554 5.7.1", 10)
    assert common_refusal([relay] * 9) is None  # too few to say
    assert common_refusal([relay] * 10 + [(0, "")] * 11) is None  # not half of all failures
    assert common_refusal([(550, "no enhanced code")] * 12) == ("550", 12)
