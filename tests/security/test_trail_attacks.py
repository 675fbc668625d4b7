"""A trail the agent cannot rewrite. What the server observed (the gateway's api.call records,
session start and end, credentials issued and STS keys vended, approvals and decisions) is
authoritative; what a client uploads is kept and shown as client-reported, and `hoop sessions
verify` holds it against the server's observation:

- record suppression: the agent's client uploads nothing (or leaves commands out); the auditor
  still sees every call the gateway observed, and a gap in the client's sequence is flagged;
- record rewriting: the client's record of a call the gateway saw says something else; verify
  names the contradiction;
- a credential grant in vend mode is in its session's timeline even when the client uploaded
  nothing."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from gateway.gateway_helpers import ROLE, boto3_client, credential, gateway_server, open_session

from hoopcli.audit.verify import verify
from hoopcli.client import Client
from hoopcli.paths import Layout
from hoopcli.record.shapes import record_result, record_start


@pytest.fixture
def gw(make_server: Any, tmp_path: Path, moto_endpoint: str) -> Any:
    return gateway_server(make_server, tmp_path, moto_endpoint)


def auditor_view(server: Any, session_id: str) -> dict[str, Any]:
    r = httpx.get(f"{server.url}/api/v1/sessions/{session_id}", headers=server.headers("audrey", groups=("auditors",)))
    assert r.status_code == 200, r.text
    return dict(r.json())


def audit(server: Any, tmp_path: Path) -> Any:
    client = Client(server.url, token=server.token("audrey", groups=("auditors",)), timeout=60)
    return verify(client, Layout(tmp_path / "auditor-home"))


def upload(server: Any, records: list[dict[str, Any]], sub: str = "alice") -> None:
    r = httpx.post(f"{server.url}/api/v1/records", json={"records": records}, headers=server.headers(sub), timeout=30)
    assert r.status_code == 200 and not r.json()["rejected"], r.text


def command(session_id: str, seq: int, argv: list[str], calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    cid = uuid.uuid4().hex
    return [record_start(command_id=cid, session_id=session_id, seq=seq, user="alice", agent="hostile", host="h",
                         cwd="/", connection="default", argv=argv, invocation=None,
                         decision={"effect": "allow", "rule": None, "reason": None}),
            record_result(command_id=cid, session_id=session_id, seq=seq, exit_code=0, api_calls=calls)]


def gateway_calls(view: dict[str, Any]) -> list[dict[str, Any]]:
    return [c["call"] for c in view["commands"] if c["kind"] == "api.call"]


def test_suppressed_client_records_leave_the_gateways_and_a_flagged_gap(gw: Any, tmp_path: Path) -> None:
    session_id = open_session(gw, "alice", agent="hostile")
    cred = credential(gw, session_id)
    s3 = boto3_client("s3", cred)
    for name in ("trail-a", "trail-b", "trail-c"):
        s3.create_bucket(Bucket=name)
    # the client reports the first and the last command and leaves the middle one out
    upload(gw, command(session_id, 1, ["s3", "mb", "s3://trail-a"], []) +
           command(session_id, 3, ["s3", "mb", "s3://trail-c"], []))
    view = auditor_view(gw, session_id)
    assert [(c["operation"], c["params"]["Bucket"], c["source"]) for c in gateway_calls(view)] == [
        ("CreateBucket", "trail-a", "gateway"), ("CreateBucket", "trail-b", "gateway"),
        ("CreateBucket", "trail-c", "gateway")]
    assert [e["kind"] for e in view["observed"]] == ["session.start", "session.credential"]
    listed = httpx.get(f"{gw.url}/api/v1/sessions", headers=gw.headers("audrey", groups=("auditors",))).json()
    assert any(s["id"] == session_id and s["commands"] == 5 for s in listed["items"]), listed
    report = audit(gw, tmp_path)
    assert f"session {session_id}: client-reported commands seq 2 are missing (a gap in the sequence numbers: " \
           "records suppressed or lost)" in report.failures, report.failures
    assert (report.server_observed, report.client_reported) == (3, 4)


def test_a_session_whose_client_sent_nothing_is_shown_with_what_the_server_saw(gw: Any) -> None:
    session_id = open_session(gw, "alice", agent="silent")
    boto3_client("s3", credential(gw, session_id)).list_buckets()
    view = auditor_view(gw, session_id)
    assert [(c["operation"], c["source"]) for c in gateway_calls(view)] == [("ListBuckets", "gateway")]
    assert view["session"]["agent"] == "silent"


def test_a_rewritten_client_record_contradicts_the_gateway(gw: Any, tmp_path: Path) -> None:
    session_id = open_session(gw, "alice", agent="hostile")
    s3 = boto3_client("s3", credential(gw, session_id))
    s3.create_bucket(Bucket="trail-evidence")
    seen, = gateway_calls(auditor_view(gw, session_id))
    assert seen["request_id"], seen
    # what the client says it did with that very request: a harmless listing
    upload(gw, command(session_id, 1, ["s3", "ls"], [
        {"service": "s3", "operation": "ListBuckets", "params": {}, "request_id": seen["request_id"],
         "http_status": 200, "error_code": None, "duration_ms": 3.0}]))
    report = audit(gw, tmp_path)
    assert (f"session {session_id}: client-reported command.result seq 1 call #0 s3.ListBuckets (request "
            f"{seen['request_id']}) contradicts the gateway's api.call: operation 'ListBuckets' != 'CreateBucket'"
            in report.failures), report.failures
    # both are kept and shown: the client's claim beside the gateway's observation
    kinds = sorted(c["kind"] for c in auditor_view(gw, session_id)["commands"])
    assert kinds == ["api.call", "command"]


def test_an_honest_client_record_agrees_with_the_gateway(gw: Any, tmp_path: Path) -> None:
    session_id = open_session(gw, "alice", agent="honest")
    boto3_client("s3", credential(gw, session_id)).create_bucket(Bucket="trail-honest")
    seen, = gateway_calls(auditor_view(gw, session_id))
    upload(gw, command(session_id, 1, ["s3", "mb", "s3://trail-honest"], [
        {"service": "s3", "operation": "CreateBucket", "params": {}, "request_id": seen["request_id"],
         "http_status": seen["http_status"], "error_code": None, "duration_ms": 3.0}]))
    report = audit(gw, tmp_path)
    assert report.ok, report.failures


def test_a_vended_credential_grant_is_in_its_sessions_timeline(make_server: Any, tmp_path: Path,
                                                               moto_endpoint: str) -> None:
    server = gateway_server(make_server, tmp_path, moto_endpoint, connections={
        "default": {"role_arn": ROLE, "region": "us-east-1", "endpoint_url": moto_endpoint, "credentials": "vend"}})
    session_id = "vend-" + uuid.uuid4().hex[:12]
    r = httpx.post(f"{server.url}/api/v1/credentials", headers=server.headers("alice"), timeout=30,
                   json={"connection": "default", "session_id": session_id, "argv": ["s3api", "list-buckets"]})
    assert r.status_code == 200, r.text
    # the client uploads nothing: the auditor still finds the session and the STS key vended in it
    view = auditor_view(server, session_id)
    grant, = [e for e in view["observed"] if e["kind"] == "credential.grant"]
    assert grant["source"] == "server" and grant["assumed_role_arn"].startswith("arn:aws:sts::123456789012:assumed-role/agent/")
    assert grant["actions"] == ["s3:ListAllMyBuckets"] and grant["decision"]["effect"] == "allow"
    assert grant["sts_session_name"] and grant["expiration"]
    assert view["session"]["user"] == "alice" and view["commands"] == []
    listed = httpx.get(f"{server.url}/api/v1/sessions", headers=server.headers("audrey", groups=("auditors",))).json()
    assert [(x["id"], x["user"], x["commands"]) for x in listed["items"]] == [(session_id, "alice", 0)]
    mine = httpx.get(f"{server.url}/api/v1/sessions", params={"agent": "nobody"},
                     headers=server.headers("audrey", groups=("auditors",))).json()
    assert mine["items"] == []
    # and only to those who may see the session
    assert httpx.get(f"{server.url}/api/v1/sessions/{session_id}", headers=server.headers("mallory")).status_code == 404
