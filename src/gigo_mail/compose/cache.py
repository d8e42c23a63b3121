"""A compile kept between runs, so a list send after ``build`` (or ``check``) starts at once.

Compiling issue 011 and loading Markdown, Jinja, MJML and premailer for it take about 0.2 s (a
3,000-row dry run: 0.76 s, or 0.55 s with the compile kept): for a list send to a server far
away, much of its wait before the first MAIL FROM. A test copy keeps its own (its report is the
first reader's), so it neither uses nor replaces the list send's.
The result is kept in ``.gigo/compiled/`` (one 0600 file per issue file, in a 0700 folder)
under a fingerprint of everything a compile reads:

* the issue file's and the templates' bytes, and every other file under the issue's folder
  (path, size, modification time): its images;
* the configuration as loaded (frozen dataclasses, so its repr is its content) and the
  preview sample;
* the code that compiles: this package's files and the modules of the libraries it compiles
  with (path, size, modification time), and a format number.

Any difference compiles again; so does anything wrong with the file. Because it is unpickled, a
file is read only when this account owns it and its folders, nobody else may write to them, and
it is sealed (HMAC-SHA256) with this account's random key, kept outside the newsletter
(``~/.cache/gigo-mail/``, or under ``XDG_CACHE_HOME``): a ``.gigo/`` that came from elsewhere is
compiled again, never loaded. It holds no address: slots, not values, and not the preview sample.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import importlib.util
import os
import pickle
import stat
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from gigo_mail.compose.compiled import CompiledIssue, template_search_path
from gigo_mail.compose.issue import ISSUES_DIR, Issue, load_issue, locate_issue
from gigo_mail.config import Config
from gigo_mail.private import private_dir, write_private
from gigo_mail.version import __version__

FORMAT = 2
KEY_BYTES = 32
CACHE_DIR = Path(".gigo") / "compiled"
_LIBRARIES = ("mjml", "premailer", "cssutils", "lxml", "jinja2", "markupsafe", "markdown_it", "PIL")
_PACKAGE = Path(__file__).resolve().parents[1]  # its modules, templates and data
_MAX_FILES = 5_000  # a folder bigger than this is not fingerprinted: the issue compiles every time
_PARTS = ("slots", "subject", "html", "text", "images", "report", "preheader", "body_html")


def compile_cached(config: Config, ref: str, *, sample: Mapping[str, str] | None = None) -> CompiledIssue:
    """The issue ``ref`` names, compiled: from the cache when nothing it depends on changed,
    else compiled now (``compose.compile``, loaded only then) and kept for the next run."""
    path, key = locate_issue(config.root, ref)
    cache = _cache_file(config.root, path, sampled=sample is not None)
    started = time.perf_counter()
    inputs = _fingerprint(config, path, sample)
    if inputs is not None:
        found = _load(cache, inputs.digest.digest())
        if found is not None:
            issue, parts = found
            compiled = CompiledIssue(issue=issue, config=config.with_overrides(issue.meta), **parts,
                                     sample=None if sample is None else dict(sample))
            compiled.report.compile_ms = (time.perf_counter() - started) * 1000
            compiled.report.cached = True
            return compiled
    from gigo_mail.compose.compile import compile_issue  # only on a miss: Markdown, Jinja, MJML, premailer

    compiled = compile_issue(config, load_issue(path, key), sample=sample)
    if inputs is not None and inputs.settled() and not compiled.report.errors:
        _store(cache, inputs.digest.digest(), compiled)
    return compiled


def _cache_file(root: Path, issue_path: Path, *, sampled: bool) -> Path:
    """One file per issue file for list sends and ``build``, one for previews and test copies
    (filled with the list's first reader), so that neither pushes the other out."""
    name = hashlib.sha256(str(issue_path.resolve()).encode()).hexdigest()[:24]
    return root / CACHE_DIR / f"{name}{'-sample' if sampled else ''}.pickle"


class _Inputs:
    """The digest of a compile's inputs, and the newest modification time among the newsletter's
    files known only by their size and time: a file written less than ``RACY_NS`` ago could change again
    within the same clock tick without its time changing, so no cache is kept then (as git
    treats a racily clean index entry)."""

    RACY_NS = 2_000_000_000

    def __init__(self) -> None:
        self.digest = hashlib.sha256(f"gigo-mail compile cache {FORMAT} {__version__}\n".encode())
        self.newest_ns = 0

    def add(self, data: bytes) -> None:
        self.digest.update(len(data).to_bytes(8, "big") + data)

    def add_stat(self, label: str, path: str, *, racy: bool = True) -> None:
        info = os.stat(path)
        if racy:
            self.newest_ns = max(self.newest_ns, info.st_mtime_ns)
        self.add(f"{label}\0{info.st_size}\0{info.st_mtime_ns}".encode())

    def settled(self) -> bool:
        return self.newest_ns < time.time_ns() - self.RACY_NS


def _fingerprint(config: Config, issue_path: Path, sample: Mapping[str, str] | None) -> _Inputs | None:
    """Every input of the compile; None when one cannot be read, or the issue lies outside the
    newsletter's issues/ folder (whose other files could be anything: no caching then)."""
    inputs = _Inputs()
    folder = issue_path.resolve().parent
    issues = (config.root / ISSUES_DIR).resolve()
    if folder != issues and issues not in folder.parents:
        return None
    try:
        inputs.add(issue_path.read_bytes())
        inputs.add(repr(config).encode())
        inputs.add(repr(None if sample is None else sorted(sample.items())).encode())
        for templates in template_search_path(config.root):  # small: read whole
            for name in _files(templates):
                inputs.add(name.encode() + b"\0" + (templates / name).read_bytes())
        # The images beside the issue; the code that compiles, which an install rewrites whole
        # (so its files' times need no racy window).
        for base, racy in ((folder, True), (_PACKAGE, False)):
            for count, name in enumerate(_files(base)):
                if count >= _MAX_FILES:
                    return None
                inputs.add_stat(f"{base}/{name}", str(base / name), racy=racy)
        for library in _LIBRARIES:
            spec = importlib.util.find_spec(library)
            if spec is not None and spec.origin is not None:
                inputs.add_stat(spec.origin, spec.origin, racy=False)
    except (OSError, ValueError):
        return None
    return inputs


def _files(folder: Path) -> Iterator[str]:
    """Each file under ``folder`` (a path relative to it), in a stable order; hidden names
    (``.git``, editors' swap files) and ``__pycache__`` left out."""
    if not folder.is_dir():
        return
    for base, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        for name in sorted(files):
            if not name.startswith("."):
                yield os.path.relpath(os.path.join(base, name), folder)


def _trusted(path: Path, *, folder: bool) -> bool:
    """Owned by this account, writable by nobody else (and a real folder or file, not a link)."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    kind_ok = stat.S_ISDIR(info.st_mode) if folder else stat.S_ISREG(info.st_mode)
    return kind_ok and info.st_uid == os.getuid() and not info.st_mode & 0o022


def _local_key() -> bytes | None:
    """This account's random key for the cache, kept outside every newsletter folder: a file that
    came with a folder from elsewhere (a copy, an archive, a repository that held ``.gigo/``) does
    not verify under it, so it is never unpickled. None when there is nowhere to keep one."""
    try:
        folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gigo-mail"
    except RuntimeError:  # no home folder
        return None
    path = folder / "compile-cache.key"
    with contextlib.suppress(OSError):
        if _trusted(folder, folder=True) and _trusted(path, folder=False):
            key = path.read_bytes()
            if len(key) == KEY_BYTES:
                return key
    with contextlib.suppress(OSError):  # a home folder that cannot be written
        write_private(path, os.urandom(KEY_BYTES))
        key = path.read_bytes()  # another process may have written its own meanwhile: theirs stands
        if len(key) == KEY_BYTES:
            return key
    return None


def _seal(key: bytes, fingerprint: bytes, payload: bytes) -> bytes:
    return hmac.new(key, fingerprint + payload, hashlib.sha256).digest()


def _load(cache: Path, fingerprint: bytes) -> tuple[Issue, dict[str, Any]] | None:
    if not (_trusted(cache.parent.parent, folder=True) and _trusted(cache.parent, folder=True)
            and _trusted(cache, folder=False)):
        return None
    key = _local_key()
    try:
        data = cache.read_bytes() if key is not None else b""
    except OSError:
        return None
    head = len(fingerprint) + KEY_BYTES
    if key is None or data[:len(fingerprint)] != fingerprint:
        return None
    if not hmac.compare_digest(data[len(fingerprint):head], _seal(key, fingerprint, data[head:])):
        return None  # not written by this account on this machine: never unpickled
    try:
        issue, parts = pickle.loads(data[head:])  # written by us: the seal proves it
    except Exception:  # from another version of gigo-mail: compile again
        return None
    if not isinstance(issue, Issue) or not isinstance(parts, dict) or set(parts) != set(_PARTS):
        return None
    return issue, parts


def _store(cache: Path, fingerprint: bytes, compiled: CompiledIssue) -> None:
    """Keep ``compiled`` for the next run, sealed with this account's key; a folder that cannot
    be written is no error."""
    key = _local_key()
    if key is None:
        return
    parts = {name: getattr(compiled, name) for name in _PARTS}
    with contextlib.suppress(OSError, pickle.PicklingError):
        payload = pickle.dumps((compiled.issue, parts), pickle.HIGHEST_PROTOCOL)
        private_dir(cache.parent.parent)
        write_private(cache, fingerprint + _seal(key, fingerprint, payload) + payload)
