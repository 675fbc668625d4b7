"""The gateway, two versions side by side: a git revision (default HEAD) against the working tree.

    .venv/bin/python benchmarks/gateway_ab.py [--base REV] [--requests 1500] [--op get|put] [--swap]
                                              [--clients N] [--big-mib N]

Why: on a shared host the speed of the machine moves by more than a change is worth between two
runs of benchmarks/gateway.py minutes apart (direct p50 3.9 -> 5.5 ms). Here both versions run at
once, each a real `hoop server` (SQLite, its own moto_server) started as benchmarks/gateway.py
starts it; the base version from a `git worktree` of REV put first on PYTHONPATH. One boto3 client
per server sends 1 KiB GetObjects (or PutObjects), alternating A, B, B, A, ... so both see the
same moments of the machine. Printed per version: the client's p50 and p90 and the server's CPU
per request (user + system, /proc/PID/stat), from a second pass of the same length. An A/A run
(`--base` naming the working tree's own HEAD with no change) shows the noise: about 0.1 ms p50
and 3 % CPU here.

With `--clients N`: throughput instead, N threads with a boto3 client each sending GetObjects,
`--requests` in all per round, rounds alternating A, B, B, A, ... (six in all), requests per second
per version from the sum of its rounds.

With `--big-mib N`: one N MiB object down (GetObject read in 1 MiB pieces) and up (one PutObject)
per version and round, four rounds alternating; MiB/s from the median and the server's CPU
seconds per GiB.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gateway as gw  # benchmarks/gateway.py: Stack, s3_client, BUCKET

ROOT = Path(__file__).resolve().parent.parent


def cpu(pid: int) -> tuple[float, float]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def start(label: str, pythonpath: str | None, work: Path) -> dict[str, Any]:
    import boto3

    saved = os.environ.get("PYTHONPATH")
    if pythonpath:
        os.environ["PYTHONPATH"] = pythonpath          # Stack copies the environment at creation
    try:
        (work / label).mkdir()
        stack = gw.Stack(work / label).start()
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    _sid, cred = stack.session_credential()
    session = boto3.session.Session()
    direct = gw.s3_client(session, stack.moto_url, "testing", "testing")
    direct.create_bucket(Bucket=gw.BUCKET)
    direct.put_object(Bucket=gw.BUCKET, Key="one-kib", Body=os.urandom(1024))
    client = gw.s3_client(session, cred["endpoint_url"], cred["access_key_id"], cred["secret_access_key"])
    return {"label": label, "stack": stack, "client": client, "times": []}


def throughput(sides: list[dict[str, Any]], clients: int, requests: int) -> None:
    import boto3

    for side in sides:
        _sid, cred = side["stack"].session_credential()
        session = boto3.session.Session()
        side["pool"] = [gw.s3_client(session, cred["endpoint_url"], cred["access_key_id"],
                                     cred["secret_access_key"]) for _ in range(clients)]
        side["elapsed"], side["done"], side["errors"] = 0.0, 0, 0
        gw.concurrent_phase(side["pool"], 5)                       # warm every client
    per_client = max(1, requests // clients)
    for r in range(6):
        for side in (sides if r % 2 == 0 else sides[::-1]):
            elapsed, _latencies, errors = gw.concurrent_phase(side["pool"], per_client)
            side["elapsed"] += elapsed
            side["done"] += per_client * clients
            side["errors"] += errors
    print(f"| version | {clients} clients, GetObject req/s | errors |")
    print("|---|---|---|")
    for side in sides:
        print(f"| {side['label']} | {side['done'] / side['elapsed']:.0f} | {side['errors']} |")
    print(f"load at end {gw.load()}")


def big(sides: list[dict[str, Any]], mib: int, rounds: int = 4) -> None:
    import io

    from boto3.s3.transfer import TransferConfig

    data = os.urandom(mib << 20)
    one_put = TransferConfig(multipart_threshold=1 << 40)       # one PutObject, streamed by the gateway
    for side in sides:
        side["down"], side["up"], side["cpu_down"], side["cpu_up"] = [], [], 0.0, 0.0
        side["client"].upload_fileobj(io.BytesIO(data), gw.BUCKET, "big", Config=one_put)
    for r in range(rounds):
        for side in (sides if r % 2 == 0 else sides[::-1]):
            pid = side["stack"].server.pid
            c0, t0 = sum(cpu(pid)), time.perf_counter()
            body = side["client"].get_object(Bucket=gw.BUCKET, Key="big")["Body"]
            while body.read(1 << 20):
                pass
            side["down"].append(mib / (time.perf_counter() - t0))
            side["cpu_down"] += sum(cpu(pid)) - c0
            c0, t0 = sum(cpu(pid)), time.perf_counter()
            side["client"].upload_fileobj(io.BytesIO(data), gw.BUCKET, "big-up", Config=one_put)
            side["up"].append(mib / (time.perf_counter() - t0))
            side["cpu_up"] += sum(cpu(pid)) - c0
    print(f"| version | {mib} MiB down MiB/s | up MiB/s | server CPU s / GiB down | up |")
    print("|---|---|---|---|---|")
    for side in sides:
        per_gib = 1024 / (mib * rounds)
        print(f"| {side['label']} | {statistics.median(side['down']):.0f} | {statistics.median(side['up']):.0f} | "
              f"{side['cpu_down'] * per_gib:.2f} | {side['cpu_up'] * per_gib:.2f} |")
    print(f"load at end {gw.load()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="HEAD", help="the git revision to compare the working tree with")
    parser.add_argument("--requests", type=int, default=1500, help="requests per version and pass")
    parser.add_argument("--op", choices=["get", "put"], default="get")
    parser.add_argument("--swap", action="store_true", help="start the working tree's server first")
    parser.add_argument("--clients", type=int, default=0, help="concurrent clients: measure throughput")
    parser.add_argument("--big-mib", type=int, default=0, help="a large object up and down: measure MiB/s")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="hoop-gw-ab-"))
    tree = work / "base-tree"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree), args.base], check=True)
    body = os.urandom(1024)

    def call(client: Any) -> None:
        if args.op == "get":
            client.get_object(Bucket=gw.BUCKET, Key="one-kib")["Body"].read()
        else:
            client.put_object(Bucket=gw.BUCKET, Key="put-kib", Body=body)

    sides: list[dict[str, Any]] = []
    try:
        order = [("working tree", None), (f"base {args.base}", str(tree))]
        for label, path in order if args.swap else order[::-1]:
            sides.append(start(label.replace(" ", "-"), path, work))
            sides[-1]["label"] = label
        print(f"command: .venv/bin/python benchmarks/gateway_ab.py {' '.join(sys.argv[1:])}")
        print(f"load at start {gw.load()}")
        for side in sides:
            for _ in range(100):
                call(side["client"])
        if args.clients:
            throughput(sides, args.clients, args.requests)
            return
        if args.big_mib:
            big(sides, args.big_mib)
            return
        for i in range(args.requests):                     # pass 1: the client's times
            for side in (sides if i % 2 == 0 else sides[::-1]):
                t0 = time.perf_counter()
                call(side["client"])
                side["times"].append(time.perf_counter() - t0)
        before = [cpu(s["stack"].server.pid) for s in sides]
        for i in range(args.requests):                     # pass 2: the servers' CPU, nothing else read
            for side in (sides if i % 2 == 0 else sides[::-1]):
                call(side["client"])
        after = [cpu(s["stack"].server.pid) for s in sides]
        print(f"| version | {args.op} p50 ms | p90 ms | server CPU ms / request (user + sys) |")
        print("|---|---|---|---|")
        for side, b, a in zip(sides, before, after, strict=True):
            times = sorted(side["times"])
            user, system = (a[0] - b[0]) * 1000 / args.requests, (a[1] - b[1]) * 1000 / args.requests
            print(f"| {side['label']} | {statistics.median(times) * 1000:.2f} | "
                  f"{times[int(0.9 * (len(times) - 1))] * 1000:.2f} | {user + system:.3f} ({user:.2f} + {system:.2f}) |")
        print(f"load at end {gw.load()}")
    finally:
        for side in sides:
            side["stack"].stop()
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)


if __name__ == "__main__":
    main()
