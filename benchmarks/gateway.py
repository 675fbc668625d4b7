"""The SigV4 gateway end to end: a real `hoop server` process (API + gateway listener, SQLite) in
front of a real `moto_server`, boto3 clients signing with a hoop session credential, measured side
by side with the same clients talking to moto directly, in one run, interleaved so that machine
load weighs on both sides equally.

    .venv/bin/python benchmarks/gateway.py [--pairs 300] [--size-mib 1024] [--quick]

1. latency: S3 GetObject of a 1 KiB object, direct vs gateway in interleaved pairs (the order
   inside a pair alternates); added p50 / p99 = gateway percentile - direct percentile. PutObject
   of 1 KiB likewise (its record is committed before the answer leaves). The server's and moto's
   CPU per request come from /proc/PID/stat over the same phase.
2. throughput: 16 and 50 concurrent clients (threads, each its own boto3 client), a fixed number
   of GetObject per phase (--requests, shared equally); direct and gateway phases in ABBA order
   (--rounds); gateway / direct requests per second.
3. a large object (--size-mib, default 1 GiB) up as ONE PutObject (the gateway streams it) and
   down as GetObject streamed to nowhere; gateway / direct throughput, both for the whole call and
   for the wire part (from botocore's before-send event, after the client has hashed the file);
   the hoop server's resident memory (VmRSS, sampled every 10 ms) growth during each transfer.
4. the server's own work per request, in process against the same database after the server
   stopped: GatewayService.verify / decode / decide and records.append for a botocore-signed
   GetObject, process CPU time (all threads) and wall time per call.
5. where a gateway GetObject's time goes: the server restarted with time stamps around its steps
   (wrappers; the server's own code runs), sequential requests back to back and with a pause.

Nothing here is asserted: the script prints what it measured, with the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ROLE = "arn:aws:iam::123456789012:role/bench-agent"
REGION = "us-east-1"
BUCKET = "hoop-gw-bench"
POLICY = """\
version: 1
description: gateway benchmark - S3 reads and writes allowed, everything else reviewed
defaults: {list: allow, read: allow, write: review, tagging: review, permissions: review, unknown: review,
           review: {approvers: ["role:approver"], channels: [cli], expiry: 30m}}
rules:
  - id: allow-s3-bench
    effect: allow
    match: {actions: ["s3:*"]}
    reason: the benchmark's bucket
