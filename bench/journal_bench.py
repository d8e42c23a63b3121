"""Cost of the delivery journal's per-recipient calls (each mark commits at once).

Run: python bench/journal_bench.py [--n 20000] [--dir DIR]
The journal is created in a fresh folder under DIR (default: the current folder, so
the figure is for this disk, not a RAM-backed /tmp).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from gigo_mail.journal.deliveries import Journal


def per_call(label: str, n: int, seconds: float) -> None:
    print(f"{label:<34} {seconds / n * 1e6:8.1f} us/call   ({n:,} calls, {n / seconds:,.0f}/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--dir", type=Path, default=Path.cwd())
    args = parser.parse_args()
    n: int = args.n
    folder = Path(tempfile.mkdtemp(prefix="gigo-journal-bench-", dir=args.dir))
    try:
        with Journal(folder / "journal.sqlite3") as journal:
            run = journal.begin_run("bench", n * 2)
            keys = [f"user{i}@example.com" for i in range(n)]

            start = time.perf_counter()
            for key in keys:
                journal.mark_sent("bench", key, key, "<id@example.com>", 250, "2.0.0 Ok: queued")
            per_call("mark_sent (new row)", n, time.perf_counter() - start)

            start = time.perf_counter()
            for key in keys:
                journal.mark_sending("bench2", key, key, "<id@example.com>")
            per_call("mark_sending (new row)", n, time.perf_counter() - start)

            start = time.perf_counter()
            for key in keys:
                journal.mark_sent("bench2", key, key, "<id@example.com>", 250, "2.0.0 Ok: queued")
            per_call("mark_sent (after mark_sending)", n, time.perf_counter() - start)

            start = time.perf_counter()
            for key in keys:
                journal.record("bench", key)
            per_call("record (indexed lookup)", n, time.perf_counter() - start)

            start = time.perf_counter()
            for key in keys:
                journal.is_suppressed(key)
            per_call("is_suppressed", n, time.perf_counter() - start)

            journal.end_run(run, "complete")
        size = sum(p.stat().st_size for p in folder.iterdir())
        print(f"journal size after {2 * n:,} deliveries: {size / 1e6:.1f} MB")
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
