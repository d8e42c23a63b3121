"""Cost of `gigo-mail publish` for a newsletter with many issues, against compiling them alone.

Run: python bench/publish_bench.py [--issues 50] [--repeat 5]
Copies of issue 011 become issues 001..N. The reference is compile_issue over the same
issues in the same run: publish compiles each issue once, so the ratio shows what
the pages, feeds and sitemap add on top. A second publish with nothing changed
writes no file; its time is that of compiling and comparing.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from gigo_mail.compose.compile import compile_issue
from gigo_mail.compose.issue import list_issues
from gigo_mail.config import load_config
from gigo_mail.web.publish import publish

REPO = Path(__file__).resolve().parents[1]


def newsletter(folder: Path, count: int) -> Path:
    for name in ("gigo-mail.toml", "subscribers.csv"):
        shutil.copy(REPO / name, folder / name)
    shutil.copytree(REPO / "templates", folder / "templates")
    source = (REPO / "issues" / "011.md").read_text(encoding="utf-8")
    (folder / "issues").mkdir()
    for number in range(1, count + 1):
        text = source.replace("number: 11", f"number: {number}").replace(
            "date: 2024-02-20", f"date: 2024-{1 + number // 28 % 12:02d}-{1 + number % 28:02d}")
        (folder / "issues" / f"{number:03d}.md").write_text(text, encoding="utf-8")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--issues", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gigo-publish-bench-") as tmp:
        root = newsletter(Path(tmp), args.issues)
        config = load_config(root)
        compile_s, cold_s, warm_s = [], [], []
        for _ in range(args.repeat):
            start = time.perf_counter()
            for issue in list_issues(root):
                compile_issue(config, issue)
            compile_s.append(time.perf_counter() - start)
            shutil.rmtree(root / "site", ignore_errors=True)
            start = time.perf_counter()
            cold = publish(config)
            cold_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            warm = publish(config)
            warm_s.append(time.perf_counter() - start)
            assert warm.written == [], warm.written
        files = len(cold.written)
        size = sum(p.stat().st_size for p in (root / "site").rglob("*") if p.is_file())
    n = args.issues
    ref = statistics.median(compile_s)
    print(f"{n} issues, {files} files, {size / 1024:.0f} KB; medians of {args.repeat} "
          f"(Python {sys.version.split()[0]})")
    print(f"{'compile_issue only (reference)':<36} {ref:7.2f} s  {ref / n * 1000:6.1f} ms/issue")
    for label, values in (("publish, empty site/", cold_s), ("publish again, nothing changed", warm_s)):
        median = statistics.median(values)
        print(f"{label:<36} {median:7.2f} s  {median / n * 1000:6.1f} ms/issue  "
              f"{median / ref:4.2f}x reference")


if __name__ == "__main__":
    main()
