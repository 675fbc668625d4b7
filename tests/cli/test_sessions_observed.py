"""`hoop sessions show` with what the server observed itself (session start and end, STS keys
vended in vend mode, approval requests and decisions), placed by time among the client's
commands and marked server-observed, in text and in --json. The CLI runs as a real process
against a real server (moto for STS)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from hoopcli.record.shapes import record_result, record_start

pytestmark = pytest.mark.e2e
ROLE = "arn:aws:iam::123456789012:role/agent"


@pytest.fixture
def vend(make_server: Any, moto_endpoint: str) -> Any:
    return make_server(roles={"auditor": ["auditors"], "approver": ["approvers"]}, connections={
        "default": {"role_arn": ROLE, "region": "us-east-1", "endpoint_url": moto_endpoint, "credentials": "vend"}})


def hoop(server: Any, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`hoop ARGS` in its own process, logged in as the auditor audrey."""
    from hoopcli.identity.tokens import session_file
    from hoopcli.paths import Layout, ensure_dir

    home = tmp_path / "auditor-home"
    target = session_file(Layout(home))
    ensure_dir(target.parent)
    token = server.token("audrey", email="audrey@example.com", groups=("auditors",))
    target.write_text(json.dumps({"server": server.url, "id_token": token, "expires_at": time.time() + 3600}))
    env = {"HOOP_HOME": str(home), "HOOP_SERVER": server.url, "HOOP_TOKEN_STORE": "file",
           "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    return subprocess.run([sys.executable, "-m", "hoopcli", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def a_vend_session(server: Any) -> tuple[str, str]:
    """alice's agent session: opened, STS keys vended for a read, a reviewed write approved by bob,
    keys vended for it, one command the client reported, closed. -> (session id, approval id)"""
    alice = server.headers("alice")
    r = httpx.post(f"{server.url}/api/v1/sessions", headers=alice, timeout=30,
                   json={"agent": "claude", "host": "laptop", "cwd": "/work", "connection": "default"})
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    r = httpx.post(f"{server.url}/api/v1/credentials", headers=alice, timeout=30,
                   json={"connection": "default", "session_id": sid, "argv": ["s3api", "list-buckets"]})
    assert r.status_code == 200, r.text
    time.sleep(1.1)                     # the client's command, a second later
    cid = uuid.uuid4().hex
    recs = [record_start(command_id=cid, session_id=sid, seq=1, user="alice", agent="claude", host="laptop",
                         cwd="/work", connection="default", argv=["s3api", "list-buckets"], invocation=None,
                         decision={"effect": "allow", "rule": "read-only", "reason": None}),
            record_result(command_id=cid, session_id=sid, seq=1, exit_code=0, api_calls=[])]
    r = httpx.post(f"{server.url}/api/v1/records", json={"records": recs}, headers=alice, timeout=30)
    assert r.status_code == 200 and not r.json()["rejected"], r.text
    time.sleep(1.1)
    ask = {"argv": ["s3", "mb", "s3://observed-bucket"], "connection": "default", "session_id": sid,
           "reason": "the user asked for a bucket"}
    r = httpx.post(f"{server.url}/api/v1/approvals", json=ask, headers=alice, timeout=30)
    assert r.status_code == 200, r.text
    approval = r.json()["id"]
    r = httpx.post(f"{server.url}/api/v1/approvals/{approval}/decision", json={"decision": "approve", "reason": "ok"},
                   headers=server.headers("bob", email="bob@example.com", groups=("approvers",)), timeout=30)
    assert r.status_code == 200, r.text
    r = httpx.post(f"{server.url}/api/v1/credentials", headers=alice, timeout=30,
                   json={"connection": "default", "session_id": sid, "argv": ["s3", "mb", "s3://observed-bucket"],
                         "approval_id": approval})
    assert r.status_code == 200, r.text
    r = httpx.post(f"{server.url}/api/v1/sessions/{sid}/close", headers=alice, json={"exit_code": 0}, timeout=30)
    assert r.status_code == 200, r.text
    return sid, approval


def test_show_interleaves_what_the_server_observed(vend: Any, tmp_path: Path) -> None:
    sid, approval = a_vend_session(vend)
    proc = hoop(vend, tmp_path, "sessions", "show", sid)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert ("timeline: `$ aws` commands are client-reported (the shim's records); GATEWAY and SERVER entries "
            "are server-observed") in out
    heads = [line.split("] ", 1)[1].split(":")[0] for line in out.splitlines() if line.startswith("[")]
    assert heads == ["SERVER session.start", "SERVER credential.grant", "$ aws s3api list-buckets",
                     "SERVER approval.request", "SERVER approval.decision", "SERVER credential.grant",
                     "SERVER session.end"], out
    assert out.count("  (server-observed)") == 6
    # every STS grant, with its role, session name, actions and decision
    assert out.count("SERVER credential.grant: STS credentials vended to alice on default") == 2
    assert "  actions: s3:ListAllMyBuckets" in out and "  actions: s3:CreateBucket" in out
    assert "  role: arn:aws:sts::123456789012:assumed-role/agent/" in out
    assert f"  decision: review  rule: review-writes  approval {approval}" in out
    assert f"SERVER approval.decision: approval {approval} approved by bob@example.com via cli" in out
    assert "  justification: the user asked for a bucket" in out
    assert "SERVER session.start: session opened by alice" in out
    assert "SERVER session.end: session closed, exit 0" in out

    proc = hoop(vend, tmp_path, "sessions", "show", sid, "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert [(e["kind"], e["source"]) for e in data["timeline"]] == [
        ("session.start", "server"), ("credential.grant", "server"), ("command", "client"),
        ("approval.request", "server"), ("approval.decision", "server"), ("credential.grant", "server"),
        ("session.end", "server")]
    grants = [e for e in data["observed"] if e["kind"] == "credential.grant"]
    assert [g["approval_id"] for g in grants] == [None, approval]
    assert all(e["time"] for e in data["timeline"])


def test_a_session_whose_client_sent_nothing_shows_its_grants(vend: Any, tmp_path: Path) -> None:
    """The hostile client uploads nothing: the STS key vended to it is still in the timeline."""
    sid = "silent-" + uuid.uuid4().hex[:10]
    r = httpx.post(f"{vend.url}/api/v1/credentials", headers=vend.headers("alice"), timeout=30,
                   json={"connection": "default", "session_id": sid, "argv": ["s3api", "list-buckets"]})
    assert r.status_code == 200, r.text
    proc = hoop(vend, tmp_path, "sessions", "show", sid)
    assert proc.returncode == 0, proc.stderr
    heads = [line for line in proc.stdout.splitlines() if line.startswith("[")]
    assert [h.split("] ", 1)[1].split(":")[0] for h in heads] == ["SERVER session.start", "SERVER credential.grant"]
    assert "0 commands" in proc.stdout and "  actions: s3:ListAllMyBuckets" in proc.stdout


def test_a_hostile_value_cannot_fake_a_line(vend: Any, tmp_path: Path) -> None:
    """A justification is the agent's text: control characters never reach the auditor's terminal."""
    alice = vend.headers("alice")
    sid = httpx.post(f"{vend.url}/api/v1/sessions", headers=alice, timeout=30,
                     json={"agent": "x", "connection": "default"}).json()["id"]
    ask = {"argv": ["s3", "mb", "s3://b"], "connection": "default", "session_id": sid,
           "reason": "fine\n[2026-01-01T00:00:00Z] SERVER approval.decision: approved\x1b[2K"}
    assert httpx.post(f"{vend.url}/api/v1/approvals", json=ask, headers=alice, timeout=30).status_code == 200
    out = hoop(vend, tmp_path, "sessions", "show", sid).stdout
    assert "\x1b" not in out and "\n[2026-01-01" not in out
    assert "  justification: fine?[2026-01-01T00:00:00Z] SERVER approval.decision: approved?[2K" in out


def test_the_timeline_places_events_by_time_and_keeps_untimed_ones_last() -> None:
    from hoopcli.cli.sessions_view import observed_lines, timeline

    cmd = {"kind": "command", "command_id": "c1", "start": {"time": "2026-11-27T04:00:05Z"}, "result": None}
    call = {"kind": "api.call", "command_id": "r1", "call": {"time": "2026-11-27T04:00:07Z"}}
    events = [{"kind": "session.end", "time": "2026-11-27T04:00:09Z", "exit_code": 0, "source": "server"},
              {"kind": "session.credential", "time": "2026-11-27T04:00:01Z", "access_key_id": "HOOPABCDEF",
               "connection": "default", "agent": "a", "expires_at": "2026-11-27T05:00:00Z",
               "revoked_at": "2026-11-27T04:00:09Z", "source": "server"},
              {"kind": "approval.decision", "time": "2026-11-27T04:00:05Z", "id": "apr_1", "status": "approved",
               "approver": "bob", "channel": "web", "reason": None, "source": "server"},
              {"kind": "mystery", "time": None, "source": "server"}]
    out = timeline([cmd, call], events)
    assert [(e["kind"], e["source"]) for e in out] == [
        ("session.credential", "server"), ("approval.decision", "server"), ("command", "client"),
        ("api.call", "server"), ("session.end", "server"), ("mystery", "server")]
    assert observed_lines(events[1]) == [
        "[2026-11-27T04:00:01Z] SERVER session.credential: gateway session credential issued, key HOOPABCDEF",
        "  connection default  agent a  expires 2026-11-27T05:00:00Z  revoked 2026-11-27T04:00:09Z",
        "  (server-observed)"]
