"""How fast ``gigo-mail unsubscribe --from FILE`` imports a large file of opt-outs.

Run: python bench/import_bench.py [--rows 1200000] [--reference SRC]
Writes a plain CSV (email, name: ~48 MB at 1.2 M rows, as the file in issue 19) and a file of
one address per line, then in a fresh process each:

* reads the CSV with the csv module and nothing else (the floor any reader stands on);
* imports it with the core (``iter_suppressions`` into ``Journal.suppress_each``, one
  transaction), and the same for the one-per-line file;
* runs the whole command, ``gigo-mail unsubscribe --from FILE``, into a fresh journal.

``--reference SRC`` also imports the CSV with another copy of the package (``git archive
REV src | tar -x -C /tmp/ref`` and ``--reference /tmp/ref/src``), through its own API.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLOOR = """
import csv, sys, time
start, cpu = time.perf_counter(), time.process_time()
with open(sys.argv[1], encoding="utf-8", newline="") as handle:
    rows = sum(1 for row in csv.reader(handle) if row and "@" in row[0])
print(f"{time.perf_counter() - start:.2f} {time.process_time() - cpu:.2f} {rows}")
"""

CORE = """
import sys, tempfile, time
from pathlib import Path
if len(sys.argv) > 2:
    sys.path.insert(0, sys.argv[2])
from gigo_mail.journal.deliveries import Journal
root = Path(tempfile.mkdtemp())
(root / "gigo-mail.toml").write_text("")
start, cpu = time.perf_counter(), time.process_time()
try:
    from gigo_mail.lists.importing import iter_suppressions
except ImportError:
    iter_suppressions = None
with Journal.for_root(root) as journal:
    if iter_suppressions is not None and hasattr(journal, "suppress_each"):
        why = f"imported from {Path(sys.argv[1]).name}"  # the reasons the command writes
        rows = iter_suppressions(Path(sys.argv[1]))
        added, total = journal.suppress_each((e, f"{k}: {why}") for e, k in rows)
    else:  # an older copy: read everything, then one suppress per group
        from gigo_mail.lists.importing import suppressions_from_file
        added = sum(journal.suppress(a, k) for k, a in suppressions_from_file(Path(sys.argv[1])).items())
print(f"{time.perf_counter() - start:.2f} {time.process_time() - cpu:.2f} {added}")
"""


def write_files(folder: Path, rows: int) -> tuple[Path, Path]:
    names = ("anna", "jonas", "lea", "paul", "mia", "felix", "emma", "noah", "olivia", "liam")
    domains = ("example.org", "mail.example.com", "post.example.de", "example.net", "inbox.example.fr")
    csv_path, txt_path = folder / "optouts.csv", folder / "optouts.txt"
    with csv_path.open("w", encoding="utf-8") as out, txt_path.open("w", encoding="utf-8") as bare:
        out.write("email,name\n")
        for i in range(rows):
            first, last = names[i % 10], names[(i // 10) % 10]
            address = f"{first}.{last}{i}@{domains[i % 5]}"
            out.write(f"{address},{first.title()} {last.title()}\n")
            bare.write(address + "\n")
    return csv_path, txt_path


def child(code: str, *args: str, env: dict[str, str] | None = None) -> list[str]:
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True,
                            env=env)
    return result.stdout.split()


def show(label: str, seconds: float, cpu: float, note: str = "") -> None:
    print(f"{label:46s} {seconds:7.2f} {cpu:7.2f}  {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_200_000)
    parser.add_argument("--reference", help="src folder of another copy of gigo_mail")
    args = parser.parse_args()
    src = str(Path(__file__).resolve().parent.parent / "src")
    env = {**os.environ, "PYTHONPATH": src}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        csv_path, txt_path = write_files(folder, args.rows)
        megabytes = csv_path.stat().st_size / 1e6, txt_path.stat().st_size / 1e6
        print(f"{args.rows:,} addresses: CSV {megabytes[0]:.1f} MB, one per line {megabytes[1]:.1f} MB; "
              f"load average {os.getloadavg()[0]:.1f}")
        print(f"{'':46s} {'wall s':>7s} {'CPU s':>7s}")
        seconds, cpu, rows = child(FLOOR, str(csv_path))
        show("csv module, reading only (the floor)", float(seconds), float(cpu), f"{int(rows):,} rows")
        seconds, cpu, added = child(CORE, str(csv_path), src)
        show("core import of the CSV (one transaction)", float(seconds), float(cpu), f"{int(added):,} added")
        seconds, cpu, added = child(CORE, str(txt_path), src)
        show("core import, one address per line", float(seconds), float(cpu), f"{int(added):,} added")
        root = folder / "nl"
        root.mkdir()
        (root / "gigo-mail.toml").write_text('[newsletter]\nname = "Bench"\nfrom = "Bench <b@example.org>"\n')
        start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-m", "gigo_mail", "unsubscribe", "--from", str(csv_path)], cwd=root,
                       env=env, check=True, capture_output=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_used = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        show("gigo-mail unsubscribe --from (whole command)", time.perf_counter() - start, cpu_used,
             f"peak RSS {after.ru_maxrss // 1024} MB")
        if args.reference:
            seconds, cpu, added = child(CORE, str(csv_path), args.reference)
            show("reference copy, core import of the CSV", float(seconds), float(cpu),
                 f"{int(added):,} added")


if __name__ == "__main__":
    main()
