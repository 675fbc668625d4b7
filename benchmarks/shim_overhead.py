"""Shim overhead: `aws s3api list-buckets` against moto_server, bare vs through the hoop shim.

Both run the same awscli v1 from this virtualenv. The shim path is the hot path an agent sees on
every call once warm: policy from the local cache, ID token from its cache file, credentials from
the scope cache, a write-ahead record (fsync) before and a result record after, masking of the
output, and a probe for the background uploader. Runs alternate (bare, shim) so that machine
noise hits both alike; the figure is the median of the per-pair ratios.

    .venv/bin/python benchmarks/shim_overhead.py [--pairs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hoopcli.demo.stack import SANDBOX_KEYS, local_stack  # noqa: E402
from hoopcli.shimfile import install_shim  # noqa: E402


CPU: list[tuple[str, float]] = []


def timed(cmd: list[str], env: dict[str, str], label: str = "") -> float:
    """Wall time of one run; its CPU time (user + sys, from wait4) goes to CPU."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read() if proc.stderr else b""
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {err.decode()[-500:]}")
    CPU.append((label, usage.ru_utime + usage.ru_stime))
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=15)
    args = parser.parse_args()
    real_aws = str(Path(sys.executable).with_name("aws"))
    with local_stack(users={"dev": ("developers",)}) as stack:
        stack.login("dev")
        import boto3

        boto3.client("s3", endpoint_url=stack.moto_url, region_name="us-east-1",
                     aws_access_key_id="testing", aws_secret_access_key="testing").create_bucket(Bucket="bench")
        shim = install_shim(stack.root / "bin")
        shim_env = stack.client_env("dev")
        shim_env["PATH"] = os.pathsep.join([str(shim.parent), os.path.dirname(sys.executable), "/usr/bin", "/bin"])
        shim_env["HOOP_NO_PROMPT"] = "1"
        bare_env = {k: v for k, v in shim_env.items() if not k.startswith("HOOP_")}
        bare_env.update(SANDBOX_KEYS)
        bare_cmd = [real_aws, "--endpoint-url", stack.moto_url, "s3api", "list-buckets"]
        shim_cmd = [str(shim), "s3api", "list-buckets"]
        for _ in range(3):                       # warm caches: policy, credentials, page cache
            timed(shim_cmd, shim_env)
            timed(bare_cmd, bare_env)
        bare, shimmed = [], []
        CPU.clear()
        for _ in range(args.pairs):
            bare.append(timed(bare_cmd, bare_env, "bare"))
            time.sleep(0.2)
            shimmed.append(timed(shim_cmd, shim_env, "shim"))
            time.sleep(0.2)
    ratios = [s / b for s, b in zip(shimmed, bare)]
    cpu_bare = [c for label, c in CPU if label == "bare"]
    cpu_shim = [c for label, c in CPU if label == "shim"]
    print(f"pairs: {args.pairs}")
    print(f"bare aws    median {statistics.median(bare) * 1000:7.1f} ms  (min {min(bare) * 1000:.1f})")
    print(f"through shim median {statistics.median(shimmed) * 1000:7.1f} ms  (min {min(shimmed) * 1000:.1f})")
    print(f"median ratio shim/bare: {statistics.median(ratios):.3f}  "
          f"(ratio of medians {statistics.median(shimmed) / statistics.median(bare):.3f}; target <= 1.05, goal <= 1.03)")
    print(f"CPU (user+sys) median: bare {statistics.median(cpu_bare) * 1000:.1f} ms, shim "
          f"{statistics.median(cpu_shim) * 1000:.1f} ms, ratio {statistics.median(cpu_shim) / statistics.median(cpu_bare):.3f}")


if __name__ == "__main__":
    main()
