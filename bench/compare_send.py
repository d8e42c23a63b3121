"""The whole `gigo-mail send` of this checkout against an older revision, in the same run.

Run: python bench/compare_send.py --rev 0bc6998 [--messages 20000] [--repeat 3]

Each sends its own issue 011 (its own gigo-mail.toml, templates and issues, so the message
sizes may differ; both are printed) to the same generated list into one Postfix smtp-sink,
alternating, with smtp-source (8 sessions, this checkout's message size) in every round as the
reference. The older revision is taken with ``git archive`` into a temporary folder and its
``src/`` put first on PYTHONPATH (its dependencies must be installed in this environment).
Prints msg/s, CPU per message (user + system, from wait4) and peak RSS, medians of the
rounds, and each one's ratio to smtp-source.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from send_bench import REPO, Sink, factory_for, make_root, smtp_source_rate, timed_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rev", required=True, help="the git revision to compare against")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="gigo-compare-"))
    sink = None
    try:
        old = work / "old"
        old.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", args.rev, "src", "gigo-mail.toml",
                                  "templates", "issues"], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        roots = {args.rev: make_root(work / "old-nl", args.messages, old),
                 "this checkout": make_root(work / "nl", args.messages)}
        size = factory_for(roots["this checkout"])
        sink = Sink()
        if sink.kind != "smtp-sink":
            raise SystemExit("this comparison needs Postfix's smtp-sink (apt-get install postfix)")
        print(f"{args.messages:,} messages of issue 011 into smtp-sink, each revision its own (this "
              f"checkout's: {size / 1024:.1f} KB); {args.repeat} rounds; {os.cpu_count()} CPUs")
        runs: dict[str, list[tuple[float, float, float]]] = {args.rev: [], "this checkout": []}
        source: list[float] = []
        gigo = [sys.executable, "-c", "from gigo_mail.cli.app import main; main()", "send", "011", "--list",
                "list.csv", "--yes", "--smtp", sink.url]
        for round_ in range(1, args.repeat + 1):
            for name, path in ((args.rev, old / "src"), ("this checkout", REPO / "src")):
                root = roots[name]
                shutil.rmtree(root / ".gigo", ignore_errors=True)
                env = {**os.environ, "GIGO_UNSUBSCRIBE_SECRET": "bench", "PYTHONPATH": str(path)}
                seconds, peak, code, err, cpu = timed_cpu(gigo, cwd=root, env=env)
                if code != 0:
                    raise SystemExit(f"{name}: gigo-mail send failed: {err.decode()[-1000:]}")
                runs[name].append((args.messages / seconds, cpu / args.messages * 1e6, peak))
            if (rate := smtp_source_rate(sink.port, args.messages, size)) is not None:
                source.append(rate)
            print(f"round {round_}: " + ", ".join(f"{name} {values[-1][0]:,.0f} msg/s"
                                                  for name, values in runs.items())
                  + (f", smtp-source {source[-1]:,.0f} msg/s" if source else ""), flush=True)
        print()
        print(f"{'':<16} {'msg/s':>8} {'CPU µs/msg':>11} {'peak RSS MB':>12} {'/ smtp-source':>14}")
        reference = statistics.median(source) if source else 0.0
        for name, values in runs.items():
            rate = statistics.median(v[0] for v in values)
            ratio = f"{rate / reference:.2f}x" if reference else "-"
            print(f"{name:<16} {rate:8,.0f} {statistics.median(v[1] for v in values):11,.0f} "
                  f"{statistics.median(v[2] for v in values):12,.0f} {ratio:>14}")
        if source:
            print(f"{'smtp-source':<16} {reference:8,.0f}")
    finally:
        if sink is not None:
            sink.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
