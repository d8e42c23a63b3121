"""The fixed costs a user waits for: `gigo-mail --help`, `gigo-mail status 011` after a 20,000-recipient
send and `gigo-mail build 011`, against `python -c "import typer, rich.console"` in the same rounds.

Run: python bench/startup_bench.py [--repeat 7] [--reference OTHER/src]

The commands alternate in every round, so the machine's load falls on all alike; medians of
wall time and of CPU time (user + system, from wait4: less moved by other work on the machine).
Bytecode is cached in a private folder, as after an install. ``--reference`` runs the same
commands with another checkout's package (e.g. main before a change) in the same rounds.
The journal is written with SQL (20,000 delivered recipients of 011 in one run).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support import make_newsletter  # noqa: E402


def sent_journal(root: Path, count: int) -> None:
    """A journal as a completed send of 011 to ``count`` recipients leaves it."""
    from gigo_mail.journal.deliveries import Journal

    with Journal.for_root(root) as journal:
        run = journal.begin_run("011", count)
        journal.end_run(run, "complete")
    db = sqlite3.connect(root / ".gigo" / "journal.sqlite3")
    at = "2026-12-01T09:00:00.000+00:00"
    db.executemany("INSERT INTO deliveries (issue_key, key, email, status, attempts, code, text, message_id, "
                   "run_id, first_at, updated_at) "
                   "VALUES ('011', ?, ?, 'sent', 1, 250, '2.0.0 Ok: queued', ?, ?, ?, ?)",
                   ((f"reader{i}@example.com", f"reader{i}@example.com", f"<{i}.bench@gigo.dev>", run, at, at)
                    for i in range(count)))
    db.commit()
    db.close()


def run(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed")
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--reference", type=Path, help="another checkout's src/ to time beside this one")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gigo-startup-bench-"))
    try:
        root = make_newsletter(work / "nl")
        sent_journal(root, args.recipients)
        cache = work / "pycache"
        base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        base["PYTHONPYCACHEPREFIX"] = str(cache)
        sources = {"this": REPO / "src"} | ({"reference": args.reference.resolve()} if args.reference else {})
        gigo = [sys.executable, "-m", "gigo_mail"]
        commands: dict[str, tuple[list[str], dict[str, str]]] = {
            "import typer, rich.console": ([sys.executable, "-c", "import typer, rich.console"], base)}
        for label, src in sources.items():
            env = {**base, "PYTHONPATH": str(src)}
            commands[f"{label}: --help"] = ([*gigo, "--help"], env)
            commands[f"{label}: status 011"] = ([*gigo, "status", "011"], env)
            commands[f"{label}: build 011"] = ([*gigo, "build", "011"], env)
        wall: dict[str, list[float]] = {name: [] for name in commands}
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        for round_ in range(args.repeat + 1):
            for name, (command, env) in commands.items():
                seconds, used = run(command, root, env)
                if round_:  # the first round fills the bytecode cache (and adds any new index once)
                    wall[name].append(seconds)
                    cpu[name].append(used)
        reference = statistics.median(wall["import typer, rich.console"])
        print(f"medians of {args.repeat}, {args.recipients:,} recipients in the journal, load average "
              f"{os.getloadavg()[0]:.1f}")
        print(f"{'command':<28} {'wall':>8} {'CPU':>8} {'x reference (wall)':>19}")
        for name in commands:
            w, c = statistics.median(wall[name]), statistics.median(cpu[name])
            print(f"{name:<28} {w * 1000:6.0f}ms {c * 1000:6.0f}ms {w / reference:18.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