"""
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- processes -------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_up(url: str, proc: subprocess.Popen[bytes], log: Path | None = None, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text("utf-8", "replace")[-3000:] if log and log.exists() else ""
            raise SystemExit(f"process for {url} exited with {proc.returncode}\n{tail}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of each thread of a process (native thread id -> utime + stime)."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[task.name] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def rss_kib(pid: int, key: str = "VmRSS") -> int:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith(key + ":"):
            return int(row.split()[1])
    return 0


def cpu_snapshot(stack: Stack) -> tuple[float, float, float]:
    """CPU seconds so far of (this client process, moto_server, hoop server)."""
    return time.process_time(), cpu_seconds(stack.moto.pid), cpu_seconds(stack.server.pid)


def cpu_delta(before: tuple[float, float, float], after: tuple[float, float, float]) -> list[float]:
    return [b - a for a, b in zip(before, after, strict=True)]


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


class Stack:
    """moto_server + `hoop server` (API and gateway listener in one process) under a temp dir."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HOOP_"))}
        self.env.update(HOOP_HOME=str(work / "home"), AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                        AWS_DEFAULT_REGION=REGION, AWS_EC2_METADATA_DISABLED="true",
                        AWS_CONFIG_FILE=str(work / "none"), AWS_SHARED_CREDENTIALS_FILE=str(work / "none"))
        self.moto_port, self.port, self.gw_port = free_port(), free_port(), free_port()
        self.moto_url = f"http://127.0.0.1:{self.moto_port}"
        self.url = f"http://127.0.0.1:{self.port}"
        self.gateway_url = f"http://127.0.0.1:{self.gw_port}"
        self.config = work / "server.yaml"
        self.log = work / "server.log"
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> Stack:
        import yaml

        moto_bin = Path(sys.executable).with_name("moto_server")
        self.moto = subprocess.Popen([str(moto_bin) if moto_bin.exists() else "moto_server", "-H", "127.0.0.1",
                                      "-p", str(self.moto_port)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, env=self.env, cwd=self.work)
        self.procs.append(self.moto)
        (self.work / "policy.yaml").write_text(POLICY)
        cfg = {
            "listen": f"127.0.0.1:{self.port}", "public_url": self.url,
            "database_url": f"sqlite:///{self.work / 'hoop.db'}", "home": str(self.work / "home"),
            "log_level": "warning", "policy_file": str(self.work / "policy.yaml"),
            "roles": {"approver": ["approvers"], "auditor": ["auditors"], "admin": ["admins"]},
            "connections": {"default": {"role_arn": ROLE, "region": REGION, "endpoint_url": self.moto_url,
                                        "credentials": "gateway"}},
            "gateway": {"listen": f"127.0.0.1:{self.gw_port}", "hold_seconds": 1},
        }
        self.config.write_text(yaml.safe_dump(cfg))
        log = self.log.open("ab")
        self.server = subprocess.Popen([sys.executable, "-m", "hoopcli", "server", "--config", str(self.config)],
                                       stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.work)
        log.close()
        self.procs.append(self.server)
        wait_up(self.moto_url + "/moto-api/", self.moto)
        wait_up(self.url + "/api/v1/health", self.server, self.log)
        wait_up(self.gateway_url + "/", self.server, self.log)
        return self

    def settings(self) -> Any:
        from hoopcli.server.settings import load_settings

        return load_settings(self.config, env={})

    def token(self, sub: str = "bench", groups: tuple[str, ...] = ("developers",)) -> str:
        from hoopcli.server.idp.keys import mint_id_token

        return mint_id_token(self.settings(), sub, f"{sub}@example.com", list(groups))

    def session_credential(self) -> tuple[str, dict[str, Any]]:
        import httpx

        headers = {"Authorization": f"Bearer {self.token()}"}
        r = httpx.post(self.url + "/api/v1/sessions", headers=headers,
                       json={"agent": "bench-agent", "connection": "default"}, timeout=30)
        assert r.status_code == 201, r.text
        sid = str(r.json()["id"])
        r = httpx.post(f"{self.url}/api/v1/sessions/{sid}/credentials", headers=headers, json={}, timeout=30)
        assert r.status_code == 201, r.text
        return sid, dict(r.json())

    def export(self, sid: str) -> list[dict[str, Any]]:
        import json

        import httpx

        # as an auditor: the gateway's records name the user by email, the owner filter by subject
        r = httpx.get(self.url + "/api/v1/export", params={"session_id": sid},
                      headers={"Authorization": f"Bearer {self.token('auditor', ('auditors',))}"}, timeout=120)
        assert r.status_code == 200, r.text[:300]
        return [json.loads(line)["record"] for line in r.text.splitlines() if line.strip()]

    def stop_server(self) -> None:
        self._stop(self.server)

    def stop(self) -> None:
        for proc in self.procs:
            self._stop(proc)

    @staticmethod
    def _stop(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# -- clients ---------------------------------------------------------------------------------------

def s3_client(session: Any, endpoint: str, key: str, secret: str, **config: Any) -> Any:
    from botocore.config import Config

    return session.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=key,
                          aws_secret_access_key=secret,
                          config=Config(retries={"max_attempts": 1, "mode": "standard"}, **config))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


# -- 1. latency pairs ------------------------------------------------------------------------------

def latency_pairs(stack: Stack, direct: Any, gateway: Any, pairs: int, warmup: int, op: str) -> dict[str, Any]:
    body = os.urandom(1024)
    direct.put_object(Bucket=BUCKET, Key="one-kib", Body=body)

    def get(client: Any) -> None:
        data = client.get_object(Bucket=BUCKET, Key="one-kib")["Body"].read()
        assert len(data) == 1024

    def put(client: Any) -> None:
        client.put_object(Bucket=BUCKET, Key="put-kib", Body=body)

    fn = get if op == "GetObject" else put
    for _ in range(warmup):
        fn(direct)
        fn(gateway)
    d_times: list[float] = []
    g_times: list[float] = []
    server_cpu0, moto_cpu0 = cpu_seconds(stack.server.pid), cpu_seconds(stack.moto.pid)
    load0 = load()
    wall0 = time.perf_counter()
    for i in range(pairs):
        order = ((direct, d_times), (gateway, g_times)) if i % 2 == 0 else ((gateway, g_times), (direct, d_times))
        for client, times in order:
            t0 = time.perf_counter()
            fn(client)
            times.append(time.perf_counter() - t0)
    wall = time.perf_counter() - wall0
    server_cpu = cpu_seconds(stack.server.pid) - server_cpu0
    moto_cpu = cpu_seconds(stack.moto.pid) - moto_cpu0
    diffs = [g - d for g, d in zip(g_times, d_times, strict=True)]
    return {"op": op, "n": pairs, "direct": d_times, "gateway": g_times, "diffs": diffs, "wall": wall,
            "server_cpu_ms": server_cpu * 1000 / pairs, "moto_cpu_ms": moto_cpu * 1000 / (2 * pairs),
            "load": f"{load0} -> {load()}"}


def print_latency(results: list[dict[str, Any]]) -> None:
    print("\n1. latency, 1 KiB object, interleaved pairs (ms)")
    print("| operation | pairs | direct p50 | gateway p50 | added p50 | direct p99 | gateway p99 | added p99 "
          "| p50 of pair differences | hoop server CPU / request | moto CPU / request | load 1/5/15 min |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        d, g = r["direct"], r["gateway"]
        print(f"| {r['op']} | {r['n']} | {fmt_ms(pct(d, .5))} | {fmt_ms(pct(g, .5))} "
              f"| **{fmt_ms(pct(g, .5) - pct(d, .5))}** | {fmt_ms(pct(d, .99))} | {fmt_ms(pct(g, .99))} "
              f"| **{fmt_ms(pct(g, .99) - pct(d, .99))}** | {fmt_ms(statistics.median(r['diffs']))} "
              f"| {r['server_cpu_ms']:.2f} | {r['moto_cpu_ms']:.2f} | {r['load']} |")


# -- 2. concurrent clients -------------------------------------------------------------------------

def concurrent_phase(clients: list[Any], per_client: int) -> tuple[float, list[float], int]:
    barrier = threading.Barrier(len(clients) + 1)
    latencies: list[list[float]] = [[] for _ in clients]
    errors = [0]

    def worker(i: int, client: Any) -> None:
        barrier.wait()
        out = latencies[i]
        for _ in range(per_client):
            t0 = time.perf_counter()
            try:
                client.get_object(Bucket=BUCKET, Key="one-kib")["Body"].read()
            except Exception:
                errors[0] += 1
            out.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=worker, args=(i, c), daemon=True) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, [x for lat in latencies for x in lat], errors[0]


def concurrency(stack: Stack, session: Any, cred: dict[str, Any], n: int, per_client: int,
                rounds: int) -> dict[str, Any]:
    from botocore.config import Config  # noqa: F401 - imported for s3_client

    direct = [s3_client(session, stack.moto_url, "testing", "testing") for _ in range(n)]
    gateway = [s3_client(session, cred["endpoint_url"], cred["access_key_id"], cred["secret_access_key"])
               for _ in range(n)]
    for c in direct + gateway:           # open one connection each (not measured)
        c.get_object(Bucket=BUCKET, Key="one-kib")["Body"].read()
    totals: dict[str, list[Any]] = {"direct": [0.0, 0, [], 0, [0.0, 0.0, 0.0]],
                                     "gateway": [0.0, 0, [], 0, [0.0, 0.0, 0.0]]}
    load0 = load()
    for r in range(rounds):
        order = ("direct", "gateway") if r % 2 == 0 else ("gateway", "direct")
        for mode in order:
            c0 = cpu_snapshot(stack)
            wall, lat, errors = concurrent_phase(direct if mode == "direct" else gateway, per_client)
            t = totals[mode]
            t[4] = [a + b for a, b in zip(t[4], cpu_delta(c0, cpu_snapshot(stack)), strict=True)]
            t[0] += wall
            t[1] += n * per_client
            t[2].extend(lat)
            t[3] += errors
    out: dict[str, Any] = {"clients": n, "requests": n * per_client * rounds, "load": f"{load0} -> {load()}"}
    for mode, (wall, count, lat, errors, cpu) in totals.items():
        out[mode] = {"rps": count / wall, "p50": pct(lat, .5), "p99": pct(lat, .99), "errors": errors,
                     "cpu_ms": [c * 1000 / count for c in cpu]}
    return out


def print_concurrency(results: list[dict[str, Any]]) -> None:
    print("\n2. throughput, concurrent clients (GetObject 1 KiB, each thread its own boto3 client, ABBA rounds)")
    print("| clients | requests each way | direct req/s | gateway req/s | gateway / direct | direct p50 / p99 ms "
          "| gateway p50 / p99 ms | CPU ms / request, direct: client + moto | gateway: client + moto + hoop "
          "| errors | load 1/5/15 min |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        d, g = r["direct"], r["gateway"]
        dc, gc = d["cpu_ms"], g["cpu_ms"]
        print(f"| {r['clients']} | {r['requests']} | {d['rps']:.0f} | {g['rps']:.0f} | **{g['rps'] / d['rps']:.2f}** "
              f"| {fmt_ms(d['p50'])} / {fmt_ms(d['p99'])} | {fmt_ms(g['p50'])} / {fmt_ms(g['p99'])} "
              f"| {dc[0]:.1f} + {dc[1]:.1f} = {dc[0] + dc[1]:.1f} | {gc[0]:.1f} + {gc[1]:.1f} + {gc[2]:.1f} = "
              f"{sum(gc):.1f} | {d['errors'] + g['errors']} | {r['load']} |")


# -- 3. large object -------------------------------------------------------------------------------

class RssSampler:
    def __init__(self, pid: int, interval: float = 0.01) -> None:
        self.pid, self.interval = pid, interval
        self.base = rss_kib(pid)
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_kib(self.pid))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_kib(self.pid))

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.base) / 1024


