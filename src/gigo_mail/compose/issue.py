"""An issue of the newsletter: a Markdown file with YAML front matter.

``issues/011.md`` or, when it has images beside it, ``issues/012/index.md``.
``011``, ``11`` and a path all name the same issue; its ``key`` ("011") is the
identity used by the journal and the build folder.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gigo_mail.config import shown_path
from gigo_mail.config_schema import SCHEMA, check_value
from gigo_mail.errors import IssueError, IssueNotFound

ISSUES_DIR = "issues"
INDEX_NAME = "index.md"
DATE_HINT = "write it like 2024-02-20 (or 2024-02-20T09:00:00+01:00)"
_FLAGS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False, "": False}


class _BadDate(str):
    """A value YAML took for a date that is none (2024-02-30): kept as text, so the check below can
    name the file and the line instead of the YAML library raising from deep inside."""


@functools.cache
def _yaml_handler() -> Any:
    """The front-matter handler: YAML's, keeping a date that is none as text. Made on first use, so
    a command that only names an issue (``status``) never loads the YAML reader."""
    import frontmatter
    import yaml

    class _Loader(yaml.SafeLoader):
        def construct_yaml_timestamp(self, node: yaml.Node) -> Any:
            try:
                return super().construct_yaml_timestamp(node)  # type: ignore[arg-type]
            except ValueError:
                return _BadDate(node.value)

    _Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)

    class _Handler(frontmatter.YAMLHandler):
        def load(self, fm: str, **kwargs: object) -> Any:
            return yaml.load(fm, Loader=_Loader)  # noqa: S506 - a SafeLoader with one constructor changed

    return _Handler()


def parse_date(value: str) -> dt.datetime | None:
    """A front-matter date as a datetime (naive when it names no zone); None when it is not one."""
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class Issue:
    key: str
    path: Path
    folder: Path
    meta: dict[str, Any]
    body: str

    @property
    def number(self) -> int | None:
        value = self.meta.get("number")
        if value is None and self.key.isdigit():
            return int(self.key)
        try:
            return int(value) if value is not None else None
        except (TypeError, ValueError):
            return None

    def _text(self, name: str) -> str:
        value = self.meta.get(name)
        return "" if value is None else str(value).strip()

    @property
    def title(self) -> str:
        return self._text("title")

    @property
    def subject(self) -> str:
        return self._text("subject")

    @property
    def preheader(self) -> str:
        return self._text("preheader")

    @property
    def date(self) -> str:
        return self._text("date")

    @property
    def draft(self) -> bool:
        """``draft: true``: kept out of ``publish`` and asked about by ``send --list``."""
        value = self.meta.get("draft", False)
        return value if isinstance(value, bool) else _FLAGS.get(str(value).strip().lower(), False)

    @property
    def display_path(self) -> str:
        """The path as the user would type it: relative to the current folder when possible."""
        return shown_path(self.path)

    def require(self, *names: str) -> None:
        """Raise ``IssueError`` naming the file and the first missing front-matter field."""
        for name in names:
            if not self._text(name):
                raise IssueError(f"{self.display_path}: front matter has no '{name}'; add it")


def key_for(stem: str) -> str:
    """Canonical key: numbers zero-padded to three digits, other names as they are."""
    return f"{int(stem):03d}" if stem.isdigit() else stem


def _candidates(root: Path) -> list[tuple[str, Path]]:
    folder = root / ISSUES_DIR
    if not folder.is_dir():
        return []
    found: list[tuple[str, Path]] = []
    for entry in folder.iterdir():
        if entry.is_file() and entry.suffix == ".md":
            found.append((key_for(entry.stem), entry))
        elif entry.is_dir() and (entry / INDEX_NAME).is_file():
            found.append((key_for(entry.name), entry / INDEX_NAME))
    return found


def _sort_key(item: tuple[str, Path]) -> tuple[int, str]:
    key = item[0]
    return (int(key), key) if key.isdigit() else (10**9, key)


def load_issue(path: Path, key: str | None = None) -> Issue:
    """Parse one issue file; front-matter syntax errors become an IssueError naming the file."""
    import frontmatter  # the YAML reader loads when an issue is read, not when one is only named
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise IssueNotFound(f"{path}: no such issue file") from exc
    except UnicodeDecodeError as exc:
        raise IssueError(f"{path}: not UTF-8 text ({exc.reason}); save it as UTF-8") from exc
    handler = frontmatter.detect_format(text, frontmatter.handlers)
    try:
        post = frontmatter.loads(text, handler=_yaml_handler() if isinstance(handler, frontmatter.YAMLHandler)
                                 else handler)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise IssueError(f"{path}{where}: front matter is not valid YAML ({problem})") from exc
    meta = dict(post.metadata)
    check_front_matter(shown_path(path), text, meta)
    for name, value in list(meta.items()):  # YAML turns 2024-02-20 into a date; keep text
        if isinstance(value, dt.date):
            meta[name] = value.isoformat()
    return Issue(key=key or _key_of(path), path=path, folder=path.parent, meta=meta, body=post.content)


def _key_of(path: Path) -> str:
    return key_for(path.parent.name if path.name == INDEX_NAME else path.stem)


def _line_of(text: str, key: str) -> str:
    """``:LINE`` of a top-level front-matter key in the file, or "" when it cannot be found."""
    for number, line in enumerate(text.splitlines()[1:], start=2):
        if line.rstrip() == "---":
            break
        if line.startswith((f"{key}:", f'"{key}":', f"'{key}':")):
            return f":{number}"
    return ""


def _problem(key: str, value: Any) -> str:
    """What is wrong with one front-matter value, with the fix; "" when it is right."""
    shown = f"'{value}'" if isinstance(value, str) else repr(value)
    if key == "date":
        ok = isinstance(value, dt.date) or (isinstance(value, str) and not isinstance(value, _BadDate)
                                           and parse_date(value) is not None)
        return "" if ok else f"date {shown} is not a date — {DATE_HINT}"
    if key == "number":
        ok = (isinstance(value, int) and not isinstance(value, bool) and value >= 0) or \
            (isinstance(value, str) and value.strip().isdigit())
        return "" if ok else f"number {shown} is not a whole number — write it like number: 12"
    if key in ("title", "subject", "preheader") and isinstance(value, dict | list):
        return f"{key} is a {'list' if isinstance(value, list) else 'table'}, not text — write {key}: \"...\""
    if key == "draft" and not isinstance(value, bool) and str(value).strip().lower() not in _FLAGS:
        return f"draft {shown} is not true or false — write draft: true (or remove the line to publish)"
    if key == "hero":
        return _hero_problem(value)
    rules = SCHEMA["newsletter"]
    if key in rules and key != "social":  # [newsletter] values the issue overrides: the config's own rules
        what, fix = check_value(rules[key], key, value)
        return f"{what} — {fix.replace(' = ', ': ')}" if what else ""
    return ""


def _hero_problem(value: Any) -> str:
    if not isinstance(value, dict) or not isinstance(value.get("src"), str) or not value["src"].strip():
        return "hero needs src (an image path or URL) — write hero: {src: banner.png, alt: ...}"
    for side in ("width", "height"):
        size = value.get(side)
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
            return f"hero {side} {size!r} is not a size in pixels — write {side}: 1200 (a whole number)"
    return ""


def check_front_matter(shown: str, text: str, meta: dict[str, Any]) -> None:
    """Every known front-matter field checked at once, each wrong one named with its file and line."""
    problems = [(where, f"{shown}{where}: front matter {problem}")
                for key, value in meta.items() if (problem := _problem(str(key), value))
                for where in [_line_of(text, str(key))]]
    if problems:
        raise IssueError("\n".join(line for _, line in problems))


def list_issues(root: Path) -> list[Issue]:
    """Every issue under ``root/issues``, ordered by number."""
    return [load_issue(path, key) for key, path in sorted(_candidates(root), key=_sort_key)]


def find_issue(root: Path, ref: str) -> Issue:
    """Resolve ``011``, ``11``, ``issues/011.md`` or ``issues/012/`` to an Issue."""
    return load_issue(*locate_issue(root, ref))


def locate_issue(root: Path, ref: str) -> tuple[Path, str | None]:
    """The file an issue reference names (and its key when found by key); IssueNotFound if none.
    Reads no YAML: ``load_issue`` parses the file it names."""
    ref = ref.strip()
    as_path = Path(ref)
    for candidate in (root / as_path, as_path):
        if candidate.is_file():
            return candidate, None
        if candidate.is_dir() and (candidate / INDEX_NAME).is_file():
            return candidate / INDEX_NAME, None
    wanted = key_for(as_path.stem) if ref else ref
    candidates = _candidates(root)
    for key, path in candidates:
        if key == wanted:
            return path, key
    existing = ", ".join(key for key, _ in sorted(candidates, key=_sort_key)) or "none"
    where = root / ISSUES_DIR
    raise IssueNotFound(f"no issue '{ref}' in {where}; issues that exist: {existing}")


def resolve_issue_key(root: Path, ref: str, known: Iterable[str] = ()) -> str:
    """The issue's key from its file; else one of ``known`` (the keys the journal has), so
    that an issue whose file was removed or renamed can still be looked up."""
    try:  # named by its file, not read: a command that needs only the key parses no YAML
        path, key = locate_issue(root, ref)
        return key or _key_of(path)
    except IssueNotFound:
        keys = set(known)
        for candidate in (ref.strip(), ref.strip().zfill(3)):
            if candidate in keys:
                return candidate
        raise
