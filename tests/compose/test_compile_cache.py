"""A compile kept between runs (``compose.cache``): reused only while nothing it reads changed,
read only from a private file, and a send that finds it loads no compiler."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import SmtpServer
from gigo_mail.compose import cache
from gigo_mail.compose.cache import compile_cached
from gigo_mail.config import load_config
from support import GIF, make_newsletter

SAMPLE = {"email": "ada.lovelace@example.org", "name": "Ada Lovelace"}


def _settle(root: Path) -> None:
    """Date every file of the newsletter ten seconds back: older than the racy window."""
    past = time.time() - 10
    for base, _, files in os.walk(root):
        for name in files:
            os.utime(os.path.join(base, name), (past, past))


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home-cache"))  # this account's key, per test
    root = make_newsletter(tmp_path / "nl")
    _settle(root)
    return root


def _compile(root: Path, sample: dict[str, str] | None = None) -> tuple[bool, str]:
    compiled = compile_cached(load_config(root), "011", sample=sample)
    return compiled.report.cached, compiled.html.source + compiled.text.source + compiled.subject.source


def test_a_second_compile_is_the_first_read_back(root: Path) -> None:
    first = compile_cached(load_config(root), "011")
    second = compile_cached(load_config(root), "011")
    assert (first.report.cached, second.report.cached) == (False, True)
    for part in ("subject", "html", "text", "preheader", "body_html"):
        assert getattr(second, part).source == getattr(first, part).source
    assert second.slots == first.slots and second.images == first.images
    assert second.report.warnings == first.report.warnings
    assert second.issue.meta == first.issue.meta and second.config == first.config
    files = list((root / cache.CACHE_DIR).iterdir())
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(files[0].parent.stat().st_mode) == 0o700


def _edit_issue(root: Path) -> str:
    path = root / "issues" / "011.md"
    info = path.stat()
    path.write_text(path.read_text(encoding="utf-8") + "\nA line added later.\n", encoding="utf-8")
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))  # the same time: the bytes tell
    return "A line added later."


def _edit_template(root: Path) -> str:
    path = next((root / "templates").rglob("email.txt.j2"))
    info = path.stat()
    text = path.read_text(encoding="utf-8")
    path.write_text("Plain edition\n" + text, encoding="utf-8")
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns - 1_000_000_000))  # old, but not the same
    return "Plain edition"


def _edit_config(root: Path) -> str:
    path = root / "gigo-mail.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('name = "', 'name = "Renamed ', 1), encoding="utf-8")
    _settle(root)
    return "Renamed "


def _add_image(root: Path) -> str:
    (root / "issues" / "unrelated.gif").write_bytes(GIF)  # the cache cannot know which images count
    _settle(root)
    return ""


@pytest.mark.parametrize("edit", [_edit_issue, _edit_template, _edit_config, _add_image])
def test_a_changed_input_compiles_again(root: Path, edit: Callable[[Path], str]) -> None:
    assert _compile(root)[0] is False
    assert _compile(root)[0] is True
    seen = edit(root)
    cached, text = _compile(root)
    assert cached is False
    assert seen in text
    assert _compile(root)[0] is True  # and the new compile is kept in its turn


def test_previews_and_list_sends_keep_their_own_compiles(root: Path) -> None:
    assert _compile(root)[0] is False
    assert _compile(root, SAMPLE)[0] is False  # a preview's report is the first reader's
    assert _compile(root)[0] is True
    assert _compile(root, SAMPLE)[0] is True
    assert _compile(root, {**SAMPLE, "name": "Grace"})[0] is False


def test_the_kept_compile_holds_no_address(root: Path) -> None:
    _compile(root, SAMPLE)
    data = b"".join(p.read_bytes() for p in (root / cache.CACHE_DIR).iterdir())
    assert data and b"ada.lovelace" not in data and b"Lovelace" not in data


def test_a_file_written_moments_ago_keeps_no_compile(root: Path) -> None:
    (root / "issues" / "fresh.gif").write_bytes(GIF)  # could change again within one clock tick
    assert _compile(root)[0] is False
    assert not (root / cache.CACHE_DIR).exists()
    _settle(root)
    _compile(root)
    assert _compile(root)[0] is True


def _others_may_write(path: Path) -> None:
    path.chmod(0o666)


def _cut_short(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:100])


def _another_fingerprint(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(bytes([data[0] ^ 1]) + data[1:])


@pytest.mark.parametrize("spoil", [_others_may_write, _cut_short, _another_fingerprint])
def test_a_doubtful_file_is_compiled_again_without_error(root: Path, spoil: Callable[[Path], None]) -> None:
    _compile(root)
    (path,) = (root / cache.CACHE_DIR).iterdir()
    spoil(path)
    cached, text = _compile(root)
    assert cached is False and "GIGO" in text


class _Planted:
    """What a stranger's cache file could hold: unpickling it would make a folder."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.mkdir, (str(self.marker),)


