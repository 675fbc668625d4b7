"""Throughput of `hoop explain --json -` (a real process, stdin -> JSONL stdout).

    .venv/bin/python benchmarks/explain_throughput.py [--lines 6000] [--runs 3]

Input: the awscli example corpus of benchmarks/parse_accuracy.py (real command lines), cycled to
--lines lines. Timed end to end, process start-up included; prints the median lines/s (wall
clock) and lines per CPU second of the child (meaningful on a busy shared machine). First, the
hot path alone: import of hoopcli.parse.invocation and the first parse, in fresh interpreters.
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

from parse_accuracy import corpus

HOT_PATH = """
import time
t0 = time.process_time()
from hoopcli.parse import parse
t1 = time.process_time()
parse({argv!r})
t2 = time.process_time()
print((t1 - t0) * 1000, (t2 - t1) * 1000)
"""


def hot_path(runs: int = 15) -> None:
    """Fresh interpreters: import of hoopcli.parse.invocation, then the first parse (index + one file)."""
    for argv in (["ec2", "describe-instances", "--instance-ids", "i-1"],
                 ["s3", "rm", "--recursive", "s3://b/p/"], ["sts", "get-caller-identity"]):
        imports, parses = [], []
        for _ in range(runs):
            out = subprocess.run([sys.executable, "-c", HOT_PATH.format(argv=argv)],
                                 capture_output=True, text=True, check=True)
            a, b = map(float, out.stdout.split())
            imports.append(a)
            parses.append(b)
        print(f"hot path `aws {' '.join(argv)}`: import {statistics.median(imports):.1f} CPU ms, "
              f"first parse {statistics.median(parses):.2f} CPU ms (medians of {runs} fresh processes)")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=6000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    hot_path()
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
