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
import re
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
    """A list by name: ``subscribers*.csv`` in the newsletter's folder, anything in its ``lists/``
    (as init's .gitignore says), or a file the command was given."""
    if (root / name).resolve() in wanted:
        return True
    parts = PurePosixPath(name).parts
    return (len(parts) == 1 and fnmatch.fnmatch(parts[0], LIST_PATTERNS[0])) or (len(parts) > 1
                                                                                and parts[0] == "lists")


# Domains that can never be anyone's mailbox (RFC 2606, RFC 6761): a list of only these is sample data.
_ADDRESS = re.compile(r"[^\s,;\"'<>@]+@([^\s,;\"'<>@]+)")
_RESERVED = re.compile(r"(?:^|\.)(?:example\.(?:com|net|org)|example|test|invalid|localhost)\.?$", re.I)
_SAMPLE_MAX_BYTES = 1_000_000  # a bigger file is a real list


def _only_sample_addresses(path: Path) -> bool:
    """Whether a file holds addresses, all of them at reserved domains (a demo or test list)."""
    try:
        if path.stat().st_size > _SAMPLE_MAX_BYTES:
            return False
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    domains = [match.group(1) for match in _ADDRESS.finditer(text)]
    return bool(domains) and all(_RESERVED.search(domain) for domain in domains)


def tracked_lists(root: Path, also: Iterable[Path] = ()) -> tuple[list[str], str]:
    """The list files git tracks under ``root`` (those named like lists, and ``also``; not a sample
    list whose every address is at a reserved domain such as example.org), and the repository's
    first remote; ([], "") when nothing can leave this machine that way."""
    remotes = (_git(root, "remote") or "").split()
    if not remotes:
        return [], ""
    listed = _git(root, "ls-files", "-z", "--", ".")
    if not listed:
        return [], ""
    wanted = {Path(p).resolve() for p in also}
    names = [name for name in listed.split("\0") if name and _is_list(name, wanted, root)
             and not _only_sample_addresses(root / name)]
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
