"""Images from third-party hosts: `check` warns, and `publish` can copy them into the site
([site] copy_remote_images), fetched from a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from gigo_mail.check.links import check_images
from gigo_mail.check.report import WARN
from gigo_mail.compose.compile import compile_issue
from gigo_mail.compose.issue import find_issue
from gigo_mail.compose.site_paths import remote_image_path
from gigo_mail.config import load_config
from gigo_mail.errors import PublishError
from gigo_mail.web.publish import publish
from support import write_issue

buffer = io.BytesIO()
Image.new("RGB", (40, 20), (200, 80, 40)).save(buffer, "PNG")
PNG = buffer.getvalue()


class Cdn(BaseHTTPRequestHandler):
    asked: list[str] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        self.asked.append(self.path)
        routes = {"/pic.png": (200, PNG, "image/png"), "/page.png": (200, b"<html>", "text/html")}
        status, body, kind = routes.get(self.path, (404, b"gone", "text/plain"))
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def cdn() -> Iterator[str]:
    Cdn.asked = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Cdn)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def newsletter(root: Path, image: str, copy: bool) -> Path:
    root.mkdir(parents=True)
    (root / "gigo-mail.toml").write_text(
        '[newsletter]\nname = "Pictures"\nfrom = "Pictures <news@pictures.test>"\n'
        'site_url = "https://pictures.test"\nunsubscribe_url = "https://pictures.test/u?t={token}"\n'
        f"[site]\ncopy_remote_images = {'true' if copy else 'false'}\n")
    write_issue(root, "001.md", "number: 1\ntitle: Pictures\nsubject: Pictures\npreheader: p\n"
                "date: 2024-02-20",
                f"![a remote picture]({image})\n\n![our own](https://pictures.test/logo.png)\n")
    return root


def test_check_warns_on_images_from_third_party_hosts_only(tmp_path: Path) -> None:
    root = newsletter(tmp_path / "n", "https://cdn.example.org/banner.png", copy=False)
    compiled = compile_issue(load_config(root), find_issue(root, "001"))
    warned = [f for f in check_images(compiled) if f.level == WARN]
    assert [f.subject.split(": ", 1)[1] for f in warned] == ["https://cdn.example.org/banner.png"]
    assert "cdn.example.org, a third party" in warned[0].detail
    assert "copy_remote_images" in warned[0].detail


@pytest.mark.slow
def test_publish_copies_remote_images_and_the_email_takes_them_from_the_site(tmp_path: Path,
                                                                             cdn: str) -> None:
    url = f"{cdn}/pic.png"
    root = newsletter(tmp_path / "n", url, copy=True)
    config = load_config(root)
    report = publish(config, now=None)
    copy = remote_image_path("001", url)
    assert (config.site_dir / copy).read_bytes() == PNG
    page = (config.site_dir / "issues" / "001" / "index.html").read_text()
    assert f'src="{copy.removeprefix("issues/001/")}"' in page and url not in page
    compiled = compile_issue(config, find_issue(root, "001"))
    assert f'src="https://pictures.test/{copy}"' in compiled.html.source and url not in compiled.html.source
    assert not [f for f in check_images(compiled) if f.level == WARN]  # the site serves it now
    assert report.written
    publish(config)  # a second publish takes the cached copy: the host is not asked again
    assert Cdn.asked == ["/pic.png"]


@pytest.mark.slow
@pytest.mark.parametrize(("path", "says"), [("/gone.png", "HTTP 404"),
                                            ("/page.png", "text/html, not an image")])
def test_publish_stops_when_a_remote_image_cannot_be_copied(tmp_path: Path, cdn: str, path: str,
                                                             says: str) -> None:
    """The email would point at a copy the site does not have: one clear error, no site."""
    root = newsletter(tmp_path / "n", f"{cdn}{path}", copy=True)
    with pytest.raises(PublishError, match=says):
        publish(load_config(root))
