"""Helpers shared by the compile and CLI tests: a throwaway copy of the newsletter."""

from __future__ import annotations

import shutil
from pathlib import Path

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


def write_issue(root: Path, name: str, front: str, body: str) -> Path:
    path = root / "issues" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"---\n{front.strip()}\n---\n{body}", encoding="utf-8")
    return path