def big_object(stack: Stack, session: Any, cred: dict[str, Any], size_mib: int, rounds: int) -> dict[str, Any]:
    from boto3.s3.transfer import TransferConfig

    path = stack.work / "big.bin"
    block = os.urandom(1 << 20)
    with path.open("wb") as fh:
        for _ in range(size_mib):
            fh.write(block)
    size = size_mib << 20
    clients = {"direct": s3_client(session, stack.moto_url, "testing", "testing",
                                   read_timeout=900, connect_timeout=30),
               "gateway": s3_client(session, cred["endpoint_url"], cred["access_key_id"], cred["secret_access_key"],
                                    read_timeout=900, connect_timeout=30)}
    sent: dict[str, float] = {}

    def mark(**_: Any) -> None:          # the request leaves: the client has hashed the body already
        sent["t"] = time.perf_counter()

    for c in clients.values():
        c.meta.events.register("before-send.s3.*", mark)
    one_put = TransferConfig(multipart_threshold=1 << 40, max_concurrency=1, use_threads=False)

    def up(mode: str, key: str) -> tuple[float, float]:
        t0 = time.perf_counter()
        with path.open("rb") as fh:
            clients[mode].upload_fileobj(fh, BUCKET, key, Config=one_put)
        t1 = time.perf_counter()
        return t1 - t0, t1 - sent["t"]

    def down(mode: str, key: str) -> tuple[float, float]:
        t0 = time.perf_counter()
        response = clients[mode].get_object(Bucket=BUCKET, Key=key)
        got = 0
        for chunk in response["Body"].iter_chunks(1 << 20):
            got += len(chunk)
        t1 = time.perf_counter()
        assert got == size, (got, size)
        return t1 - t0, t1 - sent["t"]

    # the server loads botocore's models in the background after start (~300 MiB): wait until its
    # resident size has settled, so that growth measured below is the transfer's
    for c in clients.values():
        c.get_object(Bucket=BUCKET, Key="one-kib")["Body"].read()
    settle_deadline, last = time.monotonic() + 60, -1
    while time.monotonic() < settle_deadline:
        now = rss_kib(stack.server.pid)
        if abs(now - last) < 256:
            break
        last = now
        time.sleep(1.0)
    res: dict[str, Any] = {m: {"up": [], "up_wire": [], "down": [], "down_wire": [], "rss_up": [], "rss_down": [],
                               "cpu_up": [], "cpu_down": []} for m in clients}
    load0 = load()
    hwm0 = rss_kib(stack.server.pid, "VmHWM")
    base_rss = rss_kib(stack.server.pid)
    for r in range(rounds):
        order = ("direct", "gateway") if r % 2 == 0 else ("gateway", "direct")
        for direction in ("up", "down"):
            for mode in order:
                key = f"big-{mode}-{r}"
                c0 = cpu_snapshot(stack)
                with RssSampler(stack.server.pid) as rss:
                    call, wire = (up if direction == "up" else down)(mode, key)
                res[mode]["cpu_" + direction].append(cpu_delta(c0, cpu_snapshot(stack)))
                res[mode][direction].append(call)
                res[mode][direction + "_wire"].append(wire)
                res[mode]["rss_" + direction].append(rss.growth_mib)
        for mode in order:
            clients["direct"].delete_object(Bucket=BUCKET, Key=f"big-{mode}-{r}")
    path.unlink()
    res["size_mib"] = size_mib
    res["rounds"] = rounds
    res["load"] = f"{load0} -> {load()}"
    res["hwm_growth_mib"] = (rss_kib(stack.server.pid, "VmHWM") - hwm0) / 1024
    res["base_rss_mib"] = base_rss / 1024
    return res


