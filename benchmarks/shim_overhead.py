"""Shim overhead: `aws s3api list-buckets` against moto_server, bare vs through the hoop shim.

Three commands run in turn, `--pairs` times each, after warm-up runs:

- bare:   the virtualenv's own `aws` (awscli v1), keys in the environment;
- same:   the same awscli with the process handling hoop's launcher gives every call (GC paused
          during startup, fast exit: benchmarks/aws_same_handling.py), and nothing else;
- shim:   the installed hoop shim, on the warm path an agent sees on every call (ID token, policy
          and scope-bound credentials from their caches, a write-ahead record and a result record
          with an fsync each, masking of argv and output, the uploader probe).

shim/bare is what an agent sees. shim/same is the cost of hoop's own work: the overhead target
(<= 1.05, goal <= 1.03) is about that one. Wall time per run and CPU time (user + sys, from
wait4); figures are medians. `--instructions N` also counts the instructions of N runs of each
command under valgrind (callgrind): a measure of hoop's own work that machine noise does not move.

    .venv/bin/python benchmarks/shim_overhead.py [--pairs 20] [--instructions 3] [--hold-uploads]
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hoopcli.agents.shimfile import install_shim  # noqa: E402
from hoopcli.demo.stack import SANDBOX_KEYS, local_stack  # noqa: E402

NAMES = ("bare", "same", "shim")


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process: user + sys from wait4)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    err = proc.stderr.read() if proc.stderr else b""
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{cmd[0]} failed ({code}): {err.decode(errors='replace')[-500:]}")
    return elapsed, usage.ru_utime + usage.ru_stime


def instructions(cmd: list[str], env: dict[str, str]) -> int:
    """Instructions executed by one run (valgrind's callgrind; the process itself, not children)."""
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                          "--trace-children=no", *cmd], env=env, capture_output=True, text=True)
    found = re.search(r"Collected : (\d+)", out.stderr)
    if out.returncode != 0 or not found:
        raise SystemExit(f"valgrind run failed: {out.stderr[-500:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=20, help="runs of each command (default 20)")
    parser.add_argument("--instructions", type=int, default=0, metavar="N",
                        help="also count instructions of N runs of each command under valgrind")
    parser.add_argument("--hold-uploads", action="store_true",
                        help="keep the background uploader (and so the server's ingest) off the two "
                             "cores while measuring: records wait in the spool until the end")
    parser.add_argument("--connection", default="default",
                        help="the demo stack's connection the shim uses: default (credentials: vend) or "
                             "gateway (every call through hoop's gateway with a session credential)")
    args = parser.parse_args()
    if args.instructions and not shutil.which("valgrind"):
        raise SystemExit("--instructions needs valgrind (apt install valgrind)")
    # An installed hoopcli has its bytecode compiled; an editable checkout may not (or may hold
    # stale .pyc files under PYTHONDONTWRITEBYTECODE): compile it so the shim is not charged for it.
    compileall.compile_dir(str(ROOT / "hoopcli"), quiet=1)
    python = sys.executable
    with local_stack(users={"dev": ("developers",)}) as stack:
        stack.login("dev")
        import boto3

        boto3.client("s3", endpoint_url=stack.moto_url, region_name="us-east-1",
                     aws_access_key_id="testing", aws_secret_access_key="testing").create_bucket(Bucket="bench")
        shim = install_shim(stack.root / "bin")
        shim_env = stack.client_env("dev")
        shim_env["PATH"] = os.pathsep.join([str(shim.parent), os.path.dirname(python), "/usr/bin", "/bin"])
        shim_env["HOOP_NO_PROMPT"] = "1"
        shim_env["HOOP_CONNECTION"] = args.connection
        bare_env = {k: v for k, v in shim_env.items() if not k.startswith("HOOP_")}
        bare_env.update(SANDBOX_KEYS)
        aws_args = ["--endpoint-url", stack.moto_url, "s3api", "list-buckets"]
        commands = {
            "bare": ([str(Path(python).with_name("aws")), *aws_args], bare_env),
            "same": ([python, "-I", str(ROOT / "benchmarks" / "aws_same_handling.py"), *aws_args], bare_env),
            "shim": ([str(shim), "s3api", "list-buckets"], shim_env),
        }
        for _ in range(3):                       # warm caches: policy, credentials, page cache
            for name in NAMES:
                timed(*commands[name])
        held = hold_uploads(Path(shim_env["HOOP_HOME"])) if args.hold_uploads else None
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in NAMES}
        for _ in range(args.pairs):
            for name in NAMES:
                runs[name].append(timed(*commands[name]))
                time.sleep(0.3)      # let the background uploader and the server settle
        counts: dict[str, list[int]] = {name: [] for name in NAMES}
        for _ in range(args.instructions):
            for name in NAMES:
                cmd, env = commands[name]
                if name == "shim":               # the launcher's interpreter, with its -I flag
                    cmd = [python, "-I", *cmd]
                elif name == "bare":
                    cmd = [python, *cmd]
                counts[name].append(instructions(cmd, env))
        if held is not None:
            os.close(held)                       # the next shim run starts the uploader again
    report(args.pairs, runs, counts)


