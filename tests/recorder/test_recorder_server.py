"""The recorder against the real hoop server (POST /api/v1/records, GET /api/v1/sessions): the
server goes down for 100 records and comes back; `hoop sync` and the background uploader deliver
every record exactly once; a record the ledger rejects is quarantined with the ledger's reason."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from recorder_helpers import Gate, log_in, make_result, make_start

from hoopcli import recorder
from hoopcli.client import Client
from hoopcli.paths import Layout
from hoopcli.uploader import read_state, uploader_pid

pytestmark = pytest.mark.e2e


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


def _commands(spool: recorder.Spool, session: str, n: int) -> list[str]:
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
    spool = recorder.Spool(layout)
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
    spool = recorder.Spool(layout)
    env = dict(os.environ)
    _commands(spool, "sess-bg", 50)
    assert recorder.kick_uploader(layout, env, gate.url) is True
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
    spool = recorder.Spool(layout)
    _commands(spool, "sess-bad", 2)
    bad = make_start(seq=9, session="sess-bad")
    bad["time"] = "yesterday"
    bad_path = spool.append(bad)
    client = Client(gate.url, token=server.token("alice"))
    assert recorder.upload(client, layout=layout) == (4, 1)
    [moved] = spool.quarantined()
    assert moved.name == bad_path.name
    reason = (moved.parent / (moved.name + ".reason")).read_text()
    assert "server rejected the record: $.time: has an invalid format" in reason
    assert _session(server, "sess-bad")["records"] == 4
