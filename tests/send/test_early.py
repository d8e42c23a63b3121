"""Connections opened while the issue compiles and the list is planned (send.early), against a
real aiosmtpd server: used by the engine when the send starts, closed unused when it does not,
and a failure to open is the same one line as when the engine opens the connection itself."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conftest import FaultyHandler, SmtpServer
from gigo_mail.cli.app import app
from gigo_mail.config import load_config
from gigo_mail.send.campaign import prepare_send
from gigo_mail.send.request import SendRequest
from support import make_newsletter, write_issue

pytestmark = pytest.mark.slow
runner = CliRunner()


class QuitCounting(FaultyHandler):
    """Counts the sessions that said QUIT and the MAIL FROM commands seen."""

    quits: int = 0
    mails: int = 0

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        self.quits += 1
        return "221 Bye"

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,
                          mail_options: list[str]) -> str:
        self.mails += 1
        return await super().handle_MAIL(server, session, envelope, address, mail_options)


@pytest.fixture
def counting_server() -> Any:
    server = SmtpServer(QuitCounting(pipelining=True)).start()
    yield server
    server.stop()


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_newsletter(tmp_path / "nl")
    config = root / "gigo-mail.toml"
    config.write_text(config.read_text().replace("\nconcurrency = 8\n", "\nconcurrency = 3\n"))
    write_issue(root, "050.md", "number: 50\ntitle: Fifty\nsubject: Issue fifty\npreheader: p",
                "Hello {{ subscriber.name }}.\n")
    monkeypatch.chdir(root)
    monkeypatch.setenv("GIGO_UNSUBSCRIBE_SECRET", "s")
    for name in ("GIGO_SMTP_URL", "GIGO_SMTP_PASSWORD", "GIGO_SMTP_CAFILE"):
        monkeypatch.delenv(name, raising=False)
    return root


def _list(root: Path, body: str) -> Path:
    path = root / "list.csv"
    path.write_text(body, encoding="utf-8")
    return path


def send(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["send", *args])
    return result.exit_code, result.stdout, result.stderr


def test_the_engine_sends_on_the_connections_opened_early(root: Path, counting_server: SmtpServer) -> None:
    path = _list(root, "email,name\n" + "".join(f"p{i}@example.com,P{i}\n" for i in range(9)))
    code, out, err = send("050", "--list", str(path), "--yes", "--smtp", counting_server.url)
    assert code == 0, err
    handler = counting_server.handler
    assert len(handler.messages) == 9 and handler.mails == 9
    assert handler.sessions == 3  # the three opened early, none opened again


def test_prepare_opens_early_and_close_quits_every_connection_unused(root: Path,
                                                                    counting_server: SmtpServer) -> None:
    path = _list(root, "email,name\na@example.com,A\n")
    request = SendRequest(ref="050", list_path=path, smtp=counting_server.url)
    with prepare_send(load_config(root), request, open_early=True) as campaign:
        assert campaign.early is not None and len(campaign.early.transports) == 3
    handler = counting_server.handler
    assert handler.sessions == 3 and handler.quits == 3
    assert handler.mails == 0 and handler.messages == []
    with prepare_send(load_config(root), request) as campaign:  # asked to wait: nothing opens
        assert campaign.early is None
    assert handler.sessions == 3


@pytest.mark.parametrize("case", ["unclear opt-outs", "nobody to send to", "already sent", "draft"])
def test_a_send_that_does_not_start_closes_its_early_connections_unused(
        root: Path, counting_server: SmtpServer, case: str) -> None:
    handler = counting_server.handler
    ref = "050"
    if case == "unclear opt-outs":
        path = _list(root, "email,name,Newsletter Consent\n"
                           "a@example.org,A,granted\nb@example.org,B,revoked\n")
    elif case == "nobody to send to":
        path = _list(root, "email,name\nnot-an-address,A\n")
    elif case == "already sent":
        path = _list(root, "email,name\na@example.org,A\n")
        assert send(ref, "--list", str(path), "--yes", "--smtp", counting_server.url)[0] == 0
        handler.quits, handler.mails, handler.sessions = 0, 0, 0
        handler.messages.clear()
    else:
        write_issue(root, "051.md", "number: 51\ntitle: Draft\nsubject: D\npreheader: p\ndraft: true",
                    "Hi.\n")
        path, ref = _list(root, "email,name\na@example.org,A\n"), "051"
    code, out, err = send(ref, "--list", str(path), "--yes", "--smtp", counting_server.url)
    assert code == (0 if case == "already sent" else 1)
    assert "Traceback" not in out + err
    assert handler.sessions == 3, "the connections were opened while planning"
    assert handler.quits == 3, "each was closed with QUIT"
    assert handler.mails == 0 and handler.messages == []


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_failure_to_connect_during_the_plan_is_the_same_one_line(root: Path) -> None:
    path = _list(root, "email,name\na@example.org,A\n")
    port = _closed_port()
    code, out, err = send("050", "--list", str(path), "--yes", "--smtp", f"smtp://127.0.0.1:{port}")
    assert code == 1 and "Traceback" not in out + err
    assert err.strip() == (f"error: 127.0.0.1:{port} refused the connection; is the SMTP server running?")
    assert "will get it" in out  # after the plan, as when the engine opened it


def test_a_refused_session_during_the_plan_is_the_same_one_line(
        root: Path, start_smtp: Callable[..., SmtpServer]) -> None:
    server = start_smtp()
    server.handler.greeting_reply.update({n: "554 5.7.1 go away" for n in range(1, 10)})
    path = _list(root, "email,name\na@example.org,A\n")
    code, out, err = send("050", "--list", str(path), "--yes", "--smtp", server.url)
    assert code == 1 and "Traceback" not in out + err
    assert err.strip() == f"error: 127.0.0.1:{server.port} refused the session: 554 5.7.1 go away"
    assert server.messages == []


def test_a_connection_the_server_closed_during_the_plan_is_opened_again(root: Path,
                                                                       counting_server: SmtpServer) -> None:
    import asyncio

    path = _list(root, "email,name\n" + "".join(f"p{i}@example.com,P{i}\n" for i in range(6)))
    request = SendRequest(ref="050", list_path=path, smtp=counting_server.url)
    with prepare_send(load_config(root), request, open_early=True) as campaign:
        early = campaign.early
        assert early is not None

        async def opened_then_dropped() -> None:  # as a server's idle timeout would
            await asyncio.gather(*early.opening)
            await early.transports[0].close()

        asyncio.run_coroutine_threadsafe(opened_then_dropped(), early.loop).result(10)
        sender = campaign.sender()
        loop = campaign.event_loop()
        assert loop is not None
        with asyncio.Runner(loop_factory=lambda: loop) as run:
            result = run.run(sender.run(campaign.rows()))
    assert result.ok and result.stats.sent == 6
    handler = counting_server.handler
    assert handler.sessions == 4  # three early, the closed one opened again
    assert sorted(handler.delivered_to()) == [f"p{i}@example.com" for i in range(6)]


def test_early_connections_beyond_the_readers_are_closed(root: Path, counting_server: SmtpServer) -> None:
    """Two readers, three connections opened early: the third says QUIT at once and is not counted."""
    path = _list(root, "email,name\na@example.com,A\nb@example.com,B\n")
    code, out, err = send("050", "--list", str(path), "--yes", "--smtp", counting_server.url)
    assert code == 0, err
    handler = counting_server.handler
    assert len(handler.messages) == 2 and handler.sessions == 3 and handler.quits == 3
    row = next(line for line in out.splitlines() if line.replace("│", " ").split()[:1] == ["connections"])
    assert row.replace("│", " ").split()[-1] == "2", out


def test_a_list_send_opens_its_connections_before_the_send_path_loads(root: Path,
                                                                      counting_server: SmtpServer) -> None:
    """`gigo-mail send` opens them from its own light module (``send.request``), then loads the list
    reader, the journal and the engine while they open: at a distance, EHLO is answered by then."""
    import os
    import subprocess
    import sys

    path = _list(root, "email,name\n" + "".join(f"p{i}@example.com,P{i}\n" for i in range(4)))
    probe = ("import sys\n"
             "import gigo_mail.send.request as request\n"
             "opening = request.open_early\n"
             "def watched(*args, **kwargs):\n"
             "    heavy = ('gigo_mail.cli.sending', 'gigo_mail.send.engine', 'gigo_mail.journal',\n"
             "             'gigo_mail.lists.reader', 'gigo_mail.compose.cache')\n"
             "    loaded = [m for m in heavy if m in sys.modules]\n"
             "    print('loaded when opening:', ','.join(loaded) or 'none', file=sys.stderr)\n"
             "    return opening(*args, **kwargs)\n"
             "request.open_early = watched\n"
             "from gigo_mail.cli.app import main\n"
             "sys.argv = ['gigo-mail', *sys.argv[1:]]\n"
             "main()\n")
    run = subprocess.run([sys.executable, "-c", probe, "send", "050", "--list", str(path), "--yes",
                          "--smtp", counting_server.url], cwd=root, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert run.returncode == 0, run.stderr
    assert "loaded when opening: none" in run.stderr
    handler = counting_server.handler
    assert len(handler.messages) == 4 and handler.sessions == 3  # the early ones carried the send