def print_big(res: dict[str, Any]) -> None:
    size = res["size_mib"]
    print(f"\n3. one {size} MiB object, ONE PutObject up / GetObject streamed down "
          f"({res['rounds']} round(s), ABBA; MiB/s from the median time)")
    print("| direction | direct MiB/s (call / wire) | gateway MiB/s (call / wire) | gateway / direct (call / wire) "
          "| hoop server RSS growth, max over rounds | CPU s / GiB, direct: client + moto | gateway: client + moto "
          "+ hoop | load 1/5/15 min |")
    print("|---|---|---|---|---|---|---|---|")
    gib = size / 1024

    def cpu(mode: str, direction: str) -> list[float]:
        runs = res[mode]["cpu_" + direction]
        return [statistics.median(r[i] for r in runs) / gib for i in range(3)]

    for direction in ("up", "down"):
        d = [size / statistics.median(res["direct"][direction]), size / statistics.median(res["direct"][direction + "_wire"])]
        g = [size / statistics.median(res["gateway"][direction]),
             size / statistics.median(res["gateway"][direction + "_wire"])]
        dc, gc = cpu("direct", direction), cpu("gateway", direction)
        print(f"| {direction} | {d[0]:.0f} / {d[1]:.0f} | {g[0]:.0f} / {g[1]:.0f} "
              f"| **{g[0] / d[0]:.2f}** / {g[1] / d[1]:.2f} | **{max(res['gateway']['rss_' + direction]):.1f} MiB** "
              f"(during direct: {max(res['direct']['rss_' + direction]):.1f}) "
              f"| {dc[0]:.2f} + {dc[1]:.2f} = {dc[0] + dc[1]:.2f} | {gc[0]:.2f} + {gc[1]:.2f} + {gc[2]:.2f} = "
              f"{sum(gc):.2f} | {res['load']} |")
    print(f"hoop server RSS before: {res['base_rss_mib']:.0f} MiB; VmHWM growth over the whole phase: "
          f"{res['hwm_growth_mib']:.1f} MiB")


# -- 4. the server's own work, in process ----------------------------------------------------------

