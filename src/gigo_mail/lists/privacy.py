"""Subscriber lists are personal data: is one of them a push away from public?

A newsletter folder is often a git repository (the README's publish recipe is a GitHub
Actions workflow), and a list file committed there goes wherever the repository goes: a
public repository publishes every address, and git history keeps them after a reader
asked to be erased. ``init`` writes a ``.gitignore`` that keeps lists out; this module
notices when one is tracked anyway in a repository that has a remote, so ``send``,
``publish`` and ``check`` can say so.

It asks git itself (``ls-files``, ``remote``), with a short timeout, and says nothing when
git is missing, the folder is not a repository, or the repository has no remote (a
local-only repository publishes nothing).
"""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

LIST_PATTERNS = ("subscribers*.csv", "lists/*")  # what init's .gitignore keeps out
_TIMEOUT = 5.0


def _git(root: Path, *args: str) -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        done = subprocess.run([git, "-C", str(root), *args], capture_output=True, timeout=_TIMEOUT,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.decode("utf-8", "replace") if done.returncode == 0 else None


def _is_list(name: str, wanted: set[Path], root: Path) -> bool:
    if (root / name).resolve() in wanted:
        return True
    path = PurePosixPath(name)
    return fnmatch.fnmatch(path.name, LIST_PATTERNS[0]) or "lists" in path.parts[:-1]


def tracked_lists(root: Path, also: Iterable[Path] = ()) -> tuple[list[str], str]:
    """The list files git tracks under ``root`` (those named like lists, and ``also``), and the
    repository's first remote; ([], "") when nothing can leave this machine that way."""
    remotes = (_git(root, "remote") or "").split()
    if not remotes:
        return [], ""
    listed = _git(root, "ls-files", "-z", "--", ".")
    if not listed:
        return [], ""
    wanted = {Path(p).resolve() for p in also}
    names = [name for name in listed.split("\0") if name and _is_list(name, wanted, root)]
    return sorted(names), remotes[0]


def exposure_warning(root: Path, also: Iterable[Path] = ()) -> str | None:
    """One line naming the tracked list files, why it matters and what to do; None if none."""
    names, remote = tracked_lists(root, also)
    if not names:
        return None
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return (f"{shown} {'is' if len(names) == 1 else 'are'} tracked by git in a repository with a remote "
            f"('{remote}'): a push publishes every address, and history keeps them after erasure; "
            f"run 'git rm --cached {names[0]}' and keep lists out of git (README: Private by default)")
