"""The one-line warning ``send``, ``publish`` and ``check`` give when a subscriber list is
tracked by git in a repository that has a remote (see ``lists.privacy``)."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape

from gigo_mail.cli.console import err_console
from gigo_mail.config import Config
from gigo_mail.lists.privacy import exposure_warning


def warn_tracked_lists(config: Config, *also: Path | None) -> None:
    """Warn (stderr, one line) if ``[list] path`` or any of ``also`` is one push from public."""
    candidates = [path for path in (*also,) if path is not None]
    if config.list_settings.path:
        candidates.append(config.root / config.list_settings.path)
    warning = exposure_warning(config.root, candidates)
    if warning:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)
