"""Throughput of `hoop explain --json -` (a real process, stdin -> JSONL stdout).

    .venv/bin/python benchmarks/explain_throughput.py [--lines 6000] [--runs 3]

Input: the awscli example corpus of benchmarks/parse_accuracy.py (real command lines), cycled to
--lines lines. Timed end to end, process start-up included; prints the median lines/s (wall
clock) and lines per CPU second of the child (meaningful on a busy shared machine).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from parse_accuracy import corpus  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=6000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    lines = [line for _, _, line in corpus() if "\n" not in line]
    batch = "".join(f"aws {lines[i % len(lines)]}\n" for i in range(args.lines)).encode()
    env = dict(os.environ, HOOP_HOME=tempfile.mkdtemp(prefix="hoop-bench-"))
    rates, cpu_rates = [], []
    for _ in range(args.runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "hoopcli", "explain", "--json", "-"],
                             input=batch, capture_output=True, check=True, env=env,
                             cwd=tempfile.gettempdir())
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        cpu_rates.append(args.lines / cpu)
        rows = out.stdout.decode().splitlines()
        assert len(rows) == args.lines, (len(rows), out.stderr[-500:])
        errors = sum(1 for r in rows if "error" in json.loads(r))
        rates.append(args.lines / elapsed)
        print(f"run: {args.lines} lines in {elapsed:.2f}s = {args.lines / elapsed:,.0f} lines/s wall, "
              f"{args.lines / cpu:,.0f} lines per CPU second ({errors} error lines, e.g. missing "
              f"--cli-input-json files)")
    print(f"median: {statistics.median(rates):,.0f} lines/s wall, "
          f"{statistics.median(cpu_rates):,.0f} lines per CPU second, over {args.runs} runs; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
