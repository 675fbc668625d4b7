"""`make bench`: run every benchmark script in turn and print its figures.

Each script prints its own figures with the command that reproduces them; docs/benchmarks.md
holds the latest figures with the machine they ran on. A failing script is reported and the
others still run; the exit status is non-zero if any failed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = [
    "shim_overhead.py", "explain_throughput.py", "parse_accuracy.py", "policy_eval.py",
    "masking_cost.py", "login.py", "credential_vending.py", "spool.py", "ingest.py",
    "sessions_list.py", "approval_latency.py", "gateway.py",
]
# Scripts whose full form takes too long or too much memory for `make bench` run a quick form here.
ARGS = {"gateway.py": ["--quick"]}


def main() -> int:
    scripts = [HERE / name for name in ORDER if (HERE / name).exists()]
    scripts += sorted(p for p in HERE.glob("*.py") if p.name not in ORDER and p.name != Path(__file__).name)
    failed = []
    for script in scripts:
        print(f"\n=== {script.name} ===", flush=True)
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, str(script), *ARGS.get(script.name, [])], cwd=HERE.parent)
        print(f"--- {script.name}: exit {proc.returncode} in {time.monotonic() - t0:.0f} s", flush=True)
        if proc.returncode != 0:
            failed.append(script.name)
    if failed:
        print("failed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
