"""The recorder against the real hoop server (POST /api/v1/records, GET /api/v1/sessions): the
server goes down for 100 records and comes back; `hoop sync` and the background uploader deliver
every record exactly once; a record the ledger rejects is quarantined with the ledger's reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from recorder_helpers import Gate, log_in, make_result, make_start

from hoopcli.client import Client
from hoopcli.paths import Layout
from hoopcli.record.spool import Spool
from hoopcli.record.upload import upload
from hoopcli.record.uploader import kick_uploader, read_state, uploader_pid

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def short_linger(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOP_UPLOADER_LINGER", "0.5")


@pytest.fixture
def gate(server: Any) -> Iterator[Gate]:
    g = Gate(int(server.url.rsplit(":", 1)[1]))
    yield g
    g.down()


def wait_for(what: str, check: Callable[[], bool], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _commands(spool: Spool, session: str, n: int) -> list[str]:
    ids = []
    for i in range(n):
        start = make_start(seq=i, session=session)
        result = make_result(seq=i, session=session, stdout=f"line {i}\n")
        result["command_id"] = start["command_id"]
        for rec in (start, result):
            spool.append(rec)
            ids.append(rec["id"])
    return ids


def _session(server: Any, session: str) -> dict[str, Any]:
    client = Client(server.url, token=server.token("alice"))
    return client.get(f"/api/v1/sessions/{session}").json()


def hoop(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hoopcli", *args], capture_output=True, text=True, check=False,
                          env=dict(os.environ), timeout=120)


def test_hoop_sync_delivers_100_records_spooled_while_the_server_was_down(
        layout: Layout, server: Any, gate: Gate) -> None:
    log_in(layout, gate.url, server.token("alice"))
    spool = Spool(layout)
    ids = _commands(spool, "sess-down", 50)
    down = hoop("sync", "--server", gate.url)
    assert down.returncode == 69, down.stderr
    assert "sent 0 of 100 records, 100 still pending" in down.stderr
    gate.up()
    up = hoop("sync", "--server", gate.url)
    assert (up.returncode, up.stderr) == (0, "")
    assert up.stdout == f"sent 100 records to {gate.url}; 0 pending; 0 quarantined\n"
    shown = _session(server, "sess-down")
    assert shown["records"] == 100
    assert len(shown["commands"]) == 50
    # a second delivery of the same records (an ack lost in a crash) is stored once
    client = Client(gate.url, token=server.token("alice"))
    again = [make_start(seq=0, session="sess-down")]
    again[0]["id"] = ids[0]
    again[0]["command_id"] = shown["commands"][0]["command_id"]
    body = client.post("/api/v1/records", json={"records": again}).json()
    assert body["duplicates"] == [ids[0]] and body["accepted"] == []
    assert _session(server, "sess-down")["records"] == 100


def test_the_background_uploader_delivers_once_the_server_is_back(
        layout: Layout, server: Any, gate: Gate) -> None:
    log_in(layout, gate.url, server.token("alice"))
    spool = Spool(layout)
    env = dict(os.environ)
    _commands(spool, "sess-bg", 50)
    assert kick_uploader(layout, env, gate.url) is True
    wait_for("the uploader to back off", lambda: read_state(layout).get("state") == "backoff")
    assert len(spool.pending()) == 100
    gate.up()
    wait_for("the spool to drain", lambda: not spool.pending())
    wait_for("the uploader to exit", lambda: uploader_pid(layout) is None)
    shown = _session(server, "sess-bg")
    assert shown["records"] == 100 and len(shown["commands"]) == 50
    assert spool.quarantined() == []


def test_a_record_the_ledger_rejects_is_quarantined_with_its_reason(
        layout: Layout, server: Any, gate: Gate) -> None:
    gate.up()
    spool = Spool(layout)
    _commands(spool, "sess-bad", 2)
    bad = make_start(seq=9, session="sess-bad")
    bad["time"] = "yesterday"
    bad_path = spool.append(bad)
    client = Client(gate.url, token=server.token("alice"))
    assert upload(Spool(layout), client) == (4, 1)
    [moved] = spool.quarantined()
    assert moved.name == bad_path.name
    reason = (moved.parent / (moved.name + ".reason")).read_text()
    assert "server rejected the record: $.time: has an invalid format" in reason
    assert _session(server, "sess-bad")["records"] == 4


def test_records_larger_than_the_servers_body_limit_arrive_cut_and_marked(
        layout: Layout, make_server: Any) -> None:
    server = make_server(max_body_bytes=300 * 1024, max_records_body_bytes=300 * 1024)
    spool = Spool(layout)
    small = _commands(spool, "sess-big", 3)
    big = make_result(seq=7, session="sess-big", stdout="é" * 400_000, stderr="w" * 300_000)
    spool.append(big)
    client = Client(server.url, token=server.token("alice"))
    assert upload(Spool(layout), client) == (7, 0)
    assert spool.pending() == [] and spool.quarantined() == []
    lines = client.get("/api/v1/export", params={"session_id": "sess-big"}).body.splitlines()
    stored = {e["record"]["id"]: e["record"] for e in map(json.loads, lines)}
    assert set(stored) == {*small, big["id"]}
    got = stored[big["id"]]
    assert got["record_truncated"]["original_size"] > 1_000_000
    assert got["stdout"]["size"] == 800_000 and got["stdout"]["truncated"] is True
    assert got["stdout"]["text"] and set(got["stdout"]["text"]) == {"é"}


def test_a_full_size_record_reaches_a_default_server(layout: Layout, server: Any) -> None:
    spool = Spool(layout)
    rec = make_result(seq=0, session="sess-full", stdout="a" * (2 << 20), stderr="b" * 10)
    spool.append(rec)
    client = Client(server.url, token=server.token("alice"))
    assert upload(Spool(layout), client) == (1, 0)
    lines = client.get("/api/v1/export", params={"session_id": "sess-full"}).body.splitlines()
    [entry] = [json.loads(x) for x in lines]
    assert entry["record"]["id"] == rec["id"]
    assert entry["record"]["stdout"]["size"] == 2 << 20
    assert entry["record"]["stdout"]["truncated"] is True
    assert entry["record"]["stderr"]["text"] == "b" * 10
    # 1 MiB of output is kept whole where the server's body limit allows it; below that limit
    # the record arrives cut further, and says so
    kept = entry["record"]["stdout"]["text"]
    assert kept == "a" * (1 << 20) or (set(kept) == {"a"} and "record_truncated" in entry["record"])
