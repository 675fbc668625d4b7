"""`GET /api/v1/sessions` latency with 100k sessions: keyset pagination and filters.

    .venv/bin/python benchmarks/sessions_list.py [--sessions 100000] [--requests 50]
                                                 [--sqlite | --postgres | --database-url URL]

Starts a real hoop server (separate process), bulk-inserts N session summaries (plus one command
and its IAM action per session, so the action/decision/status filters have something to search)
directly into the ledger tables, then times list requests through the API as an auditor:
first page, a page deep in the keyset walk, and each filter. Prints p50/p95 per query.
Figures go into docs/benchmarks.md under "## Ingest and audit".
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ingest import pct, pg_database, start_server  # benchmarks/ingest.py

from hoopcli.client import Client

AGENTS = ["claude", "cursor", "codex", "aider", "devin"]
ACTIONS = ["s3:listallmybuckets", "s3:getobject", "ec2:describeinstances", "iam:deleterole",
           "lambda:invokefunction", "dynamodb:query"]


def seed(database_url: str, n: int) -> None:
    from hoopcli.server.store import Database
    from hoopcli.server.store.ledger import (
        LedgerCommand,
        LedgerCommandAction,
        LedgerSession,
    )

    db = Database(database_url)
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rnd = random.Random(7)
    chunk = 5000
    started = time.perf_counter()
    for lo in range(0, n, chunk):
        sessions, commands, actions = [], [], []
        for i in range(lo, min(n, lo + chunk)):
            sid = f"bench-{i:07d}"
            when = t0 + timedelta(seconds=i * 30)
            effect = rnd.choice(["allow"] * 8 + ["review", "deny"])
            exit_code = 0 if rnd.random() < 0.9 else 254
            done = rnd.random() < 0.97
            sessions.append({"org": "default", "id": sid, "user": f"user{i % 200}",
                             "user_email": f"user{i % 200}@example.com", "agent": AGENTS[i % 5],
                             "host": f"host-{i % 50}", "connection": "prod" if i % 7 == 0 else "default",
                             "started_at": when, "last_at": when + timedelta(seconds=5), "commands": 1,
                             "incomplete": 0 if done else 1, "failed": int(exit_code != 0),
                             "denied": int(effect == "deny"), "reviewed": int(effect == "review")})
            cid = f"{i:032x}"
            commands.append({"org": "default", "command_id": cid, "session_id": sid, "started_at": when,
                             "effect": effect, "exit_code": exit_code if done else None,
                             "has_start": 1, "has_result": int(done), "summary": "s3 ls"})
            actions.append({"org": "default", "command_id": cid, "session_id": sid,
                            "action": ACTIONS[i % len(ACTIONS)]})
        with db.session() as s:
            s.execute(LedgerSession.__table__.insert(), sessions)
            s.execute(LedgerCommand.__table__.insert(), commands)
            s.execute(LedgerCommandAction.__table__.insert(), actions)
    with db.engine.begin() as conn:
        if db.dialect == "postgresql":
            from sqlalchemy import text

            conn.execute(text("ANALYZE"))
    db.dispose()
    print(f"  seeded {n:,} sessions in {time.perf_counter() - started:.1f} s")


def timed(client: Client, params: dict[str, Any], requests: int) -> list[float]:
    out = []
    for _ in range(requests):
        t0 = time.perf_counter()
        client.get("/api/v1/sessions", params=params)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def run(database_url: str, label: str, n: int, requests: int) -> None:
    home = Path(tempfile.mkdtemp(prefix="hoop-bench-"))
    proc, url, token = start_server(home, database_url)
    try:
        print(f"{label}:")
        seed(database_url, n)
        client = Client(url, token=token("audrey", ("auditors",)), timeout=120)
        # a cursor deep in the walk: follow 100 pages of 50
        cursor = None
        for _ in range(100):
            cursor = client.get("/api/v1/sessions", params={"limit": 50, "cursor": cursor}).json()["next"]
        queries = {
            "first page (50)": {"limit": 50},
            "page 101 by cursor": {"limit": 50, "cursor": cursor},
            "user filter": {"user": "user42@example.com"},
            "agent filter": {"agent": "codex"},
            "time range (1 day)": {"since": "2026-01-10T00:00:00Z", "until": "2026-01-11T00:00:00Z"},
            "action glob iam:*": {"action": "iam:*"},
            "action glob, no match": {"action": "sts:*"},
            "decision deny": {"decision": "deny"},
            "status incomplete": {"status": "incomplete"},
            "exit code 254": {"exit_code": 254},
        }
        for name, params in queries.items():
            lat = timed(client, params, requests)
            print(f"  {name:22} p50 {pct(lat, 50):7.1f} ms   p95 {pct(lat, 95):7.1f} ms")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--database-url")
    ap.add_argument("--sqlite", action="store_true")
    ap.add_argument("--postgres", action="store_true")
    args = ap.parse_args()
    print(f"# {platform.node()} {platform.python_version()} cpus={os.cpu_count()}")
    if args.database_url:
        run(args.database_url, "custom", args.sessions, args.requests)
        return
    if args.postgres or not args.sqlite:
        url, drop = pg_database()
        try:
            run(url, "PostgreSQL", args.sessions, args.requests)
        finally:
            drop()
    if args.sqlite or not args.postgres:
        d = tempfile.mkdtemp(prefix="hoop-bench-db-")
        run(f"sqlite:///{d}/hoop.db", "SQLite", args.sessions, args.requests)


if __name__ == "__main__":
    main()
