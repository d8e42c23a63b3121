"""Is a big dry run linear in CPU and flat in memory?

Run: python bench/dryrun_bench.py [--rows 100000,1000000] [--src DIR ...] [--repeat 1]

Times `gigo-mail send 011 --list list.csv --dry-run --no-write` (the plan pass, then every
message rendered, none written) over generated lists of each size, in a child process per run:
CPU (user + system, from wait4) per row and peak RSS. Each ``--src`` is a tree's ``src`` folder
(e.g. main's checkout, to compare before and after in the same rounds); the runs alternate
between them, so the machine's load falls on all alike. The list has no duplicates: every
row reaches the duplicate table, its worst case.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from send_bench import REPO, make_root, timed_cpu  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="100000,1000000", help="comma-separated list sizes")
    parser.add_argument("--src", action="append", type=Path, help="a src folder (default: this tree's)")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    sizes = [int(n) for n in args.rows.split(",")]
    sources = [s.resolve() for s in args.src or [REPO / "src"]]
    work = Path(tempfile.mkdtemp(prefix="gigo-dryrun-bench-"))
    gigo = [sys.executable, "-c", "from gigo_mail.cli.app import main; main()"]
    try:
        print(f"{'src':<40} {'rows':>10} {'seconds':>8} {'µs CPU/row':>11} {'peak RSS MB':>12}")
        for rows in sizes:
            root = make_root(work / f"n{rows}", rows)
            for _ in range(args.repeat):
                for src in sources:
                    env = {**os.environ, "GIGO_UNSUBSCRIBE_SECRET": "bench", "PYTHONPATH": str(src)}
                    command = [*gigo, "send", "011", "--list", "list.csv", "--dry-run", "--no-write"]
                    seconds, peak, code, err, cpu = timed_cpu(command, cwd=root, env=env)
                    if code != 0:
                        raise SystemExit(f"dry run failed ({src}): {err.decode()[-1000:]}")
                    print(f"{str(src)[-40:]:<40} {rows:>10,} {seconds:>8.1f} {cpu / rows * 1e6:>11.1f} "
                          f"{peak:>12.0f}", flush=True)
            shutil.rmtree(root, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
