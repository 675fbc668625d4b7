"""request_and_wait against a real server: progress output, rejection, resume map, not-required."""

from __future__ import annotations

import io
import os
import pty
import select
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from approvals_helpers import ROLE, review

from hoopcli.approval.request import Progress, ResumeMap, request_and_wait
from hoopcli.client import Client
from hoopcli.errors import ApprovalPending, ApprovalRejected, PolicyDenied
from hoopcli.parse import parse
from hoopcli.paths import Layout
from hoopcli.policy.model import Decision


@pytest.fixture
def srv(make_server: Any) -> Any:
    return make_server(connections={"default": {"credentials": "vend", "role_arn": ROLE, "region": "us-east-1"}})


def alice(srv: Any) -> Client:
    return Client(srv.url, token=srv.token("alice", email="alice@example.com", groups=["developers"]))


def test_plain_lines_on_pipes_and_rejection_reason(srv: Any, tmp_path: Path) -> None:
    stream = io.StringIO()
    bob = Client(srv.url, token=srv.token("bob", email="bob@example.com", groups=["approvers"]))

    def deny_when_pending() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            items = bob.get("/api/v1/approvals", params={"status": "pending"}).json()
            if items:
                bob.post(f"/api/v1/approvals/{items[0]['id']}/decision",
                         json={"decision": "deny", "reason": "not on a Friday"})
                return
            time.sleep(0.05)

    thread = threading.Thread(target=deny_when_pending, daemon=True)
    thread.start()
    inv = parse(["iam", "attach-role-policy", "--role-name", "r", "--policy-arn", "arn:aws:iam::aws:policy/ReadOnlyAccess"])
    with pytest.raises(ApprovalRejected) as info:
        request_and_wait(alice(srv), inv, review(approvers=("role:approver",)), None, connection="default",
                         reason="need it", wait_seconds=30, tty=None, stream=stream, layout=Layout(tmp_path))
    thread.join(30)
    assert info.value.line().endswith("was rejected by bob@example.com via cli: not on a Friday")
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("hoop: approval apr_") and "waiting up to 30s for users with the approver role" in lines[0]
    assert "\r" not in stream.getvalue() and all(line.startswith("hoop: ") for line in lines)
    assert ResumeMap(Layout(tmp_path), srv.url)._read() == {}       # final: forgotten


def test_spinner_with_url_on_a_tty() -> None:
    master, slave = pty.openpty()
    try:
        stream = os.fdopen(slave, "w", closefd=False)
        progress = Progress(stream)
        assert progress.tty
        progress.state("approval apr_0000000000000001 pending at http://hoop.example/approvals/apr_0000000000000001")
        seen = ""
        deadline = time.monotonic() + 20
        while "http://hoop.example/approvals/apr_0000000000000001" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                seen += os.read(master, 65536).decode()
        assert "\r\x1b[K" in seen and "http://hoop.example/approvals/apr_0000000000000001" in seen
        progress.done("approval apr_0000000000000001 approved by bob via slack")
        tail = ""
        while not tail.rstrip().endswith("via slack") and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                tail += os.read(master, 65536).decode()
        assert tail.rstrip().endswith("hoop: approval apr_0000000000000001 approved by bob via slack")
        assert "\r\x1b[K" in tail                       # the spinner line is cleared first
    finally:
        os.close(master)
        os.close(slave)


def test_pending_then_resume_the_same_request(srv: Any, tmp_path: Path) -> None:
    inv = parse(["s3", "rb", "s3://keep-me"])
    layout = Layout(tmp_path)
    kw = dict(connection="default", wait_seconds=1, tty=None, stream=io.StringIO(), layout=layout)
    with pytest.raises(ApprovalPending) as first:
        request_and_wait(alice(srv), inv, review(), None, **kw)
    approval_id = first.value.message.split()[1]
    assert ResumeMap(layout, srv.url).get(inv_hash(inv)) == approval_id
    with pytest.raises(ApprovalPending) as second:
        request_and_wait(alice(srv), inv, review(), None, **kw)
    assert second.value.message.split()[1] == approval_id
    # alice approves in the console after signing in again (the console's step-up, at the service)
    from approvals_helpers import principal

    from hoopcli.server.approvals import service as svc

    svc.decide(srv.db, principal("alice"), approval_id, approve=True, channel="web",
               presence=svc.Presence("sign-in", time.time()))
    approved = request_and_wait(alice(srv), inv, review(), None, **kw)
    assert (approved.id, approved.status) == (approval_id, "approved")
    assert approved.to_dict()["approver"] == "alice@example.com"


def inv_hash(inv: Any) -> str:
    from hoopcli.approval.canonical import hash_invocation

    return hash_invocation(inv, "default")


def test_missing_justification_is_refused_before_any_request(srv: Any, tmp_path: Path) -> None:
    inv = parse(["s3", "rb", "s3://x"])
    with pytest.raises(PolicyDenied) as info:
        request_and_wait(alice(srv), inv, review(justification=True), None, connection="default",
                         reason="  ", tty=None, layout=Layout(tmp_path))
    assert "HOOP_REASON" in info.value.line() and info.value.exit_status == 77
    assert alice(srv).get("/api/v1/approvals").json() == []


def test_server_policy_allowing_the_call_needs_no_approval(srv: Any, tmp_path: Path) -> None:
    inv = parse(["s3api", "list-buckets"])      # the server's policy allows reads
    out = request_and_wait(alice(srv), inv, Decision("review", "stale-cache", None), None,
                           connection="default", tty=None, layout=Layout(tmp_path))
    assert out.status == "not_required" and out.to_dict() is None
