"""An agent's risky call through the real shim, decided on the CLI channel; real server, real
moto_server, real awscli. (Slack and terminal: test_approvals_e2e_channels.py, test_approvals_slack.py, test_approvals_terminal.py.)"""

from __future__ import annotations

import io
import json
import os
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from hoopcli.cli import main as hoop_main
from hoopcli.client import Client
from hoopcli.identity import tokens as auth
from hoopcli.paths import Layout
from hoopcli.shim import Environment
from hoopcli.shim import main as shim_main

sys.path.insert(0, str(Path(__file__).resolve().parent))
from approvals_helpers import approve_with_fresh_sign_in, local_users

ROLE = "arn:aws:iam::123456789012:role/hoop-agent"


class World:
    def __init__(self, server: Any, moto: str, tmp: Path) -> None:
        self.server, self.moto, self.tmp = server, moto, tmp
        self.homes: dict[str, Path] = {}

    def login(self, sub: str, groups: tuple[str, ...] = ()) -> Path:
        home = self.tmp / f"home-{sub}"
        token = self.server.token(sub, email=f"{sub}@example.com", groups=list(groups))
        meta = {"server": self.server.url, "issuer": self.server.url + "/idp", "client_id": "hoop-cli",
                "token_endpoint": self.server.url + "/idp/token"}
        auth.store_tokens(Layout(home), "file", meta, {"id_token": token})
        self.homes[sub] = home
        return home

    def aws(self, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
        """The shim in process, as alice's agent (no terminal: HOOP_NO_PROMPT=1)."""
        out, err = io.BytesIO(), io.BytesIO()
        environ = {"HOOP_HOME": str(self.homes["alice"]), "HOOP_SERVER": self.server.url,
                   "HOOP_NO_PROMPT": "1", "HOOP_AGENT": "test-agent", "HOME": str(self.tmp),
                   "PATH": os.pathsep.join([os.path.dirname(sys.executable), "/usr/bin", "/bin"]),
                   **(env or {})}
        e = Environment(environ=environ, stdin=io.TextIOWrapper(io.BytesIO(b"")),
                        stdout=io.TextIOWrapper(out, write_through=True),
                        stderr=io.TextIOWrapper(err, write_through=True), cwd=str(self.tmp),
                        argv0=str(self.tmp / "aws"))
        code = shim_main(list(args), env=e)
        return code, out.getvalue().decode(), err.getvalue().decode()

    def hoop(self, monkeypatch: Any, capsys: Any, who: str, *args: str) -> tuple[int, str, str]:
        """`hoop ...` as `who` (their own HOOP_HOME), through the real funnel."""
        capsys.readouterr()
        monkeypatch.setenv("HOOP_HOME", str(self.homes[who]))
        monkeypatch.setenv("HOOP_SERVER", self.server.url)
        code = hoop_main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    def client(self, who: str, groups: tuple[str, ...] = ()) -> Client:
        return Client(self.server.url, token=self.server.token(who, email=f"{who}@example.com", groups=list(groups)))

    def pending(self, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            items = self.client("alice").get("/api/v1/approvals", params={"status": "pending"}).json()
            if items:
                return items[0]
            time.sleep(0.05)
        raise AssertionError("no pending approval appeared")


@pytest.fixture
def world(make_server: Any, moto_endpoint: str, tmp_path: Path) -> World:
    server = make_server(connections={"default": {"credentials": "vend", "role_arn": ROLE, "region": "us-east-1",
                                                  "endpoint_url": moto_endpoint}},
                         users=local_users({"alice": ("developers",), "bob": ("approvers",)}))
    w = World(server, moto_endpoint, tmp_path)
    w.login("alice", ("developers",))
    w.login("bob", ("approvers",))
    return w


def in_thread(fn: Any, *args: Any, **kw: Any) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: box.setdefault("r", fn(*args, **kw)), daemon=True)
    thread.start()
    return thread, box


def s3(world: World) -> Any:
    return boto3.client("s3", endpoint_url=world.moto, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def test_write_is_held_until_the_requester_signs_in_again_then_runs(world: World, monkeypatch: Any,
                                                                    capsys: Any) -> None:
    """Attack 1 (issue 14): the agent, running as alice with her stored login, runs `hoop approvals
    approve` on its own request. Refused (the request stays pending); alice approves it in the
    console after signing in again, and the held command runs."""
    thread, box = in_thread(world.aws, "s3", "mb", "s3://appr-e2e-ok", env={"HOOP_APPROVAL_WAIT": "60"})
    item = world.pending()
    assert item["command"] == "aws s3 mb s3://appr-e2e-ok" and "self" in item["approvers"]
    assert item["presence"] == "fresh"
    code, out, _ = world.hoop(monkeypatch, capsys, "alice", "approvals", "list", "--json")
    listed = json.loads(out)
    assert code == 0 and [(i["id"], i["status"]) for i in listed] == [(item["id"], "pending")]
    code, out, err = world.hoop(monkeypatch, capsys, "alice", "approvals", "approve", item["id"], "--reason", "ok")
    assert (code, out) == (1, "")
    assert err.startswith("hoop: approving your own request needs proof that you are there") and \
        f"open {world.server.url}/approvals/{item['id']} in a browser" in err
    assert world.client("alice").get(f"/api/v1/approvals/{item['id']}").json()["status"] == "pending"
    approve_with_fresh_sign_in(world.server.url, "alice", item["id"])
    thread.join(60)
    code, _, err = box["r"]
    assert code == 0, err
    assert f"approval {item['id']} approved by alice@example.com via web" in err
    assert "appr-e2e-ok" in [b["Name"] for b in s3(world).list_buckets()["Buckets"]]
    shown = world.client("alice").get(f"/api/v1/approvals/{item['id']}").json()
    assert shown["consumed_at"] and [e["event"] for e in shown["events"]] == [
        "requested", "refused", "approved", "consumed"]
    assert "[presence: sign-in at " in shown["events"][2]["detail"]


def test_denied_on_the_cli_exits_76_with_who_and_why(world: World, monkeypatch: Any, capsys: Any) -> None:
    thread, box = in_thread(world.aws, "s3", "mb", "s3://appr-e2e-no", env={"HOOP_APPROVAL_WAIT": "60"})
    item = world.pending()
    code, out, err = world.hoop(monkeypatch, capsys, "alice", "approvals", "deny", item["id"],
                                "--reason", "use the staging account")
    assert code == 0 and out.startswith("denied "), err
    thread.join(60)
    code, _, err = box["r"]
    assert code == 76
    assert err.strip().splitlines()[-1] == (
        f"hoop: approval {item['id']} was rejected by alice@example.com via cli: use the staging account")
    assert "appr-e2e-no" not in [b["Name"] for b in s3(world).list_buckets()["Buckets"]]


def test_wait_ends_with_75_and_a_rerun_resumes_the_same_request(world: World, monkeypatch: Any, capsys: Any) -> None:
    code, _, err = world.aws("s3", "mb", "s3://appr-e2e-later", env={"HOOP_APPROVAL_WAIT": "1"})
    assert code == 75
    line = err.strip().splitlines()[-1]
    approval_id = re.search(r"approval (apr_[0-9a-f]{16}) is still pending", line).group(1)
    assert "you (self-approval: open the URL and sign in again)" in line and "rerun the same command to resume" in line
    assert f"{world.server.url}/approvals/{approval_id}" in line
    code, _, err = world.aws("s3", "mb", "s3://appr-e2e-later", env={"HOOP_APPROVAL_WAIT": "1"})
    assert code == 75 and approval_id in err.strip().splitlines()[-1]
    assert len(world.client("alice").get("/api/v1/approvals").json()) == 1     # no duplicate request
    approve_with_fresh_sign_in(world.server.url, "alice", approval_id)
    code, _, err = world.aws("s3", "mb", "s3://appr-e2e-later", env={"HOOP_APPROVAL_WAIT": "5"})
    assert code == 0, err
    assert "appr-e2e-later" in [b["Name"] for b in s3(world).list_buckets()["Buckets"]]


def test_justification_required_and_missing_exits_77(world: World) -> None:
    args = ("iam", "attach-role-policy", "--role-name", "r", "--policy-arn",
            "arn:aws:iam::aws:policy/AdministratorAccess")
    code, _, err = world.aws(*args, env={"HOOP_APPROVAL_WAIT": "1"})
    assert code == 77
    assert "requires a justification" in err and "HOOP_REASON" in err
    assert world.client("alice").get("/api/v1/approvals").json() == []
    # the server refuses it too, whatever the client's cache says
    r = world.client("alice").post("/api/v1/approvals", json={"argv": list(args), "connection": "default"},
                                   expect=(403,))
    assert r.status == 403 and "HOOP_REASON" in r.json()["detail"]


def test_approver_role_decides_permission_changes_requester_cannot(world: World, monkeypatch: Any, capsys: Any) -> None:
    args = ("iam", "attach-role-policy", "--role-name", "r", "--policy-arn",
            "arn:aws:iam::aws:policy/AdministratorAccess")
    thread, box = in_thread(world.aws, *args, env={"HOOP_APPROVAL_WAIT": "60", "HOOP_REASON": "ticket OPS-7"})
    item = world.pending()
    assert item["justification"] == "ticket OPS-7" and item["approvers"] == ["role:approver"]
    code, _, err = world.hoop(monkeypatch, capsys, "alice", "approvals", "approve", item["id"])
    assert code == 1 and "cannot approve their own" in err
    code, _, err = world.hoop(monkeypatch, capsys, "bob", "approvals", "approve", item["id"])
    assert code == 0, err
    thread.join(60)
    code, _, err = box["r"]
    assert "approved by bob@example.com via cli" in err
    assert code not in (75, 76, 77)   # it ran (moto answers for the missing role r)


def test_an_approval_never_covers_a_different_call(world: World, monkeypatch: Any, capsys: Any) -> None:
    alice = world.client("alice")
    item = alice.post("/api/v1/approvals", json={"argv": ["s3", "rb", "s3://bucket-a"], "connection": "default"}).json()
    approve_with_fresh_sign_in(world.server.url, "alice", item["id"])
    r = alice.post("/api/v1/credentials", expect=(409,), json={
        "connection": "default", "session_id": "s" * 32, "argv": ["s3", "rb", "s3://bucket-b"],
        "approval_id": item["id"]})
    assert r.status == 409 and "different command" in json.dumps(r.json())
    ok = alice.post("/api/v1/credentials", json={
        "connection": "default", "session_id": "s" * 32, "argv": ["s3", "rb", "s3://bucket-a"],
        "approval_id": item["id"]})
    assert ok.status == 200
    again = alice.post("/api/v1/credentials", expect=(409,), json={
        "connection": "default", "session_id": "s" * 32, "argv": ["s3", "rb", "s3://bucket-a"],
        "approval_id": item["id"]})
    assert again.status == 409 and "single-use" in json.dumps(again.json())


def test_api_bad_inputs(world: World) -> None:
    alice, bob = world.client("alice"), world.client("bob", ("approvers",))
    item = alice.post("/api/v1/approvals", json={"argv": ["s3", "rb", "s3://x"], "connection": "default"}).json()
    bad = [
        ("post", "/api/v1/approvals", {"argv": [], "connection": "default"}, 422),
        ("post", "/api/v1/approvals", {"argv": ["s3", "rb", "s3://x"], "connection": "nope"}, 404),
        ("post", "/api/v1/approvals", {"argv": ["s3", "rb", "s3://x"], "connection": "default", "x": 1}, 422),
        ("post", "/api/v1/approvals", {"argv": ["s3", "rb", "s3://x"], "connection": "default",
                                       "call_hash": "0" * 64}, 409),
        ("post", f"/api/v1/approvals/{item['id']}/decision", {"decision": "maybe"}, 422),
        ("post", f"/api/v1/approvals/{item['id']}/decision", {"decision": "approve", "channel": "slack"}, 422),
        ("post", f"/api/v1/approvals/{item['id']}/decision", {"decision": "approve", "call_hash": "f" * 64}, 409),
        ("post", "/api/v1/approvals/apr_00000000deadbeef/decision", {"decision": "approve"}, 404),
        ("get", "/api/v1/approvals/not-an-id?wait=1", None, 404),
        ("get", f"/api/v1/approvals/{item['id']}?wait=9999", None, 422),
    ]
    for method, path, body, status in bad:
        r = alice.request(method.upper(), path, json=body, expect=(status,))
        assert r.status == status, (path, body, r.status, r.body)
    assert alice.get(f"/api/v1/approvals/{item['id']}").json()["status"] == "pending"
    # a developer who is neither the requester nor an approver is refused; it stays pending
    dave = world.client("dave", ("developers",))
    assert dave.request("POST", f"/api/v1/approvals/{item['id']}/decision", json={"decision": "approve"},
                        expect=(403,)).status == 403
    del bob
    assert alice.get(f"/api/v1/approvals/{item['id']}").json()["status"] == "pending"
    # an unauthenticated caller learns nothing
    anon = Client(world.server.url)
    assert anon.request("GET", "/api/v1/approvals", expect=(401,)).status == 401
    # another developer cannot see alice's request
    carol = world.client("carol")
    assert carol.request("GET", f"/api/v1/approvals/{item['id']}", expect=(404,)).status == 404
    assert carol.get("/api/v1/approvals").json() == []


def test_long_poll_returns_when_decided(world: World) -> None:
    alice, bob = world.client("alice"), world.client("bob", ("approvers",))
    item = alice.post("/api/v1/approvals", json={"argv": ["s3", "rb", "s3://lp"], "connection": "default"}).json()
    thread, box = in_thread(lambda: alice.get(f"/api/v1/approvals/{item['id']}", params={"wait": 30},
                                              timeout=45).json())
    time.sleep(0.3)
    approve_with_fresh_sign_in(world.server.url, "alice", item["id"])
    thread.join(45)
    assert box["r"]["status"] == "approved"
    timed = alice.get(f"/api/v1/approvals/{item['id']}", params={"wait": 1}).json()
    assert timed["status"] == "approved"
    del bob
