"""A held session on the vend path (POST /credentials, what the shim asks on a `vend` connection):
every command needs an approval asked under the hold's rule; one granted before the hold does
not count; a release ends it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from detections_helpers import AUDITOR, Script, findings, settle

ROLE = "arn:aws:iam::123456789012:role/agent"
POLICY = """\
version: 1
defaults: {list: allow, read: allow, write: review, tagging: review, permissions: review, unknown: review,
           review: {approvers: ["role:approver"], channels: [cli, web, slack]}}
"""


def _vend(srv: Any, sid: str, argv: list[str], approval: str | None = None) -> httpx.Response:
    body: dict[str, Any] = {"connection": "default", "session_id": sid, "argv": argv}
    if approval:
        body["approval_id"] = approval
    return httpx.post(srv.url + "/api/v1/credentials", json=body, headers=srv.headers("alice", email="alice@example.com"),
                      timeout=30)


def _ask(srv: Any, sid: str, argv: list[str]) -> dict[str, Any]:
    r = httpx.post(srv.url + "/api/v1/approvals", json={"argv": argv, "connection": "default", "session_id": sid},
                   headers=srv.headers("alice", email="alice@example.com"), timeout=10)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _approve(srv: Any, approval: str) -> None:
    r = httpx.post(f"{srv.url}/api/v1/approvals/{approval}/decision", json={"decision": "approve"},
                   headers=srv.headers("bob", groups=("approvers",)), timeout=10)
    assert r.status_code == 200, r.text


def test_vend_path_in_a_held_session(make_server: Any, moto_endpoint: str, tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(POLICY)
    srv = make_server(roles=AUDITOR, policy_file=str(policy), connections={
        "default": {"credentials": "vend", "role_arn": ROLE, "endpoint_url": moto_endpoint}})
    sid = "held-vend-session"
    assert _vend(srv, sid, ["s3api", "list-buckets"]).status_code == 200
    write = ["s3api", "create-bucket", "--bucket", "b1"]
    before = _ask(srv, sid, write)
    assert before["rule"] == "defaults.write"
    _approve(srv, before["id"])

    s = Script(srv, session=sid)
    s.upload(*s.command(["cloudtrail", "stop-logging", "--name", "org-trail"], effect="deny"))
    settle(srv)
    assert [f["rule"] for f in findings(srv, sid)] == ["defence-evasion"]

    held = _vend(srv, sid, ["s3api", "list-buckets"])
    assert held.status_code == 409, held.text
    decision = held.json()["decision"]
    assert decision["effect"] == "review" and decision["rule"] == "detection:defence-evasion"
    assert decision["reason"].startswith("hoop: session held by finding fnd_")
    assert decision["review"]["approvers"] == ["role:approver"]

    old = _vend(srv, sid, write, before["id"])           # approved before the hold: not a release
    assert old.status_code == 409 and "under detection:defence-evasion" in old.text
    asked = _ask(srv, sid, write)
    assert asked["rule"] == "detection:defence-evasion" and asked["id"] != before["id"]
    _approve(srv, asked["id"])
    assert _vend(srv, sid, write, asked["id"]).status_code == 200

    r = httpx.post(f"{srv.url}/api/v1/sessions/{sid}/release", json={},
                   headers=srv.headers("bob", groups=("approvers",)), timeout=10)
    assert r.status_code == 200, r.text
    assert _vend(srv, sid, ["s3api", "list-buckets"]).status_code == 200