def test_a_cache_file_that_came_from_elsewhere_is_never_unpickled(root: Path, tmp_path: Path) -> None:
    """A .gigo/ copied or unpacked with a newsletter is this account's files, right fingerprint and
    all; without this account's seal it is compiled again, and its payload never runs."""
    import pickle

    _compile(root)
    (path,) = (root / cache.CACHE_DIR).iterdir()
    data = path.read_bytes()
    marker = tmp_path / "unpickled"
    payload = pickle.dumps(_Planted(marker))
    path.write_bytes(data[:32] + bytes(32) + payload)  # the true fingerprint, a seal made up
    assert _compile(root)[0] is False
    assert not marker.exists()
    key = tmp_path / "home-cache" / "gigo-mail" / "compile-cache.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and stat.S_IMODE(key.parent.stat().st_mode) == 0o700


def test_another_accounts_key_does_not_verify(root: Path, tmp_path: Path) -> None:
    _compile(root)
    assert _compile(root)[0] is True
    (tmp_path / "home-cache" / "gigo-mail" / "compile-cache.key").unlink()  # a new key: another machine
    assert _compile(root)[0] is False
    assert _compile(root)[0] is True


def test_a_folder_others_may_write_is_not_read(root: Path) -> None:
    _compile(root)
    (root / cache.CACHE_DIR).chmod(0o777)
    assert _compile(root)[0] is False


def test_a_cache_that_cannot_be_written_is_no_error(root: Path) -> None:
    (root / ".gigo").mkdir(mode=0o700)
    (root / cache.CACHE_DIR).write_text("not a folder", encoding="utf-8")
    assert _compile(root)[0] is False
    assert _compile(root)[0] is False


def test_an_issue_outside_the_issues_folder_is_not_kept(root: Path) -> None:
    outside = root / "draft.md"
    outside.write_text((root / "issues" / "011.md").read_text(encoding="utf-8"), encoding="utf-8")
    _settle(root)
    for _ in range(2):
        assert compile_cached(load_config(root), str(outside)).report.cached is False


_COMPILER = {"premailer", "jinja2", "markdown_it", "mjml", "yaml", "frontmatter", "gigo_mail.compose.compile"}


def _loaded(stderr: str) -> set[str]:
    return {line.split("|")[-1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


@pytest.mark.parametrize("real", [False, True], ids=["dry-run", "send"])
def test_a_list_send_that_finds_its_compile_loads_no_compiler(root: Path, real: bool,
                                                              smtp_server: SmtpServer) -> None:
    """The point of the cache: a send after ``build`` imports no Markdown, Jinja, MJML, premailer
    or YAML (about 0.2 s) and compiles nothing (about 0.15 s); a real send's preflight neither."""
    env = {**os.environ, "PYTHONPATH": str(Path(cache.__file__).parents[2]), "GIGO_UNSUBSCRIBE_SECRET": "s"}
    command = [sys.executable, "-X", "importtime", "-m", "gigo_mail"]
    subprocess.run([*command, "build", "011"], cwd=root, env=env, capture_output=True, check=True)
    how = ["--smtp", smtp_server.url] if real else ["--dry-run", "--no-write"]
    sent = subprocess.run([*command, "send", "011", "--list", "subscribers.csv", "--yes", *how],
                          cwd=root, env=env, capture_output=True, text=True)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "complete" in sent.stdout
    assert bool(smtp_server.handler.messages) is real
    loaded = _loaded(sent.stderr)
    assert "gigo_mail.compose.cache" in loaded
    assert not loaded & _COMPILER
