"""What does DKIM signing cost on the send path?

Run: python bench/dkim_bench.py [--messages 10000] [--repeat 3]

Into Postfix's smtp-sink on 127.0.0.1, each round and in its own process:

* unsigned: the real engine with default settings (8 pipelined connections, journal on), issue 011;
* rsa: the same with a 2048-bit RSA signature on every message (the RSA step in OpenSSL);
* rsa+ed25519: the same with an Ed25519 signature beside it (RFC 8463);
* smtp-source: Postfix's C load generator, 8 sessions, same message size, as the reference.

Then, in this process: the CPU cost of building one message unsigned and signed, of the
body hash alone, and of signing with dkimpy's pure-Python RSA (for comparison). Medians.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from send_bench import SIGNING, Sink, make_root, measured_child, smtp_source_rate  # noqa: E402
from send_bench import _factory as factory_with  # noqa: E402


def _factory(root: Path, mode: str):  # type: ignore[no-untyped-def]
    return factory_with(root, mode)[1]


def per_message(root: Path) -> None:
    """CPU microseconds per message (process time, so other load on the machine counts less),
    medians of 5 batches."""
    import dkim
    from cryptography.hazmat.primitives import serialization

    from gigo_mail.lists.reader import sample_subscriber

    subscriber = sample_subscriber("reader1@example.com", "Reader 1")
    rows = []
    for mode in ("unsigned", "rsa", "rsa+ed25519"):
        factory = _factory(root, mode)
        batches = []
        for _ in range(5):
            start = time.process_time()
            for _ in range(200):
                factory.build(subscriber)
            batches.append((time.process_time() - start) / 200 * 1e6)
        rows.append((f"build, {mode}", statistics.median(batches)))
        if mode == "rsa":
            signer = factory._signer
            parts = [b"x" * 100] + [piece for piece in signer._static]
            start = time.process_time()
            for _ in range(1000):
                signer.body_hash(parts)
            rows.append(("  of which the body hash", (time.process_time() - start) / 1000 * 1e6))
            key = signer.keys[0].key.private_bytes(serialization.Encoding.PEM,
                                                   serialization.PrivateFormat.TraditionalOpenSSL,
                                                   serialization.NoEncryption())
            unsigned = _factory(root, "unsigned").build(subscriber).data
            start = time.process_time()
            for _ in range(20):
                dkim.sign(unsigned, b"s1", b"gigo.dev", key, canonicalize=(b"relaxed", b"relaxed"))
            rows.append(("dkimpy sign (pure-Python RSA), for comparison",
                         (time.process_time() - start) / 20 * 1e6))
    print(f"\n{'CPU per message':<48} {'µs':>8}")
    for label, micros in rows:
        print(f"{label:<48} {micros:8.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cpu-only", action="store_true", help="only the per-message CPU figures")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="gigo-dkim-bench-"))
    try:
        root = make_root(work / "nl", args.messages)
        if args.cpu_only:
            per_message(root)
            return
        from gigo_mail.lists.reader import sample_subscriber

        size = len(_factory(root, "unsigned").build(sample_subscriber("reader1@example.com", "R")).data)
        sink = Sink()
        print(f"sink: {sink.kind} on 127.0.0.1:{sink.port}; {args.messages:,} messages of issue 011, "
              f"{size / 1024:.1f} KB each; {args.repeat} repeats; {os.cpu_count()} CPUs")
        modes = SIGNING
        figures: dict[str, list[float]] = {m: [] for m in (*modes, "smtp-source")}
        for round_ in range(1, args.repeat + 1):
            for mode in modes:
                shutil.rmtree(root / ".gigo", ignore_errors=True)
                result = measured_child("ours", root, sink.url, args.messages, signing=mode)
                assert result["sent"] == args.messages, result
                figures[mode].append(result["sent"] / result["seconds"])
            if (rate := smtp_source_rate(sink.port, args.messages, size)) is not None:
                figures["smtp-source"].append(rate)
            print(f"round {round_}: " + ", ".join(f"{k} {v[-1]:,.0f} msg/s" for k, v in figures.items() if v))
        sink.stop()
        print(f"\n{'engine, 8 connections, journal on':<48} {'msg/s (median)':>15}")
        for key, values in figures.items():
            if values:
                print(f"{key:<48} {statistics.median(values):15,.0f}")
        base = statistics.median(figures["unsigned"])
        for mode in modes[1:]:
            print(f"ratio {mode} / unsigned: {statistics.median(figures[mode]) / base:.2f}")
        per_message(root)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
