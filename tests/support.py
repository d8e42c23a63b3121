"""Helpers shared by several test modules: a throwaway copy of the newsletter, subscriber lists,
one newsletter message for the capture inbox, and the tiny newsletter the preview tests serve."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path

import pytest

from gigo_mail.lists.reader import SkippedRow, Subscriber

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


def make_newsletter(dest: Path) -> Path:
    """Copy the repository's newsletter (config, templates, issues, list) into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "gigo-mail.toml", dest / "gigo-mail.toml")
    shutil.copy(REPO / "subscribers.csv", dest / "subscribers.csv")
    shutil.copytree(REPO / "templates", dest / "templates")
    shutil.copytree(REPO / "issues", dest / "issues")
    return dest


def export_newsletter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A newsletter (cwd, secret set) with issue 060, which greets each reader by first name: what
    the platform-export tests send their lists to."""
    root = make_newsletter(tmp_path / "nl")
    write_issue(root, "060.md", "number: 60\ntitle: Sixty\nsubject: Issue sixty\npreheader: p",
                "Hello {{ subscriber.first_name | default('there') }}, some news.\n")
    monkeypatch.chdir(root)
    monkeypatch.setenv("GIGO_UNSUBSCRIBE_SECRET", "test-secret")
    return root


def to_header(data: bytes) -> tuple[str, str, str]:
    """A sent message's (To: address, To: display name, greeting of its first part)."""
    from email import message_from_bytes
    from email.header import decode_header, make_header
    from email.utils import parseaddr

    message = message_from_bytes(data)
    name, address = parseaddr(str(make_header(decode_header(message["To"]))))
    body = message.get_payload()[0].get_payload(decode=True).decode()  # type: ignore[index, union-attr]
    greeting = body.split(",")[0].strip().splitlines()[-1]
    return address, name, greeting


def write_issue(root: Path, name: str, front: str, body: str) -> Path:
    path = root / "issues" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"---\n{front.strip()}\n---\n{body}", encoding="utf-8")
    return path


GIF = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"


def write_image_issue(root: Path, key: str, *, images: str = "embed") -> Path:
    """A folder issue ``issues/KEY/index.md`` showing ``dot.gif`` beside it; ``images`` sets the
    newsletter's image mode ("embed" or "link")."""
    if images != "embed":
        config = root / "gigo-mail.toml"
        config.write_text(config.read_text().replace('images = "embed"', f'images = "{images}"'))
    folder = root / "issues" / key
    folder.mkdir(parents=True)
    (folder / "dot.gif").write_bytes(GIF)
    return write_issue(root, f"{key}/index.md", "subject: s\npreheader: p", "![dot](dot.gif)\n")


# -- subscriber lists -------------------------------------------------------------------------

SUBSCRIBERS_SAMPLE = DATA / "subscribers_sample.csv"


def split_rows(items: object) -> tuple[list[Subscriber], list[SkippedRow]]:
    """A stream from ``read_subscribers`` as (subscribers, skipped rows)."""
    subscribers: list[Subscriber] = []
    skipped: list[SkippedRow] = []
    for item in items:  # type: ignore[attr-defined]
        (subscribers if isinstance(item, Subscriber) else skipped).append(item)
    return subscribers, skipped


def write_list(tmp_path: Path, data: str | bytes, name: str = "list.csv") -> Path:
    """A subscriber list in ``tmp_path``: text is written as UTF-8, bytes as they are."""
    path = tmp_path / name
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8", newline="")
    else:
        path.write_bytes(data)
    return path


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def newsletter_mail(to: str, subject: str, number: int = 0) -> EmailMessage:
    """A newsletter as it reaches the capture inbox: text, HTML and a related image."""
    msg = EmailMessage()
    msg["From"] = "Zoë's Letter <news@example.org>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<issue-011.{number}@example.org>"
    msg["List-Unsubscribe"] = f"<https://example.org/u/{number}>"
    msg.set_content(f"Hello {number}, plain text part.\n")
    msg.add_alternative(f'<p>Hello {number}</p><img src="cid:logo@example.org">', subtype="html")
    html = msg.get_payload()[1]
    html.add_related(PNG, "image", "png", cid="<logo@example.org>")
    return msg


# -- the preview: a tiny newsletter using the built-in template -----------------------------

PREVIEW_CONFIG = """\
[newsletter]
name = "Preview Weekly"
from = "Preview Weekly <news@preview.test>"
site_url = "https://preview.test"
unsubscribe_url = "https://preview.test/unsubscribe?token={token}"
postal_address = "1 Test Road, Testville"
"""

PREVIEW_ISSUE = """\
---
number: 7
title: Seventh issue
subject: "Tips & <tricks> for issue 7"
preheader: "A short preheader for the seventh issue."
date: 2024-03-01
---

## Hello {{ subscriber.name }}

The first version of the body says FIRST-VERSION.
"""


def touch_later(path: Path) -> None:
    """Make sure the mtime moves even on filesystems with coarse timestamps."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


# -- a disk that fills up ----------------------------------------------------------------------

@contextmanager
def tiny_disk(folder: Path, size: str = "1m") -> Iterator[Path]:
    """A real tmpfs of ``size`` mounted at ``folder`` (skips without root or mount)."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


def fill_disk(folder: Path, leave: int) -> None:
    """Fill the file system of ``folder`` until about ``leave`` bytes are free."""
    stat = os.statvfs(folder)
    with (folder / "filler").open("wb") as handle:
        handle.write(b"\0" * max(0, stat.f_bavail * stat.f_frsize - leave))
