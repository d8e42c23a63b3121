"""Memory and speed of reading a large subscriber list (the reader must stream).

Run: python bench/subscribers_bench.py [--rows 1000000] [--formats plain listmonk mailchimp]
     [--reference SRC]
Writes a list with ~1 % duplicates, ~1 % invalid rows and a few unsubscribed ones (a plain
CSV, a listmonk export with JSON attributes, or a Mailchimp export with tags), then reads it
with check_list in a fresh process per size and prints peak RSS. ``--reference SRC`` reads
the plain list with another copy of the package too (e.g. ``git archive main src | tar -x
-C /tmp/ref`` and ``--reference /tmp/ref/src``), as the baseline of the same run.
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
if len(sys.argv) > 3:
    sys.path.insert(0, sys.argv[3])
from gigo_mail.lists.reader import check_list
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start, cpu = time.perf_counter(), time.process_time()
report = check_list(Path(sys.argv[1])) if sys.argv[2] == "read" else None
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
counts = "" if report is None else f"valid={report.valid:,} " + " ".join(
    f"{k}={v:,}" for k, v in report.skipped_counts.items())
print(f"{base} {peak} {seconds:.2f} {cpu:.2f} {counts}")
"""


def _address(i: int) -> str:
    if i % 100 == 7:
        return f"broken{i}@"
    if i % 100 == 42:
        return f"User{i - 1}@Example.com"
    return f"user{i}@example.com"


def write_list(path: Path, rows: int, kind: str = "plain") -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        if kind == "plain":
            out.write("email,first_name,last_name,status,city\n")
            for i in range(rows):
                status = "unsubscribed" if i % 500 == 3 else "subscribed"
                out.write(f"{_address(i)},Ann {i},Smith,{status},Zürich\n")
        elif kind == "listmonk":
            out.write("uuid,email,name,attributes,status,created_at,updated_at\r\n")
            for i in range(rows):
                status = "blocklisted" if i % 500 == 3 else "enabled"
                attributes = '"{""city"": ""Zürich"", ""plan"": ""paid"", ""n"": ' + str(i) + '}"'
                out.write(f"00000000-0000-4000-8000-{i:012d},{_address(i)},Ann {i} Smith,{attributes},"
                          f"{status},2024-01-01 10:00:00 +0000 UTC,2024-01-01 10:00:00 +0000 UTC\r\n")
        else:  # mailchimp subscribed export
            out.write('"Email Address","First Name","Last Name","MEMBER_RATING","OPTIN_TIME","LEID","EUID",'
                      '"NOTES","TAGS"\r\n')
            for i in range(rows):
                out.write(f'"{_address(i)}","Ann {i}","Smith",3,"2024-01-01 10:00:00","{i}","e{i}","",'
                          '"""paid"",""beta"""\r\n')


def measure(path: Path, mode: str, source: str | None = None) -> str:
    command = [sys.executable, "-c", CHILD, str(path), mode] + ([source] if source else [])
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return result.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--formats", nargs="*", default=["plain", "listmonk", "mailchimp"],
                        choices=["plain", "listmonk", "mailchimp"])
    parser.add_argument("--reference", help="another package source folder to read the plain list with")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="gigo-list-bench-"))
    try:
        idle = measure(folder / "none.csv", "idle").split()
        print(f"interpreter + gigo_mail.lists.reader imported: peak RSS {int(idle[1]) / 1024:.1f} MB "
              "(CPU time is the figure to compare on a shared machine; wall time follows the load)")
        for rows in args.rows:
            for kind in args.formats:
                path = folder / f"list-{kind}-{rows}.csv"
                start = time.perf_counter()
                write_list(path, rows, kind)
                written = time.perf_counter() - start
                sources = [("", None)]
                if kind == "plain" and args.reference:
                    sources.append((" (reference)", args.reference))
                for label, source in sources:
                    base, peak, elapsed, used, *counts = measure(path, "read", source).split()
                    seconds, cpu = float(elapsed), float(used)
                    grown = (int(peak) - int(base)) / 1024
                    print(f"{kind}{label} {rows:>9,} rows ({path.stat().st_size / 1e6:.0f} MB, written in "
                          f"{written:.1f} s): peak RSS {int(peak) / 1024:.1f} MB (+{grown:.1f} MB while "
                          f"reading), CPU {cpu:.1f} s = {cpu / rows * 1e6:.1f} us/row (wall {seconds:.1f} s)")
                    print(f"{'':>10}{' '.join(counts)}")
                path.unlink()
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
