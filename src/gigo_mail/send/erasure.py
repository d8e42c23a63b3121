"""``subscribers forget``: erase a reader everywhere gigo-mail keeps them (GDPR art. 17).

The list file loses their rows, the signup store their signups and consent evidence, the
journal their address (deliveries keep their counts under a hashed key, soft bounces go);
what stays is a suppression by the SHA-256 of their address key, so that an old export or
a stale list cannot bring them back (``journal.suppressions.hashed_key``).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from gigo_mail.address import address_key
from gigo_mail.config import Config
from gigo_mail.journal.deliveries import Journal
from gigo_mail.journal.signups import SignupStore
from gigo_mail.send.signups import EMAIL_HEADERS, read_list_text, welcome_list, write_atomically


@dataclass(frozen=True)
class Forgotten:
    list_rows: int
    signup_rows: int
    journal_rows: int


def _drop_from_list(path: Path, key: str) -> int:
    text, delimiter = read_list_text(path)
    if not text:
        return 0
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    lowered = [h.strip().lower() for h in rows[0]] if rows else []
    column = next((lowered.index(h) for h in EMAIL_HEADERS if h in lowered), None)
    if column is None:
        return 0
    kept = [rows[0]] + [r for r in rows[1:] if not (len(r) > column and address_key(r[column]) == key)]
    gone = len(rows) - len(kept)
    if gone:
        out = io.StringIO()
        csv.writer(out, delimiter=delimiter, lineterminator="\n").writerows(kept)
        write_atomically(path, out.getvalue())
    return gone


def forget_reader(config: Config, email: str) -> Forgotten:
    """Erase ``email``; a hashed suppression stays."""
    key = address_key(email)
    _drop_from_list(welcome_list(config), key)  # not counted: a copy of the list's row
    settings = config.list_settings
    list_rows = _drop_from_list(config.root / settings.path, key) if settings.path else 0
    with SignupStore.for_state(config.state_dir) as store:
        signup_rows = store.forget(key)
    with Journal.for_root(config.root) as journal:
        journal_rows = journal.forget(key)
    return Forgotten(list_rows, signup_rows, journal_rows)