def hold_uploads(home: Path) -> int:
    """Hold the uploader's lock, as a running uploader does: the shim then starts none. Waits for
    the uploader the warm-up runs started to finish first."""
    import fcntl

    from hoopcli.paths import Layout
    from hoopcli.record.uploader import LOCK_NAME

    fd = os.open(Layout(home).spool_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)               # blocks until the lingering uploader exits
    return fd


def report(pairs: int, runs: dict[str, list[tuple[float, float]]], counts: dict[str, list[int]]) -> None:
    wall = {n: statistics.median(w for w, _ in runs[n]) * 1000 for n in NAMES}
    cpu = {n: statistics.median(c for _, c in runs[n]) * 1000 for n in NAMES}
    per_pair = {base: statistics.median(s[0] / b[0] for s, b in zip(runs["shim"], runs[base], strict=True))
                for base in ("bare", "same")}
    load = os.getloadavg()[0]
    print(f"runs of each: {pairs}; load average {load:.1f}")
    for n, label in (("bare", "bare aws"), ("same", "aws, same process handling"), ("shim", "through the shim")):
        print(f"  {label:28} wall median {wall[n]:6.1f} ms  CPU median {cpu[n]:6.1f} ms")
    print(f"shim / bare aws (what an agent sees):       wall {wall['shim'] / wall['bare']:.3f}  "
          f"CPU {cpu['shim'] / cpu['bare']:.3f}  per-pair {per_pair['bare']:.3f}")
    print(f"shim / same handling (hoop's own work):     wall {wall['shim'] / wall['same']:.3f}  "
          f"CPU {cpu['shim'] / cpu['same']:.3f}  per-pair {per_pair['same']:.3f}  "
          f"(+{cpu['shim'] - cpu['same']:.1f} ms CPU; target <= 1.05, goal <= 1.03)")
    if counts["shim"]:
        ins = {n: statistics.median(counts[n]) for n in NAMES}
        print(f"instructions (median of {len(counts['shim'])}): bare {ins['bare'] / 1e6:.0f} M, same "
              f"{ins['same'] / 1e6:.0f} M, shim {ins['shim'] / 1e6:.0f} M; shim / same "
              f"{ins['shim'] / ins['same']:.4f} (+{(ins['shim'] - ins['same']) / 1e6:.1f} M)")
    print("markdown row: | {} runs, load {:.1f} | {:.0f} / {:.0f} / {:.0f} ms | {:.0f} / {:.0f} / {:.0f} ms | "
          "{:.3f} | {:.3f} | {:.3f} | {:.3f} |".format(
              pairs, load, wall["bare"], wall["same"], wall["shim"], cpu["bare"], cpu["same"], cpu["shim"],
              wall["shim"] / wall["bare"], wall["shim"] / wall["same"], cpu["shim"] / cpu["same"],
              per_pair["same"]))


if __name__ == "__main__":
    main()
