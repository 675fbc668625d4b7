"""Spool and upload figures: append+fsync cost per record, the uploader probe, and audit visibility.

    .venv/bin/python benchmarks/spool.py [--records N] [--commands N] [--database-url URL]

Prints:
  * `Spool.append` (write tmp + fsync + rename + fsync dir) per record, small and 1 MiB records;
  * `kick_uploader` when an uploader already runs (the cost every shim call pays);
  * audit visibility: time from a command's end (its result record appended, uploader kicked)
    to the record being visible through GET /api/v1/sessions/{id} on a real hoop server
    (uvicorn in a thread, SQLite unless --database-url), for commands 0.2 s and 3 s apart (the
    uploader lingers 10 s, so it is warm) and with a cold uploader for every command.
Figures go into docs/benchmarks.md under "## Spool and upload".
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import platform
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from hoopcli.client import Client
from hoopcli.paths import Layout
from hoopcli.record import shapes as recorder
from hoopcli.record.spool import Spool
from hoopcli.record.uploader import LOCK_NAME, kick_uploader, uploader_pid


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def line(name: str, values: list[float], unit: str = "ms") -> None:
    print(f"  {name:<52} n={len(values):<4} p50={pct(values, 50):8.3f} {unit}  "
          f"p95={pct(values, 95):8.3f} {unit}  p99={pct(values, 99):8.3f} {unit}  "
          f"max={max(values):8.3f} {unit}")


def result(seq: int, session: str, stdout: str) -> dict[str, Any]:
    return recorder.record_result(command_id=recorder.new_id(), session_id=session, seq=seq,
                                  exit_code=0, stdout=stdout, stderr="",
                                  api_calls=[{"service": "s3", "operation": "ListBuckets",
                                              "params": {}, "http_status": 200}])


def start(seq: int, session: str, command_id: str) -> dict[str, Any]:
    return recorder.record_start(command_id=command_id, session_id=session, seq=seq,
                                 user="bench@example.com", agent="bench", host="bench",
                                 cwd="/", connection="default", argv=["s3", "ls"],
                                 invocation={"service": "s3", "operation": "ls"},
                                 decision={"effect": "allow", "rule": "r", "reason": None})


def bench_append(home: Path, n: int) -> None:
    spool = Spool(Layout(home))
    for label, text in (("append+fsync, ~1 KiB record", "x" * 600),
                        ("append+fsync, 1 MiB stdout record", "y" * (1 << 20))):
        times = []
        count = n if len(text) < 4096 else max(20, n // 10)
        for i in range(count):
            rec = result(i, "bench-append", text)
            t0 = time.perf_counter()
            spool.append(rec)
            times.append((time.perf_counter() - t0) * 1000)
        line(label, times)
        spool.ack(r["id"] for _, r in spool.records())


def bench_kick(home: Path, n: int) -> None:
    layout = Layout(home)
    layout.spool_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(layout.spool_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)          # stands for the running uploader
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        spawned = kick_uploader(layout, {}, "http://127.0.0.1:9")
        times.append((time.perf_counter() - t0) * 1000)
        assert spawned is False
    os.close(fd)
    line("kick_uploader, one already running", times)
    spawn = []
    for i in range(10):                      # a fresh HOOP_HOME each time: nothing runs there yet
        other = Layout(home / f"cold-{i}").ensure()
        t0 = time.perf_counter()
        spawned = kick_uploader(other, {"PATH": os.environ.get("PATH", "")}, "http://127.0.0.1:9")
        spawn.append((time.perf_counter() - t0) * 1000)
        assert spawned is True
    line("kick_uploader, spawning a new uploader", spawn)


def start_server(home: Path, database_url: str | None) -> tuple[Any, Any]:
    import uvicorn

    from hoopcli.server.app import create_app
    from hoopcli.server.settings import load_settings

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    overrides: dict[str, Any] = {"listen": f"127.0.0.1:{port}", "home": str(home / "server")}
    if database_url:
        overrides["database_url"] = database_url
    settings = load_settings(env={}, **overrides)
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return settings, server


def bench_visibility(home: Path, commands: int, database_url: str | None) -> None:
    from hoopcli.server.idp.keys import mint_id_token

    settings, server = start_server(home, database_url)
    url = settings.public_url
    token = mint_id_token(settings, "bench", "bench@example.com", ())
    client_home = home / "client"
    layout = Layout(client_home).ensure()
    session_file = layout.cache_dir / "session.json"
    session_file.parent.mkdir(mode=0o700, exist_ok=True)
    session_file.write_text(json.dumps({"server": url, "id_token": token,
                                        "expires_at": time.time() + 3600}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOOP_", "AWS_"))}
    env["HOOP_HOME"] = str(client_home)
    spool = Spool(layout)
    auditor = Client(url, token=token)
    try:
        scenarios = (("commands 0.2 s apart (uploader warm)", 0.2, "10", commands),
                     ("commands 3 s apart (warm: 10 s linger)", 3.0, "10", max(5, commands // 5)),
                     ("commands 1 s apart, cold uploader each time", 1.0, "0", max(5, commands // 5)))
        for label, spacing, linger, n in scenarios:
            env["HOOP_UPLOADER_LINGER"] = linger
            while uploader_pid(layout) is not None:
                time.sleep(0.05)
            session = f"bench-vis-{spacing}-{linger}"
            times = []
            for seq in range(n):
                cid = recorder.new_id()
                spool.append(start(seq, session, cid))
                res = result(seq, session, "ok\n")
                res["command_id"] = cid
                spool.append(res)
                kick_uploader(layout, env, url)
                t_end = time.perf_counter()
                while True:
                    got = auditor.get(f"/api/v1/sessions/{session}", expect=(404,))
                    if got.status == 200 and got.json()["records"] >= 2 * (seq + 1):
                        break
                    time.sleep(0.01)
                times.append((time.perf_counter() - t_end) * 1000)
                time.sleep(spacing)
            line(f"visible: {label}", times)
    finally:
        server.should_exit = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument("--commands", type=int, default=50)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    print(f"spool benchmark: python {platform.python_version()}, {os.cpu_count()} cpus, "
          f"{platform.system()} {platform.release()}")
    with tempfile.TemporaryDirectory(prefix="hoop-bench-") as tmp:
        home = Path(tmp)
        print(f"spool on {home} ({os.statvfs(home).f_bsize} B blocks)")
        bench_append(home / "a", args.records)
        bench_kick(home / "k", args.records)
        bench_visibility(home / "v", args.commands, args.database_url)


if __name__ == "__main__":
    main()
