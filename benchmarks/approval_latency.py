"""Decision -> waiter wake-up latency for approvals, per channel and topology.

A waiter runs the shim's own wait loop (hoopcli.approval.api.wait_for: GET /api/v1/approvals/{id}
?wait=25 long-polls); the clock starts just before the decision is sent and stops when the
waiter's long-poll returns the decided approval. What remains after that for "command start" is
the credentials round trip, measured by the shim's own timings.

    .venv/bin/python benchmarks/approval_latency.py [--n 30]

Scenarios (real `hoop server` processes; a local fake Slack Web API for Slack):
    single-sqlite  cli     one server on SQLite, decision via POST .../decision (= hoop approvals
                           approve)
                   web     the same call with channel "web", as the console sends it
    single-pg      cli     one server on PostgreSQL
    single-pg      slack   a signed Slack button click to /api/v1/slack/interactions
    two-pg         cli     waiter on server B, decision on server A (LISTEN/NOTIFY)
    two-pg         slack   waiter on server B, Slack click handled by server A
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "approvals"))
sys.path.insert(0, str(ROOT / "tests"))

from approvals_helpers import fresh_pg_database, start_cluster  # noqa: E402 - needs the paths above
from fakes.slack import FakeSlack, interaction_payload, signed_interaction  # noqa: E402

from hoopcli.approval.api import Approval, wait_for  # noqa: E402
from hoopcli.client import Client  # noqa: E402
from hoopcli.server.idp.keys import mint_id_token  # noqa: E402

SECRET = "bench-signing-secret"


def one(requester: Client, waiter: Client, decide: Callable[[str], None], i: int) -> float:
    item = requester.post("/api/v1/approvals", json={
        "argv": ["iam", "attach-role-policy", "--role-name", f"bench{i}", "--policy-arn",
                 "arn:aws:iam::aws:policy/ReadOnlyAccess"],
        "connection": "default", "reason": "benchmark"}).json()
    box: dict[str, Any] = {}
    parked = threading.Event()

    def wait() -> None:
        parked.set()
        box["a"] = wait_for(waiter, Approval.from_json(item), time.monotonic() + 60)
        box["t"] = time.perf_counter()

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    parked.wait(5)
    time.sleep(0.3)                 # let the long-poll reach the server and park
    t0 = time.perf_counter()
    decide(item["id"])
    thread.join(60)
    if box.get("a") is None or box["a"].status != "approved":
        raise RuntimeError(f"waiter did not see the approval: {box}")
    return box["t"] - t0


def run(name: str, channel: str, n: int, requester: Client, waiter: Client, decide: Callable[[str], None]) -> dict[str, Any]:
    one(requester, waiter, decide, 10_000)          # warm-up
    samples = [one(requester, waiter, decide, i) for i in range(n)]
    samples.sort()
    p95 = samples[max(0, round(0.95 * len(samples)) - 1)]
    row = {"scenario": name, "channel": channel, "n": n, "p50_ms": statistics.median(samples) * 1000,
           "p95_ms": p95 * 1000, "max_ms": samples[-1] * 1000}
    print(f"{name:14} {channel:6} n={n:3}  p50 {row['p50_ms']:7.1f} ms  p95 {row['p95_ms']:7.1f} ms  "
          f"max {row['max_ms']:7.1f} ms", flush=True)
    return row


def slack_click(server_url: str, user: str) -> Callable[[str], None]:
    def decide(approval_id: str) -> None:
        body, headers = signed_interaction(SECRET, interaction_payload(approval_id, "approve", user))
        req = urllib.request.Request(server_url + "/api/v1/slack/interactions", data=body, headers=headers,
                                     method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()
    return decide


def api_decide(client: Client, channel: str = "cli") -> Callable[[str], None]:
    def decide(approval_id: str) -> None:
        client.post(f"/api/v1/approvals/{approval_id}/decision", json={"decision": "approve", "channel": channel})
    return decide


def scenario(tmp: Path, database_url: str, count: int, n: int, name: str, slack: FakeSlack) -> list[dict[str, Any]]:
    slack_cfg = {"bot_token": slack.token, "signing_secret": SECRET, "channel": "C0BENCH", "api_url": slack.api_url}
    servers, settings = start_cluster(tmp, database_url, count=count, slack=slack_cfg)
    try:
        alice = mint_id_token(settings, "alice", "alice@example.com", ["developers"])
        bob = mint_id_token(settings, "bob", "bob@example.com", ["approvers"])
        first, last = servers[0], servers[-1]
        requester = Client(first.url, token=alice, timeout=30)
        waiter = Client(last.url, token=alice, timeout=30)
        bob_api = Client(first.url, token=bob, timeout=30)
        bob_api.get("/api/v1/approvals")            # the server learns bob's groups (Slack matching)
        rows = [run(name, "cli", n, requester, waiter, api_decide(bob_api))]
        rows.append(run(name, "web", n, requester, waiter, api_decide(bob_api, "web")))
        if "sqlite" not in name:
            rows.append(run(name, "slack", n, requester, waiter, slack_click(first.url, "U0BOB")))
        return rows
    finally:
        for srv in servers:
            srv.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=30, help="decisions per scenario (default 30)")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with FakeSlack(token="xoxb-bench", users={"bob@example.com": "U0BOB"}) as slack, \
            tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        (tmp / "s").mkdir()
        rows += scenario(tmp / "s", f"sqlite:///{tmp / 's' / 'hoop.db'}", 1, args.n, "single-sqlite", slack)
        for count, name in ((1, "single-pg"), (2, "two-pg")):
            url, drop = fresh_pg_database()
            (tmp / name).mkdir()
            try:
                rows += scenario(tmp / name, url, count, args.n, name, slack)
            finally:
                drop()
    print()
    print("| scenario | decision channel | n | p50 ms | p95 ms | max ms |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['scenario']} | {r['channel']} | {r['n']} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['max_ms']:.1f} |")


if __name__ == "__main__":
    main()
