"""Private by default: init keeps lists out of git, and send, publish and check warn (one line)
when a list file is tracked in a repository that has a remote. Real git, real CLI."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gigo_mail.cli.app import app
from gigo_mail.lists.privacy import exposure_warning, tracked_lists
from support import make_newsletter

runner = CliRunner()
pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.org",
                           *args], capture_output=True, text=True, check=True, timeout=30)
    return done.stdout


REAL_LIST = "email,name\nann@lovelace-readers.net,Ann\nbob@ba.bbage.co.uk,Bob\n"  # not reserved domains


def repository(root: Path, *, remote: bool, track: tuple[str, ...] = ("subscribers.csv",)) -> Path:
    if (root / "subscribers.csv").exists():
        (root / "subscribers.csv").write_text(REAL_LIST, encoding="utf-8")  # a real list, not sample data
    git(root, "init", "-q")
    if remote:
        git(root, "remote", "add", "origin", "https://git.example.invalid/newsletter.git")
    git(root, "add", "-f", *track)
    git(root, "commit", "-q", "-m", "first")
    return root


def test_init_keeps_lists_and_state_out_of_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["init", "notes"])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "Subscriber lists stay out of git: addresses are personal data" in said
    root = tmp_path / "notes"
    (root / "lists").mkdir()
    (root / "lists" / "export.csv").write_text("email\nann@example.org\n")
    (root / "subscribers-2026.csv").write_text("email\nbob@example.org\n")
    (root / ".gigo").mkdir(exist_ok=True)
    (root / ".gigo" / "secret").write_text("s")
    git(root, "init", "-q")
    git(root, "add", "-A")
    staged = git(root, "diff", "--cached", "--name-only").split()
    assert "gigo-mail.toml" in staged and "issues/001.md" in staged
    for private in ("subscribers.csv", "subscribers-2026.csv", "lists/export.csv", ".gigo/secret"):
        assert private not in staged, private


def test_a_tracked_list_in_a_repository_with_a_remote_is_named(tmp_path: Path) -> None:
    root = repository(make_newsletter(tmp_path / "n"), remote=True)
    names, remote = tracked_lists(root)
    assert (names, remote) == (["subscribers.csv"], "origin")
    warning = exposure_warning(root)
    assert warning is not None and "\n" not in warning
    assert "subscribers.csv is tracked" in warning and "git rm --cached subscribers.csv" in warning


def test_any_list_file_given_counts_whatever_its_name(tmp_path: Path) -> None:
    root = make_newsletter(tmp_path / "n")
    (root / "readers.txt").write_text("ann@lovelace-readers.net\n")
    repository(root, remote=True, track=("readers.txt",))
    assert tracked_lists(root) == ([], "origin")
    assert tracked_lists(root, [root / "readers.txt"])[0] == ["readers.txt"]


@pytest.mark.parametrize("remote", [False, True])
def test_no_warning_without_a_remote_or_when_not_tracked(tmp_path: Path, remote: bool) -> None:
    root = make_newsletter(tmp_path / "n")
    assert exposure_warning(root) is None  # not a repository at all
    repository(root, remote=remote, track=("gigo-mail.toml",))
    assert exposure_warning(root, [root / "subscribers.csv"]) is None


@pytest.fixture
def exposed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = repository(make_newsletter(tmp_path / "n"), remote=True)
    monkeypatch.chdir(root)
    monkeypatch.setenv("GIGO_UNSUBSCRIBE_SECRET", "privacy-secret")
    return root


def one_warning(stderr: str) -> None:
    lines = [line for line in stderr.splitlines() if "tracked by git" in line]
    assert len(lines) == 1, stderr
    assert "a push publishes every address" in lines[0]


def test_send_warns(exposed: Path) -> None:
    result = runner.invoke(app, ["send", "011", "--list", "subscribers.csv", "--dry-run", "--no-write",
                                 "--offline"])
    assert result.exit_code == 0, result.output
    one_warning(result.stderr)


def test_publish_warns(exposed: Path) -> None:
    result = runner.invoke(app, ["publish"])
    assert result.exit_code == 0, result.output
    one_warning(result.stderr)


@pytest.mark.slow
def test_check_warns(exposed: Path) -> None:
    result = runner.invoke(app, ["check", "011", "--offline", "--dns", "127.0.0.1:9", "--timeout", "0.2"])
    one_warning(result.stderr)


def test_no_warning_when_the_list_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = repository(make_newsletter(tmp_path / "n"), remote=True, track=("gigo-mail.toml",))
    monkeypatch.chdir(root)
    result = runner.invoke(app, ["publish"])
    assert result.exit_code == 0 and "tracked by git" not in result.stderr


def test_only_lists_at_the_newsletters_own_places_count(tmp_path: Path) -> None:
    """subscribers*.csv in the folder itself and anything in its lists/, not a package's own lists/ code."""
    root = make_newsletter(tmp_path / "n")
    names = ("src/pkg/lists/reader.py", "data/lists/words.toml", "tests/subscribers.csv", "lists/june.csv")
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(REAL_LIST, encoding="utf-8")
    repository(root, remote=True, track=("src", "data", "tests", "lists", "subscribers.csv"))
    assert tracked_lists(root)[0] == ["lists/june.csv", "subscribers.csv"]


def test_a_sample_list_of_reserved_domains_is_nobodys_data(tmp_path: Path) -> None:
    root = make_newsletter(tmp_path / "n")
    repository(root, remote=True)
    (root / "subscribers.csv").write_text("email,name\nann@example.org,Ann\nbo@news.example,Bo\n"
                                          "cy@shop.test,Cy\n", encoding="utf-8")
    assert exposure_warning(root) is None
    (root / "subscribers.csv").write_text("email\nann@example.org\nreal@lovelace-readers.net\n",
                                          encoding="utf-8")
    assert exposure_warning(root) is not None  # one real address makes it a real list
