"""The configured list's first sendable row, for previews and test sends.

Compiling never reads the list or the journal: the callers that want a real reader's
values (the preview and a test send) pick one here and hand it to ``compile_issue``, so a
damaged journal or list cannot stop ``build``, ``publish`` or ``check``."""

from __future__ import annotations

from gigo_mail.config import Config
from gigo_mail.errors import GigoError
from gigo_mail.journal.deliveries import Journal
from gigo_mail.lists.reader import Subscriber, first_sendable

__all__ = ["configured_sample", "list_sample_fields"]


def configured_sample(config: Config) -> Subscriber | None:
    """The first row a send would mail from the configured list (``[list] path``), honouring
    the suppression list; None when no list is configured, it has no such row, or the list or
    the journal cannot be read (a preview then shows made-up values rather than failing)."""
    if not config.list_settings.path:
        return None
    path = config.root / config.list_settings.path
    if not path.is_file():
        return None
    try:
        journal = Journal.existing(config.root)
    except GigoError:
        return None
    try:
        return first_sendable(path, journal.is_suppressed if journal else None, config.list_settings)
    except GigoError:
        return None
    finally:
        if journal is not None:
            journal.close()


def list_sample_fields(config: Config) -> dict[str, str] | None:
    """The fields of :func:`configured_sample`, or None."""
    sample = configured_sample(config)
    return None if sample is None else dict(sample.fields)
