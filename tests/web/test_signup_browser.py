"""The whole signup in headless Chromium: the published page's form, the vendored widget solving
the page's challenge, the mail in the built-in capture inbox, a scanner's GET, the button's POST,
`subscribers pull`, and the next send's dry run counting the new reader."""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gigo_mail.cli.app import app
from gigo_mail.config import load_config
from gigo_mail.journal.signups import SignupStore
from gigo_mail.web.inbox import CapturedMessage, InboxServer
from gigo_mail.web.public import ServeLimits, make_server
from gigo_mail.web.publish import publish
from gigo_mail.web.screenshot import BASE_FLAGS, find_chromium
from servers import free_port
from support import make_newsletter

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(find_chromium() is None, reason="no Chromium installed")]
FILL = """(() => {
  const form = document.querySelector('form.gigo-signup');
  form.querySelector('[name=email]').value = 'browser@example.org';
  form.querySelector('[name=name]').value = 'Bea Browser';
  form.querySelector('button[type=submit]').click();
  return true;
})()"""


@contextmanager
def static_site(folder: Path, port: int) -> Iterator[None]:
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None  # type: ignore[assignment]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        thread.join(5)


class Browser:
    """Headless Chromium driven over its DevTools pipe (``--remote-debugging-pipe``: JSON messages
    ending in NUL on fds 3 and 4), so the test waits for the page in real time."""

    def __init__(self, profile: Path) -> None:
        chromium = find_chromium()
        assert chromium is not None
        to_chrome, self._writer = os.pipe()
        self._reader, from_chrome = os.pipe()

        def wire() -> None:  # in the child: the pipe on the fds Chromium expects
            os.dup2(to_chrome, 3)
            os.dup2(from_chrome, 4)

        self.proc = subprocess.Popen([str(chromium), *BASE_FLAGS, f"--user-data-dir={profile}",
                                      "--remote-debugging-pipe", "about:blank"],
                                     pass_fds=(3, 4), preexec_fn=wire, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome)
        os.close(from_chrome)
        self._ids = 0
        self._buffer = b""
        targets = self.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        attached = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)
        self.session = attached["sessionId"]

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._ids += 1
        message: dict[str, Any] = {"id": self._ids, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._writer, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._buffer:
                chunk = os.read(self._reader, 65536)
                assert chunk, "Chromium closed its pipe"
                self._buffer += chunk
            raw, _, self._buffer = self._buffer.partition(b"\0")
            reply = json.loads(raw)
            if reply.get("id") == self._ids:
                assert "error" not in reply, reply
                return dict(reply.get("result", {}))

    def go(self, url: str) -> None:
        self.call("Page.navigate", self.session, url=url)

    def run(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", self.session, expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def wait_for_text(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        body = ""
        while time.monotonic() < deadline:
            body = self.run("document.body ? document.body.innerText : ''") or ""
            if text in body:
                return str(body)
            time.sleep(0.1)
        raise AssertionError(f"no {text!r} on the page; it says: {body[:500]}")

    def wait_until(self, condition: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not self.run(condition):
            assert time.monotonic() < deadline, f"never true: {condition}"
            time.sleep(0.05)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        os.close(self._writer)
        os.close(self._reader)


def test_a_reader_joins_from_the_published_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site_port, page_port = free_port(), free_port()
    seen: list[CapturedMessage] = []
    root = make_newsletter(tmp_path / "nl")
    with InboxServer(tmp_path / "inbox", port=0, on_message=seen.append) as inbox:
        text = (root / "gigo-mail.toml").read_text()
        text = text.replace('url = "smtp://127.0.0.1:1025"', f'url = "{inbox.url}"')
        text = text.replace('site_url = "https://gigo.dev"', f'site_url = "http://127.0.0.1:{site_port}"')
        text = text.replace("https://gigo.dev/unsubscribe", f"http://127.0.0.1:{page_port}/unsubscribe")
        (root / "gigo-mail.toml").write_text(text + "\n[signup]\nenabled = true\npow_cost = 1000\n"
                                             'pow_max_counter = 40\n[list]\npath = "subscribers.csv"\n')
        monkeypatch.setenv("GIGO_UNSUBSCRIBE_SECRET", "browser-secret")
        monkeypatch.chdir(root)
        config = load_config(root)
        site = publish(config).site_dir
        page: Any = make_server(config, "127.0.0.1", page_port, ServeLimits(loop_timeout=0.05))
        thread = threading.Thread(target=page.run, daemon=True)
        thread.start()
        browser = Browser(tmp_path / "profile")
        try:
            with static_site(site, site_port):
                browser.go(f"http://127.0.0.1:{site_port}/")
                browser.wait_for_text("Get GIGO Tech Trends by email")
                browser.wait_until("document.querySelector('altcha-widget .altcha') !== null")  # mounted
                assert browser.run(FILL) is True  # a reader types and presses Subscribe
                browser.wait_for_text("Check your inbox")  # the widget solved, the page accepted
            deadline = time.monotonic() + 20
            while not seen and time.monotonic() < deadline:
                time.sleep(0.1)
            assert len(seen) == 1
            mail = message_from_bytes(seen[0].path.read_bytes(), policy=policy.default)
            text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            [url] = re.findall(r"http://127\.0\.0\.1:\d+/confirm\?token=\S+", text)
            browser.go(url)  # what a scanner (or a person) sees first: a button, nothing confirmed
            browser.wait_for_text("Confirm my subscription")
            with SignupStore.for_state(root / ".gigo") as store:
                assert store.confirmations_after(0, 10) == []
            browser.run("document.querySelector('button[type=submit]').click()")  # the person presses it
            browser.wait_for_text("You are subscribed")
        finally:
            browser.close()
            page.close()
            thread.join(5)
    pulled = CliRunner().invoke(app, ["subscribers", "pull"])
    assert pulled.exit_code == 0 and "1 new reader" in pulled.output, pulled.output
    lines = (root / "subscribers.csv").read_text().splitlines()
    assert lines[-1].startswith("browser@example.org,Bea Browser,")
    dry = CliRunner().invoke(app, ["send", "011", "--list", "subscribers.csv", "--dry-run", "--no-write"])
    assert dry.exit_code == 0, dry.output
    assert re.search(rf"will get it\s+{len(lines) - 1}\b", dry.output), dry.output
