"""Memory and speed of reading a large subscriber list (the reader must stream).

Run: python bench/subscribers_bench.py [--rows 1000000]
Writes a list with ~1 % duplicates, ~1 % invalid rows and a few unsubscribed ones,
then reads it with check_list in a fresh process per size and prints peak RSS.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import resource, sys, time
from pathlib import Path
from gigo_mail.subscribers import check_list
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
report = check_list(Path(sys.argv[1])) if sys.argv[2] == "read" else None
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
counts = "" if report is None else f"valid={report.valid:,} " + " ".join(
    f"{k}={v:,}" for k, v in report.skipped_counts.items())
print(f"{base} {peak} {seconds:.2f} {counts}")
"""


def write_list(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write("email,first_name,last_name,status,city\n")
        for i in range(rows):
            if i % 100 == 7:
                out.write(f"broken{i}@,Bro,Ken,,Nowhere\n")
            elif i % 100 == 42:
                out.write(f"User{i - 1}@Example.com,Du,Plicate,,Oslo\n")
            elif i % 500 == 3:
                out.write(f"user{i}@example.com,Un,Sub,unsubscribed,Rome\n")
            else:
                out.write(f"user{i}@example.com,Ann {i},Smith,subscribed,Zürich\n")


def measure(path: Path, mode: str) -> str:
    result = subprocess.run([sys.executable, "-c", CHILD, str(path), mode], capture_output=True,
                            text=True, check=True)
    return result.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="*", default=[100_000, 1_000_000])
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="gigo-list-bench-"))
    try:
        idle = measure(folder / "none.csv", "idle").split()
        print(f"interpreter + gigo_mail.subscribers imported: peak RSS {int(idle[1]) / 1024:.1f} MB")
        for rows in args.rows:
            path = folder / f"list-{rows}.csv"
            start = time.perf_counter()
            write_list(path, rows)
            written = time.perf_counter() - start
            base, peak, elapsed, *counts = measure(path, "read").split()
            seconds = float(elapsed)
            print(f"{rows:>9,} rows ({path.stat().st_size / 1e6:.0f} MB, written in {written:.1f} s): "
                  f"peak RSS {int(peak) / 1024:.1f} MB (+{(int(peak) - int(base)) / 1024:.1f} MB while "
                  f"reading), {seconds:.1f} s = {seconds / rows * 1e6:.1f} us/row")
            print(f"{'':>10}{' '.join(counts)}")
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
