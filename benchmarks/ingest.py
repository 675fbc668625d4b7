"""Ingest throughput and latency: 50 concurrent uploaders POSTing records to a real hoop server.

    .venv/bin/python benchmarks/ingest.py [--uploaders 50] [--records 200] [--batch 10]
                                          [--database-url URL | --sqlite | --postgres]

The server runs as a separate process (`hoop server`, one uvicorn worker) so the uploaders'
threads do not share its interpreter. Each uploader is its own user with its own session and
sends `--records` records in batches of `--batch` (the spool uploader sends up to 100 per
request). Prints records/s over the whole run and p50/p95/p99 per-request latency, then checks
that the tree is whole (a signed checkpoint covers every record and the leaf count matches).
Default runs PostgreSQL (127.0.0.1:5432, user postgres, a throwaway database) then SQLite.
Figures go into docs/benchmarks.md under "## Ingest and audit".
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "ledger"))

from ledger_factory import command

from hoopcli.client import Client


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_database() -> tuple[str, Any]:
    import psycopg

    name = f"hoop_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()

    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", drop


def start_server(home: Path, database_url: str) -> tuple[subprocess.Popen[bytes], str, Any]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HOOP_"))}
    env["HOOP_HOME"] = str(home)
    env["HOOP_SERVER_LOG_LEVEL"] = "warning"
    cfg = home / "server.yaml"
    cfg.write_text("roles: {auditor: [auditors]}\n")
    proc = subprocess.Popen([sys.executable, "-m", "hoopcli", "server", "--config", str(cfg),
                             "--port", str(port), "--database-url", database_url],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            Client(url).get("/api/v1/config")
            break
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("server did not start: " + (proc.stderr.read() or b"").decode()[-2000:]) from None
            time.sleep(0.2)
    from hoopcli.server.idp.keys import mint_id_token
    from hoopcli.server.settings import load_settings

    settings = load_settings(cfg, env=env, port=port)

    def token(sub: str, groups: tuple[str, ...] = ()) -> str:
        return mint_id_token(settings, sub, f"{sub}@example.com", groups)

    return proc, url, token


def run(database_url: str, label: str, uploaders: int, records: int, batch: int) -> None:
    home = Path(tempfile.mkdtemp(prefix="hoop-bench-"))
    proc, url, token = start_server(home, database_url)
    try:
        before = Client(url, token=token("audrey", ("auditors",))).get("/api/v1/verify").json()["size"]
        work: list[list[list[dict[str, Any]]]] = []
        for u in range(uploaders):
            recs: list[dict[str, Any]] = []
            sid = f"bench-{u}-{uuid.uuid4().hex[:6]}"
            for i in range(records // 2):
                recs += command(sid, i * 2, t=i)
            work.append([recs[i:i + batch] for i in range(0, len(recs), batch)])
        latencies: list[float] = []
        lock = threading.Lock()
        errors: list[str] = []
        barrier = threading.Barrier(uploaders + 1)

        def uploader(n: int) -> None:
            client = Client(url, token=token(f"user{n}"), timeout=120)
            mine: list[float] = []
            barrier.wait()
            for chunk in work[n]:
                t0 = time.perf_counter()
                try:
                    out = client.post("/api/v1/records", {"records": chunk}).json()
                    if len(out["accepted"]) != len(chunk):
                        errors.append(f"uploader {n}: {out.get('rejected')}")
                except Exception as exc:
                    errors.append(f"uploader {n}: {exc}")
                mine.append((time.perf_counter() - t0) * 1000)
            with lock:
                latencies.extend(mine)

        threads = [threading.Thread(target=uploader, args=(n,)) for n in range(uploaders)]
        for t in threads:
            t.start()
        barrier.wait()
        t0 = time.perf_counter()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
        total = sum(len(c) for w in work for c in w)
        aud = Client(url, token=token("audrey", ("auditors",)), timeout=120)
        cp = aud.post("/api/v1/checkpoints", {}).json()["checkpoint"]
        print(f"{label}: {uploaders} uploaders x {records} records, batches of {batch}: "
              f"{total} records in {elapsed:.2f} s = {total / elapsed:,.0f} records/s; "
              f"request latency p50 {pct(latencies, 50):.0f} ms, p95 {pct(latencies, 95):.0f} ms, "
              f"p99 {pct(latencies, 99):.0f} ms ({len(latencies)} requests); "
              f"errors {len(errors)}; signed checkpoint covers {cp['size'] - before} new records "
              f"(expected {total})")
        for e in errors[:5]:
            print("   ", e)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--uploaders", type=int, default=50)
    ap.add_argument("--records", type=int, default=200, help="records per uploader")
    ap.add_argument("--batch", type=int, action="append", help="records per request (repeatable)")
    ap.add_argument("--database-url")
    ap.add_argument("--sqlite", action="store_true")
    ap.add_argument("--postgres", action="store_true")
    args = ap.parse_args()
    batches = args.batch or [10]
    print(f"# {platform.node()} {platform.python_version()} cpus={os.cpu_count()}")
    targets: list[tuple[str, str, Any]] = []
    if args.database_url:
        targets.append((args.database_url, "custom", None))
    else:
        if args.postgres or not args.sqlite:
            url, drop = pg_database()
            targets.append((url, "PostgreSQL", drop))
        if args.sqlite or not args.postgres:
            d = tempfile.mkdtemp(prefix="hoop-bench-db-")
            targets.append((f"sqlite:///{d}/hoop.db", "SQLite", None))
    try:
        for url, label, _ in targets:
            for b in batches:
                run(url, label, args.uploaders, args.records, b)
    finally:
        for _, _, drop in targets:
            if drop:
                drop()


if __name__ == "__main__":
    main()
