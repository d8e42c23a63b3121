"""New newsletters and new issues: the files `gigo-mail init` and `gigo-mail new` write.

The scaffold files sit beside this module (package data) so they can be read and
edited as the files they become; the layout is copied from the templates built
into gigo-mail, so the two never drift apart.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from string import Template

import yaml

from gigo_mail.compose.compiled import BUILTIN_TEMPLATES
from gigo_mail.compose.issue import ISSUES_DIR, list_issues
from gigo_mail.config import CONFIG_NAME
from gigo_mail.errors import ScaffoldError

SCAFFOLD_DIR = Path(__file__).parent
DEFAULT_TEMPLATE = "default"
# scaffold file -> where it goes in the new newsletter
_FILES = {
    "gigo-mail.toml": CONFIG_NAME,
    "issues/001.md": f"{ISSUES_DIR}/001.md",
    "subscribers.csv": "subscribers.csv",
    "gitignore": ".gitignore",  # a dotfile would not survive packaging
}



def _toml_string(value: str) -> str:
    """Text safe inside a double-quoted TOML (or YAML) string."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "newsletter"


def name_from_folder(folder: Path) -> str:
    """'my-weekly_notes' -> 'My Weekly Notes': a starting name the user will change."""
    words = re.split(r"[-_\s]+", folder.resolve().name)
    return " ".join(w[:1].upper() + w[1:] for w in words if w) or "My Newsletter"


def _check_empty(dest: Path) -> None:
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise ScaffoldError(f"{dest} exists and is not a folder; pick another name")
    if dest.is_dir():
        entries = sorted(p.name for p in dest.iterdir())
        if entries:
            shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
            where = dest.resolve() if dest.name in ("", ".", "..") else dest
            raise ScaffoldError(f"{where} is not empty ({shown}); init needs a new or empty folder")


def create_newsletter(dest: Path, name: str | None = None, today: date | None = None) -> list[Path]:
    """Write a ready-to-build newsletter into ``dest`` (new or empty); returns the paths written."""
    _check_empty(dest)
    name = (name or name_from_folder(dest)).strip()
    values = {
        "name": name,
        "qname": _toml_string(name),
        "list_id": _slug(name),
        "date": (today or date.today()).isoformat(),
    }
    written: list[Path] = []
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for source, target in _FILES.items():
            text = (SCAFFOLD_DIR / source).read_text(encoding="utf-8")
            path = dest / target
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(Template(text).substitute(values), encoding="utf-8")
            written.append(path)
        templates = dest / "templates" / DEFAULT_TEMPLATE
        shutil.copytree(BUILTIN_TEMPLATES / DEFAULT_TEMPLATE, templates,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))
        written.append(templates)
    except OSError as exc:
        raise ScaffoldError(f"cannot write the new newsletter in {dest}: {exc.strerror or exc}") from exc
    return written


@dataclass(frozen=True)
class NewIssue:
    path: Path
    number: int
    title: str


def next_number(root: Path) -> int:
    """One more than the highest issue number (1 when there are none)."""
    numbers = [issue.number for issue in list_issues(root) if issue.number is not None]
    return max(numbers, default=0) + 1


# What `new` writes for a field the author must still fill in (check fails while it is there).
PLACEHOLDERS = {
    "title": "Title of issue ",
    "subject": "Subject line of issue ",
    "preheader": "One line that inboxes show after the subject; keep it under 90 characters",
}


def issue_text(number: int, today: date, title: str | None = None) -> str:
    """The Markdown file of a fresh issue: front matter to fill in, and a first heading."""
    meta = {
        "number": number,
        "title": title or f"{PLACEHOLDERS['title']}{number:03d}",
        "subject": title or f"{PLACEHOLDERS['subject']}{number:03d}",
        "preheader": PLACEHOLDERS["preheader"],
        "date": today,
        "draft": True,  # publish leaves it out and a list send asks, until the author deletes this line
    }
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)
    heading = title or "A heading"
    return f"---\n{front}---\n\n## {heading}\n\nWrite the issue here, in Markdown.\n"


def create_issue(root: Path, title: str | None = None, today: date | None = None) -> NewIssue:
    """Create ``issues/NNN.md`` with the next number; ScaffoldError if that file exists."""
    number = next_number(root)
    folder = root / ISSUES_DIR
    path = folder / f"{number:03d}.md"
    if path.exists() or (folder / f"{number:03d}").exists():
        raise ScaffoldError(f"{path} (or a folder {number:03d}/) already exists but is not issue "
                            f"{number}; check its 'number' in the front matter")
    text = issue_text(number, today or date.today(), title.strip() if title else None)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with path.open("x", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise ScaffoldError(f"cannot create {path}: {exc.strerror or exc}") from exc
    return NewIssue(path=path, number=number, title=title or "")