def signed_get(cred: dict[str, Any], host: str) -> Any:
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from hoopcli.server.gateway.request import GatewayRequest

    url = f"http://{host}/{BUCKET}/one-kib"
    aws = AWSRequest(method="GET", url=url, headers={"User-Agent": "bench", "Accept-Encoding": "identity"})
    aws.context["payload_signing_enabled"] = True
    S3SigV4Auth(Credentials(cred["access_key_id"], cred["secret_access_key"]), "s3", REGION).add_auth(aws)
    headers = [(k, v) for k, v in aws.headers.items()] + [("Host", host)]
    return GatewayRequest.build("GET", f"/{BUCKET}/one-kib", headers, None)


def in_process(stack: Stack, cred: dict[str, Any], runs: int) -> dict[str, Any]:
    from hoopcli.server.app import create_app
    from hoopcli.server.gateway import records
    from hoopcli.server.gateway.service import Call, GatewayService

    settings = stack.settings()
    app = create_app(settings)
    service = GatewayService(app)
    service.warm()
    host = cred["endpoint_url"].split("://", 1)[1]
    loop = asyncio.new_event_loop()
    # the server's detector thread (docs/detections.md, where present) evaluates every record
    # appended; decide() waits for it to catch up. Waited for here after each record, outside
    # the steps, so that its CPU is its own row and not in the next request's steps.
    detector = getattr(app.state, "detector", None)
    detector = detector if hasattr(detector, "wait_caught_up") else None
    steps = ("verify", "decode", "decide", "record") + (("detector",) if detector is not None else ())
    cpu: dict[str, list[float]] = {s: [] for s in steps}
    wall: dict[str, list[float]] = {s: [] for s in steps}

    def one(measure: bool) -> None:
        request = signed_get(cred, host)     # signed now: the verifier refuses a skewed clock
        call = Call(request_id="BENCH", started=time.perf_counter(), time=time.time())
        marks = [(time.process_time(), time.perf_counter())]
        verified = service.verify(request, call)
        marks.append((time.process_time(), time.perf_counter()))
        decoded = service.decode(request, verified, call)
        marks.append((time.process_time(), time.perf_counter()))
        service.decide(decoded, verified, call)
        marks.append((time.process_time(), time.perf_counter()))
        call.http_status, call.bytes_out, call.response_size = 200, 1024, 1024
        loop.run_until_complete(records.append(app, call))
        marks.append((time.process_time(), time.perf_counter()))
        if detector is not None:
            detector.wait_caught_up(call.credential.org if call.credential else "default", 2.0)
            marks.append((time.process_time(), time.perf_counter()))
        if measure:
            for i, s in enumerate(steps):
                cpu[s].append(marks[i + 1][0] - marks[i][0])
                wall[s].append(marks[i + 1][1] - marks[i][1])

    for _ in range(20):
        one(False)
    load0 = load()
    for _ in range(runs):
        one(True)
    out: dict[str, Any] = {"runs": runs, "cpu": {s: list(v) for s, v in cpu.items()},
                           "wall": {s: list(v) for s, v in wall.items()}, "load": f"{load0} -> {load()}"}
    # experiment, not hoop's setting: the same record with SQLite's synchronous=NORMAL (WAL without
    # an fsync per commit), to show what the commit's fsync costs
    if settings.database_url.startswith("sqlite"):
        from sqlalchemy import event

        engine = app.state.db.engine
        event.listen(engine, "connect", lambda conn, _rec: conn.execute("PRAGMA synchronous=NORMAL"))
        engine.dispose()
        for s in steps:
            cpu[s], wall[s] = [], []
        for _ in range(max(20, runs // 2)):
            one(True)
        out["record_normal"] = (list(cpu["record"]), list(wall["record"]))
    loop.close()
    return out


def print_in_process(res: dict[str, Any], durations: list[float]) -> None:
    print(f"\n4. the server's work per request, in process (GatewayService + records.append on the same SQLite "
          f"database, n={res['runs']}, load {res['load']}); CPU = process time of all threads, µs")
    print("| step | CPU p50 µs | CPU p90 µs | wall p50 µs | wall p99 µs |")
    labels = {"decide": "decide (policy, masking of params, detections hold check)",
              "record": "record (records.append: check, queue, group commit, wait)",
              "detector": "detector evaluates the record (its own thread; waited for outside the steps)"}
    print("|---|---|---|---|---|")
    total_cpu = [sum(res["cpu"][s][i] for s in res["cpu"]) for i in range(res["runs"])]
    total_wall = [sum(res["wall"][s][i] for s in res["wall"]) for i in range(res["runs"])]
    for name, c, w in [*[(s, res["cpu"][s], res["wall"][s]) for s in res["cpu"]],
                       ("total", total_cpu, total_wall)]:
        print(f"| {labels.get(name, name)} | {pct(c, .5) * 1e6:.0f} | {pct(c, .9) * 1e6:.0f} | {pct(w, .5) * 1e6:.0f} "
              f"| {pct(w, .99) * 1e6:.0f} |")
    if "record_normal" in res:
        c, w = res["record_normal"]
        print(f"| record, SQLite synchronous=NORMAL (experiment: no fsync per commit) | {pct(c, .5) * 1e6:.0f} "
              f"| {pct(c, .9) * 1e6:.0f} | {pct(w, .5) * 1e6:.0f} | {pct(w, .99) * 1e6:.0f} |")
    if durations:
        print(f"records' duration_ms (arrival -> record built, forward to moto included) of the gateway's "
              f"GetObject calls in phase 1: p50 {pct(durations, .5):.2f} ms, p99 {pct(durations, .99):.2f} ms "
              f"(n={len(durations)})")


# -- 5. where a request's time goes: time stamps in the real server ----------------------------------

def serve_instrumented(out: str, argv: list[str]) -> int:
    """`hoop server` with time stamps around the gateway's steps (wrappers only: the code that runs
    is the server's own). Time stamps are time.perf_counter (CLOCK_MONOTONIC, one clock for every
    process on the machine), written to `out` as JSON lines."""
    import contextvars
    import functools
    import inspect
    import json

    from hoopcli.cli import main as hoop_main
    from hoopcli.server.gateway import app as gw_app
    from hoopcli.server.gateway import service as gw_service
    from hoopcli.server.ledger.writer import Writer

    pc = time.perf_counter
    current: contextvars.ContextVar[Any] = contextvars.ContextVar("bench_call", default=None)
    # one JSON line per request (written after it ends) and per group commit; uvicorn re-raises
    # SIGTERM after shutdown, so nothing can be written at exit
    sink = open(out, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - open for the process's life

    def mark(call: Any, name: str, t0: float, t1: float) -> None:
        if call is not None:
            call.extra.setdefault("marks", []).append((name, t0, t1))

    def find_call(args: tuple[Any, ...]) -> Any:
        return next((a for a in args if isinstance(a, gw_service.Call)), None) or current.get()

    def timed(cls: Any, name: str) -> None:
        f = getattr(cls, name)
        if isinstance(inspect.getattr_static(cls, name), staticmethod):
            @functools.wraps(f)
            def static(*args: Any, **kwargs: Any) -> Any:
                call, t0 = find_call(args), pc()
                try:
                    return f(*args, **kwargs)
                finally:
                    mark(call, name, t0, pc())
            setattr(cls, name, staticmethod(static))
            return
        if asyncio.iscoroutinefunction(f):
            @functools.wraps(f)
            async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
                call, t0 = find_call(args), pc()
                try:
                    return await f(self, *args, **kwargs)
                finally:
                    mark(call, name, t0, pc())
        else:
            @functools.wraps(f)
            def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
                call, t0 = find_call(args), pc()
                try:
                    return f(self, *args, **kwargs)
                finally:
                    mark(call, name, t0, pc())
        setattr(cls, name, wrapper)

    for name in ("verify", "decode", "decide", "forward_whole", "plan", "_exchange", "deliver", "record"):
        timed(gw_service.GatewayService, name)
    timed(gw_app.GatewayApp, "_prepare")

    def timed_function(module: str, name: str, label: str) -> None:
        """A module-level function the gateway imports at call time (absent in older trees: skipped)."""
        try:
            mod = __import__(module, fromlist=[name])
            f = getattr(mod, name)
        except (ImportError, AttributeError):
            return

        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            call, t0 = current.get(), pc()
            try:
                return f(*args, **kwargs)
            finally:
                mark(call, label, t0, pc())
        setattr(mod, name, wrapper)

    timed_function("hoopcli.server.policy.service", "decide", "policy")
    timed_function("hoopcli.server.detections.holds", "held_decision", "hold check")
    handle = gw_app.GatewayApp._handle

    seen_threads: list[dict[str, str]] = [{}]

    async def _handle(self: Any, scope: Any, receive: Any, send: Any, call: Any) -> None:
        token, t0 = current.set(call), pc()
        try:
            await handle(self, scope, receive, send, call)
        finally:
            current.reset(token)
            sink.write(json.dumps({"op": call.decoded.operation if call.decoded else None, "created": call.started,
                                   "handle": t0, "end": pc(), "marks": call.extra.get("marks", [])}) + "\n")
            names = {str(t.native_id): t.name for t in threading.enumerate()}
            if names != seen_threads[0]:                # native thread id -> name, for /proc
                seen_threads[0] = names
                sink.write(json.dumps({"threads": names}) + "\n")

    setattr(gw_app.GatewayApp, "_handle", _handle)  # noqa: B010 - a method replaced on purpose
    commit = Writer._commit

    def _commit(self: Any, org: str, items: list[Any]) -> None:
        t0 = pc()
        try:
            commit(self, org, items)
        finally:
            sink.write(json.dumps({"commit": [t0, pc(), len(items)]}) + "\n")

    setattr(Writer, "_commit", _commit)  # noqa: B010

    return hoop_main(argv)


def stages(stack: Stack, cred: dict[str, Any], n: int, warmup: int) -> dict[str, Any]:
    """Restart the server instrumented; sequential GetObjects back to back and with a 50 ms pause
    after each (so the previous request's record is committed before the next one arrives)."""
    import json

    import boto3

    out = stack.work / "stages.json"
    log = stack.log.open("ab")
    stack.server = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve-instrumented", str(out),
                                     "server", "--config", str(stack.config)],
                                    stdout=log, stderr=subprocess.STDOUT, env=stack.env, cwd=stack.work)
    log.close()
    stack.procs.append(stack.server)
    wait_up(stack.url + "/api/v1/health", stack.server, stack.log)
    wait_up(stack.gateway_url + "/", stack.server, stack.log)
    session = boto3.session.Session()
    clients = {"direct": s3_client(session, stack.moto_url, "testing", "testing"),
               "gateway": s3_client(session, cred["endpoint_url"], cred["access_key_id"], cred["secret_access_key"])}
    for _ in range(warmup):
        for c in clients.values():
            c.get_object(Bucket=BUCKET, Key="one-kib")["Body"].read()
    client_times: dict[str, list[tuple[float, float]]] = {}
    threads_cpu: dict[str, float] = {}
    load0 = load()
    for gap in (0.0, 0.05):
        for mode, client in clients.items():
            times = client_times.setdefault(f"{mode}:{gap}", [])
            before = thread_cpu(stack.server.pid)
            for _ in range(n):
                t0 = time.perf_counter()
                client.get_object(Bucket=BUCKET, Key="one-kib")["Body"].read()
                times.append((t0, time.perf_counter()))
                if gap:
                    time.sleep(gap)
            if mode == "gateway" and not gap:      # the server's threads, back-to-back gateway requests
                after = thread_cpu(stack.server.pid)
                threads_cpu = {tid: after[tid] - before.get(tid, 0.0) for tid in after}
    load1 = load()
    stack.stop_server()
    lines = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    names: dict[str, str] = {}
    for x in lines:
        names.update(x.get("threads", {}))
    by_name: dict[str, float] = {}
    for tid, seconds in threads_cpu.items():
        name = names.get(tid, "other")
        name = "AnyIO worker threads" if name.startswith("AnyIO worker") else name
        name = "hoop-gateway worker threads" if name.startswith("hoop-gateway_") else name
        by_name[name] = by_name.get(name, 0.0) + seconds
    return {"client": client_times, "rows": [x for x in lines if "created" in x],
            "commits": [x["commit"] for x in lines if "commit" in x], "n": n,
            "threads": by_name, "load": f"{load0} -> {load1}"}


def print_stages(res: dict[str, Any]) -> None:
    rows = sorted(res["rows"], key=lambda r: r["created"])
    starts = [r["created"] for r in rows]
    import bisect

    print(f"\n5. where a gateway GetObject's time goes: time stamps in the real server (wrappers around its "
          f"steps), sequential requests, n={res['n']} each, load {res['load']}; medians in ms")
    table: dict[str, dict[str, float]] = {}
    for gap in ("0.0", "0.05"):
        direct = [t1 - t0 for t0, t1 in res["client"][f"direct:{gap}"]]
        segs: dict[str, list[float]] = {}
        for t0, t1 in res["client"][f"gateway:{gap}"]:
            i = bisect.bisect_left(starts, t0)
            if i >= len(rows) or rows[i]["created"] > t1:
                continue
            r = rows[i]
            m: dict[str, tuple[float, float]] = {}
            for name, a, b in r["marks"]:
                m[name] = (a, b)        # a step tried on the loop and run again in a worker: the worker's
            prepares = sum(1 for name, _a, _b in r["marks"] if name == "_prepare")
            if not all(k in m for k in ("_prepare", "verify", "decode", "decide", "forward_whole", "plan",
                                        "_exchange", "deliver", "record")):
                continue

            def add(key: str, value: float, segs: dict[str, list[float]] = segs) -> None:
                segs.setdefault(key, []).append(value * 1000)

            add("client call, total", t1 - t0)
            add("client: sign + send until the gateway has the request", r["created"] - t0)
            add("share of requests whose steps went to a worker (a cache to refill, the detector to wait for)",
                100.0 * (prepares > 1) / 1000)
            add("arrival -> the steps start (read the request; on the loop, or after a hand-off)",
                m["_prepare"][0] - r["created"])
            add("verify", m["verify"][1] - m["verify"][0])
            add("decode", m["decode"][1] - m["decode"][0])
            add("decide", m["decide"][1] - m["decide"][0])
            if "policy" in m:
                add("  of which the policy (evaluate; its version cached 1 s)", m["policy"][1] - m["policy"][0])
            if "hold check" in m:
                add("  of which the detections hold check", m["hold check"][1] - m["hold check"][0])
            add("plan: credentials (cached) + target + re-sign", m["plan"][1] - m["plan"][0])
            add("steps done -> the exchange starts (a hand-off back when in a worker)",
                m["forward_whole"][0] - m["_prepare"][1])
            add("send to moto, read its answer (event loop, aiohttp; moto closes every connection)",
                m["_exchange"][1] - m["_exchange"][0])
            add("send the 1 KiB answer to the client", m["record"][0] - m["deliver"][0])
            add("arrival -> answer sent (server-side)", m["record"][0] - r["created"])
            add("record (append + wait for the commit; after the answer)", m["record"][1] - m["record"][0])
            add("answer sent -> client has it", t1 - m["record"][0])
        table[gap] = {k: statistics.mean(v) if k.startswith("share") else statistics.median(v)
                      for k, v in segs.items()}
        table[gap]["direct call, total (for comparison)"] = statistics.median(direct) * 1000
        table[gap]["n"] = len(next(iter(segs.values()), []))
    print("| segment | back to back | 50 ms pause after each request |")
    print("|---|---|---|")
    for key in table["0.0"]:
        if key == "n":
            continue
        print(f"| {key} | {table['0.0'][key]:.2f} | {table['0.05'].get(key, float('nan')):.2f} |")
    if res.get("threads"):
        total = sum(res["threads"].values())
        parts = ", ".join(f"{name} {seconds * 1000 / res['n']:.2f}" for name, seconds in
                          sorted(res["threads"].items(), key=lambda kv: -kv[1]) if seconds > 0)
        print(f"hoop server CPU per back-to-back gateway request, by thread (/proc/PID/task, ms): "
              f"{total * 1000 / res['n']:.2f} in all: {parts}")
    commits = [(b - a) * 1000 for a, b, _n in res["commits"]]
    if commits:
        print(f"ledger writer: {len(commits)} group commits, p50 {pct(commits, .5):.2f} ms, p90 "
              f"{pct(commits, .9):.2f} ms each (append_many + COMMIT on SQLite, its own thread, holding the GIL "
              "for its Python part)")


# -- main ------------------------------------------------------------------------------------------

def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--serve-instrumented":
        sys.exit(serve_instrumented(sys.argv[2], sys.argv[3:]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=300, help="latency pairs per operation (after warm-up)")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--clients", type=int, nargs="*", default=[16, 50])
    parser.add_argument("--requests", type=int, default=800,
                        help="GetObject requests per throughput phase, shared among the clients")
    parser.add_argument("--rounds", type=int, default=2, help="ABBA rounds for throughput and the large object")
    parser.add_argument("--size-mib", type=int, default=1024, help="the large object's size")
    parser.add_argument("--in-process-runs", type=int, default=500)
    parser.add_argument("--stages-n", type=int, default=200, help="requests per mode in the time-stamp phase")
    parser.add_argument("--quick", action="store_true", help="small sizes and few pairs (make bench)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["latency", "concurrency", "big", "stages", "inprocess"])
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (server log, database)")
    args = parser.parse_args()
    if args.quick:
        args.pairs, args.warmup, args.requests, args.rounds = 40, 10, 200, 1
        args.size_mib, args.in_process_runs, args.stages_n = min(args.size_mib, 32), 100, 40

    import boto3

    work = Path(tempfile.mkdtemp(prefix="hoop-gw-bench-"))
    stack = Stack(work)
    cmd = " ".join(["benchmarks/gateway.py", *sys.argv[1:]])
    print(f"command: .venv/bin/python {cmd}")
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, boto3 {boto3.__version__}; "
          f"load at start {load()}")
    try:
        stack.start()
        sid, cred = stack.session_credential()
        session = boto3.session.Session()
        direct = s3_client(session, stack.moto_url, "testing", "testing")
        gateway = s3_client(session, cred["endpoint_url"], cred["access_key_id"], cred["secret_access_key"])
        direct.create_bucket(Bucket=BUCKET)
        direct.put_object(Bucket=BUCKET, Key="one-kib", Body=os.urandom(1024))
        durations: list[float] = []
        if "latency" not in args.skip:
            lat = [latency_pairs(stack, direct, gateway, args.pairs, args.warmup, "GetObject"),
                   latency_pairs(stack, direct, gateway, args.pairs, args.warmup, "PutObject")]
            print_latency(lat)
        if "concurrency" not in args.skip:
            print_concurrency([concurrency(stack, session, cred, n, max(1, args.requests // n), args.rounds)
                               for n in args.clients])
        if "big" not in args.skip:
            print_big(big_object(stack, session, cred, args.size_mib, args.rounds))
        calls = [r for r in stack.export(sid) if r.get("type") == "api.call"]
        if "latency" not in args.skip:
            gets = [r for r in calls if r["operation"] == "GetObject"]
            # phase 1's measured GetObjects are the (warm-up + pairs) first ones; skip the warm-up
            durations = [r["duration_ms"] for r in gets[args.warmup:args.warmup + args.pairs]]
        if "big" not in args.skip:
            big = [r for r in calls if r["operation"] in ("PutObject", "GetObject")
                   and r["bytes_in"] + r["bytes_out"] == args.size_mib << 20 and r["http_status"] == 200]
            print(f"the gateway's records of the large transfers: "
                  f"{', '.join(sorted(set(r['operation'] + ' ' + str(r['bytes_in'] or r['bytes_out']) + ' bytes' for r in big)))}"
                  f" ({len(big)} calls, each one request)")
        stack.stop_server()
        stage_results = stages(stack, cred, args.stages_n, args.warmup) if "stages" not in args.skip else None
        if "inprocess" not in args.skip:
            print_in_process(in_process(stack, cred, args.in_process_runs), durations)
        if stage_results is not None:
            print_stages(stage_results)
        print(f"\nload at end {load()}")
    finally:
        stack.stop()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
