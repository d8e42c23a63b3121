"""The live preview: compile an issue, serve it on 127.0.0.1, recompile on every save.

A polling watcher (an mtime scan every half second, no extra dependency) notices
edits to the issue, the newsletter's templates/ and gigo-mail.toml, recompiles,
and bumps a version number. Pages long-poll ``/version`` and reload when it
moves. A compile error after an edit becomes one line on the page; the last good
build stays visible underneath so the writer keeps their place.

The HTTP side lives in preview_http.py; the pages in preview_pages.py.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from gigo_mail.check.report import Finding
from gigo_mail.check.run import local_checks
from gigo_mail.compose.compile import GMAIL_CLIP_BYTES, compile_issue
from gigo_mail.compose.issue import INDEX_NAME, find_issue
from gigo_mail.config import CONFIG_NAME, load_config
from gigo_mail.errors import GigoError
from gigo_mail.send.samples import list_sample_fields

POLL_INTERVAL = 0.5
SETTLE = 0.05  # a change must hold this long before a rebuild reads it (a save may be mid-write)
Built = TypeVar("Built")


@dataclass(frozen=True)
class Rendered:
    """What the preview shows of one successful compile."""

    key: str
    subject: str
    preheader: str
    html: str  # the email as a subscriber sees it, filled with sample values
    text: str  # the plain-text part, filled the same way
    html_bytes: int  # size of the compiled HTML: what Gmail's clip limit applies to
    warnings: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    compile_ms: float = 0.0
    images: tuple[str, ...] = ()  # how each local image travels; sizes not known
    folder: Path | None = None  # where the issue's relative images live
    checks: tuple[Finding, ...] = ()  # the preflight's offline part (check.local_checks)

    @property
    def clip_ratio(self) -> float:
        return self.html_bytes / GMAIL_CLIP_BYTES


class IssueBuilder:
    """Compiles one issue from disk, re-reading the config and the issue every time."""

    def __init__(self, root: Path, ref: str) -> None:
        self.root = load_config(root).root
        self.ref = ref
        self.issue = find_issue(self.root, ref)  # a wrong name fails now, before any server starts

    def build(self) -> Rendered:
        config = load_config(self.root)
        self.issue = find_issue(self.root, str(self.issue.path))
        compiled = compile_issue(config, self.issue, sample=list_sample_fields(config))
        report = compiled.report
        return Rendered(
            key=self.issue.key,
            subject=compiled.preview_subject(),
            preheader=self.issue.preheader,
            html=compiled.preview_html(),
            text=compiled.preview_text(),
            html_bytes=report.html_bytes,
            warnings=tuple(report.warnings),
            errors=tuple(report.errors),
            compile_ms=report.compile_ms,
            images=tuple(report.images),
            folder=self.issue.folder,
            checks=tuple(local_checks(compiled)),
        )

    def watch_paths(self) -> list[Path]:
        """The issue (its whole folder for folder issues), templates/ and gigo-mail.toml."""
        path = self.issue.path
        source = path.parent if path.name == INDEX_NAME else path
        return [source, self.root / "templates", self.root / CONFIG_NAME]


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, GigoError):
        text = str(exc)
    else:  # a bug rather than a user mistake: say where, still on one line
        frame = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
        where = f" at {Path(frame[0].filename).name}:{frame[0].lineno}" if frame else ""
        text = f"{type(exc).__name__}: {exc}{where}"
    return " ".join(text.split())


@dataclass
class PreviewState(Generic[Built]):
    """The latest build (or error) and a version number that moves on every rebuild.

    A build is a Rendered issue for the preview, a PublishReport for `publish --serve`."""

    build: Callable[[], Built]
    version: int = 0
    current: Built | None = None
    error: str = ""
    built_at: float = 0.0
    inbox_version: int = 0
    last_build_ms: float = 0.0
    on_change: Callable[[PreviewState[Built]], None] | None = None  # e.g. a terminal line per rebuild
    _cond: threading.Condition = field(default_factory=threading.Condition, repr=False)

    def rebuild(self) -> None:
        """Compile again; an error is kept as one line and the last good build stays."""
        started = time.monotonic()
        try:
            rendered, error = self.build(), ""
        except Exception as exc:  # noqa: BLE001 - the server must outlive a bad edit
            rendered, error = None, _one_line(exc)
        with self._cond:
            if rendered is not None:
                self.current = rendered
            self.error = error
            self.built_at = time.time()
            self.version += 1
            self._cond.notify_all()
        self.last_build_ms = (time.monotonic() - started) * 1000
        if self.on_change is not None:
            self.on_change(self)

    def bump_inbox(self) -> None:
        with self._cond:
            self.inbox_version += 1
            self._cond.notify_all()

    def wait(self, after: int | None, inbox_after: int | None, timeout: float) -> tuple[int, int]:
        """Block until the build or inbox version differs from the given ones, or timeout."""
        def changed() -> bool:
            return ((after is not None and self.version != after)
                    or (inbox_after is not None and self.inbox_version != inbox_after))

        with self._cond:
            if after is not None or inbox_after is not None:
                self._cond.wait_for(changed, timeout=timeout)
            return self.version, self.inbox_version

    def wake_all(self) -> None:
        """Release long-polls at shutdown."""
        with self._cond:
            self._cond.notify_all()


def _skip(name: str) -> bool:
    # editor swap and backup files change constantly and never affect the email
    return name.startswith(".") or name.endswith(("~", ".swp", ".swx", ".tmp"))


def scan(paths: Iterable[Path]) -> frozenset[tuple[str, int, int]]:
    """A signature of the files under ``paths``: changes when any is added, removed or saved."""
    seen: set[tuple[str, int, int]] = set()
    for path in paths:
        if path.is_dir():
            for folder, dirs, files in os.walk(path):
                dirs[:] = [d for d in dirs if not _skip(d)]
                for name in files:
                    if _skip(name):
                        continue
                    full = os.path.join(folder, name)
                    try:
                        st = os.stat(full)
                    except OSError:
                        continue
                    seen.add((full, st.st_mtime_ns, st.st_size))
        else:
            try:
                st = path.stat()
            except OSError:
                continue
            seen.add((str(path), st.st_mtime_ns, st.st_size))
    return frozenset(seen)


def _maildir_signature(maildir: Path | None) -> tuple[int, ...]:
    if maildir is None:
        return ()
    stamps = []
    for sub in ("new", "cur"):
        try:
            st = (maildir / sub).stat()
            stamps += [st.st_mtime_ns, st.st_nlink]
        except OSError:
            stamps += [0, 0]
    return tuple(stamps)


class Watcher(threading.Thread):
    """Polls the watched files and the inbox; rebuilds on change. A daemon: never blocks exit."""

    def __init__(self, state: PreviewState, paths: Callable[[], list[Path]],
                 maildir: Path | None = None, interval: float = POLL_INTERVAL) -> None:
        super().__init__(name="gigo-preview-watcher", daemon=True)
        self.state = state
        self.paths = paths
        self.maildir = maildir
        self.interval = interval
        self.stopped = threading.Event()
        self._files = scan(paths())
        self._inbox = _maildir_signature(maildir)

    def check(self) -> bool:
        """One scan; returns True when it triggered a rebuild."""
        inbox = _maildir_signature(self.maildir)
        if inbox != self._inbox:
            self._inbox = inbox
            self.state.bump_inbox()
        files = scan(self.paths())
        if files == self._files:
            return False
        time.sleep(SETTLE)  # an editor that truncates then writes: do not build the half-written file
        if scan(self.paths()) != files:
            return False  # still changing: the next scan looks again
        self._files = files
        self.state.rebuild()
        return True

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                self.check()
            except Exception:  # noqa: BLE001 - a vanished folder must not end live reload
                continue

    def stop(self) -> None:
        self.stopped.set()
