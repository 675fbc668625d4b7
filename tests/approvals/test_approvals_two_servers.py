"""Two real `hoop server` processes on one PostgreSQL database: a decision made on one wakes a
waiter long-polling the other (PostgreSQL LISTEN/NOTIFY). Latency is measured by
benchmarks/approval_latency.py; here only a generous functional timeout applies."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from approvals_helpers import fresh_pg_database, start_cluster

from hoopcli.client import Client
from hoopcli.server.idp.keys import mint_id_token

pytestmark = pytest.mark.e2e


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[list[Any], Any]]:
    url, drop = fresh_pg_database()
    servers, settings = start_cluster(tmp_path, url)
    try:
        yield servers, settings
    finally:
        for srv in servers:
            srv.stop()
        drop()


def test_decision_on_one_server_wakes_a_waiter_on_the_other(cluster: tuple[list[Any], Any]) -> None:
    (a, b), settings = cluster
    token = mint_id_token(settings, "alice", "alice@example.com", ["developers"])
    on_a, on_b = Client(a.url, token=token), Client(b.url, token=token)
    for requester, waiter, decider, bucket in ((on_a, on_b, on_a, "two-1"), (on_b, on_a, on_b, "two-2")):
        item = requester.post("/api/v1/approvals", json={"argv": ["s3", "rb", f"s3://{bucket}"],
                                                         "connection": "default"}).json()
        assert waiter.get(f"/api/v1/approvals/{item['id']}").json()["status"] == "pending"
        box: dict[str, Any] = {}
        started = threading.Event()

        # the round's values are bound now: a thread outliving its join must not see the next round's
        def wait(started: threading.Event = started, box: dict[str, Any] = box, waiter: Client = waiter,
                 item: dict[str, Any] = item) -> None:
            started.set()
            box["r"] = waiter.get(f"/api/v1/approvals/{item['id']}", params={"wait": 50}, timeout=70).json()

        thread = threading.Thread(target=wait, daemon=True)
        thread.start()
        started.wait(5)
        time.sleep(0.5)                       # the waiter is parked in its long-poll
        assert "r" not in box
        # the requester's own denial (approving would need the console's fresh sign-in)
        decider.post(f"/api/v1/approvals/{item['id']}/decision", json={"decision": "deny", "reason": "not now"})
        thread.join(60)
        assert box["r"]["status"] == "rejected" and box["r"]["channel"] == "cli"


def test_racing_decisions_on_two_servers_exactly_one_wins(cluster: tuple[list[Any], Any]) -> None:
    (a, b), settings = cluster
    alice = mint_id_token(settings, "alice", "alice@example.com", ["developers"])
    bob = mint_id_token(settings, "bob", "bob@example.com", ["approvers"])
    req = Client(a.url, token=alice)
    for i in range(5):
        item = req.post("/api/v1/approvals", json={"argv": ["iam", "attach-role-policy", "--role-name", f"r{i}",
                                                            "--policy-arn", "arn:aws:iam::aws:policy/ReadOnlyAccess"],
                                                   "connection": "default", "reason": "race"}).json()
        barrier = threading.Barrier(2)
        results: list[int] = []

        def decide(url: str, verdict: str, *, barrier: threading.Barrier = barrier,
                   item: dict[str, Any] = item, results: list[int] = results) -> None:
            barrier.wait()
            r = Client(url, token=bob).post(f"/api/v1/approvals/{item['id']}/decision",
                                            json={"decision": verdict}, expect=(409,))
            results.append(r.status)

        threads = [threading.Thread(target=decide, args=(a.url, "approve")),
                   threading.Thread(target=decide, args=(b.url, "deny"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(results) == [200, 409]
        final = req.get(f"/api/v1/approvals/{item['id']}").json()
        assert final["status"] in ("approved", "rejected")
        assert [e["event"] for e in final["events"]].count(final["status"]) == 1
