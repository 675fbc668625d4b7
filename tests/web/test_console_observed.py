"""The console's session page shows what the server observed itself (session start and end, every
STS key vended in vend mode, approval requests and decisions) in the timeline, by time among the
client's commands, marked server-observed; a session whose client uploaded nothing still shows
its grants. Headless Chromium against a real server (moto for STS)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import requests
from console_kit import sign_in

from hoopcli.record import shapes as recorder

XSS = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'


def bob(server: Any) -> dict[str, str]:
    return server.headers("bob", email="bob@example.test", groups=["developers"])


def vend(server: Any, session_id: str, argv: list[str], approval: str | None = None) -> None:
    r = requests.post(server.url + "/api/v1/credentials", headers=bob(server), timeout=30,
                      json={"connection": "default", "session_id": session_id, "argv": argv, "approval_id": approval})
    assert r.status_code == 200, r.text


def test_the_timeline_shows_what_the_server_observed(console: Any, new_page: Any) -> None:
    r = requests.post(console.url + "/api/v1/sessions", headers=bob(console), timeout=30,
                      json={"agent": "claude", "host": "laptop", "cwd": "/work", "connection": "default"})
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    vend(console, sid, ["s3api", "list-buckets"])
    time.sleep(1.1)
    cid = uuid.uuid4().hex
    recs = [recorder.record_start(command_id=cid, session_id=sid, seq=1, user="bob@example.test", agent="claude",
                                  host="laptop", cwd="/work", connection="default", argv=["s3api", "list-buckets"],
                                  invocation=None, decision={"effect": "allow", "rule": "read-only", "reason": None}),
            recorder.record_result(command_id=cid, session_id=sid, seq=1, exit_code=0, api_calls=[])]
    r = requests.post(console.url + "/api/v1/records", json={"records": recs}, headers=bob(console), timeout=30)
    assert r.status_code == 200 and not r.json()["rejected"], r.text
    time.sleep(1.1)
    r = requests.post(console.url + "/api/v1/approvals", headers=bob(console), timeout=30,
                      json={"argv": ["s3", "mb", "s3://observed"], "connection": "default", "session_id": sid,
                            "reason": XSS})
    assert r.status_code == 200, r.text
    approval = r.json()["id"]
    r = requests.post(console.url + f"/api/v1/approvals/{approval}/decision", json={"decision": "approve"},
                      headers=console.headers("alice", email="alice@example.test", groups=["approvers"]), timeout=30)
    assert r.status_code == 200, r.text
    vend(console, sid, ["s3", "mb", "s3://observed"], approval)
    assert requests.post(console.url + f"/api/v1/sessions/{sid}/close", headers=bob(console), json={"exit_code": 0},
                         timeout=30).status_code == 200

    page = new_page()
    sign_in(page, console, "carol", f"/sessions/{sid}")
    items = page.locator(".timeline > li")
    kinds = [items.nth(i).get_attribute("data-kind") or "command" for i in range(items.count())]
    assert kinds == ["session.start", "credential.grant", "command", "approval.request", "approval.decision",
                     "credential.grant", "session.end"]
    for i, kind in enumerate(kinds):
        badge = items.nth(i).locator("h3 .badge").first.inner_text()
        assert badge == ("client" if kind == "command" else "server"), (kind, badge)
    grants = page.locator(".timeline > li[data-kind='credential.grant']")
    first, second = grants.nth(0).inner_text(), grants.nth(1).inner_text()
    assert "STS credentials vended to bob" in first and "s3:ListAllMyBuckets" in first
    assert "arn:aws:sts::123456789012:assumed-role/agent/" in first and "observed by the server" in first
    assert "s3:CreateBucket" in second and approval in second and "review" in second
    decision = page.locator(".timeline > li[data-kind='approval.decision']").inner_text()
    assert "approved" in decision and "alice@example.test" in decision and "via cli" in decision
    request = page.locator(".timeline > li[data-kind='approval.request']").inner_text()
    assert XSS in request and page.evaluate("window.__pwned") is None     # the agent's text, as text
    assert "session closed, exit 0" in page.locator(".timeline > li[data-kind='session.end']").inner_text()


def test_a_session_whose_client_sent_nothing_still_shows_its_grants(console: Any, new_page: Any) -> None:
    sid = "silent-" + uuid.uuid4().hex[:10]
    vend(console, sid, ["s3api", "list-buckets"])
    vend(console, sid, ["s3api", "list-buckets"])
    page = new_page()
    sign_in(page, console, "carol", f"/sessions/{sid}")
    items = page.locator(".timeline > li")
    assert [items.nth(i).get_attribute("data-kind") for i in range(items.count())] == [
        "session.start", "credential.grant", "credential.grant"]
    # bob sees his own; another developer sees nothing of it
    other = new_page()
    sign_in(other, console, "alice", "/sessions")
    other.goto(console.url + f"/sessions/{sid}")
    assert "No such session" in other.locator("main").inner_text()
