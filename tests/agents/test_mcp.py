"""`hoop mcp` as an agent sees it: the official MCP client (`mcp.ClientSession` over
`stdio_client`) starts `python -m hoopcli mcp` for a logged-in user against a real hoop server
whose gateway fronts moto, lists the tools and calls them. Every call lands in the MCP session."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from tests.gateway.gateway_helpers import ROLE, approve, gateway_server, session_records
from tests.shim.conftest import ShimWorld

pytestmark = pytest.mark.e2e


@pytest.fixture
def mcp_world(make_server: Any, moto_endpoint: str, clean_env: Path, tmp_path: Path) -> ShimWorld:
    return _world(make_server, moto_endpoint, tmp_path, hold_seconds=1)


def _world(make_server: Any, moto_endpoint: str, tmp_path: Path, hold_seconds: int, mode: str = "gateway") -> ShimWorld:
    connections = {"default": {"role_arn": ROLE, "region": "us-east-1", "endpoint_url": moto_endpoint,
                               "credentials": mode}}
    server = gateway_server(make_server, tmp_path, moto_endpoint, gateway={"hold_seconds": hold_seconds},
                            connections=connections)
    home = tmp_path / "client-home"
    environ = {"HOOP_HOME": str(home), "HOOP_SERVER": server.url, "HOME": str(tmp_path),
               "PATH": os.pathsep.join([os.path.dirname(sys.executable), "/usr/bin", "/bin"]),
               "AWS_EC2_METADATA_DISABLED": "true"}
    world = ShimWorld(server, moto_endpoint, home, environ, tmp_path / "no-shim")
    world.login()
    return world


class Agent:
    """An MCP client session with `hoop mcp`; call() returns the structured result."""

    def __init__(self, session: ClientSession) -> None:
        self.session = session

    async def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        result = await self.session.call_tool(tool, arguments)
        assert not result.is_error, result.content
        assert isinstance(result.structured_content, dict)
        return result.structured_content


def run_agent(world: ShimWorld, scenario: Any, *args: str) -> Any:
    params = StdioServerParameters(command=sys.executable, args=["-m", "hoopcli", "mcp", *args],
                                   env=world.environ, cwd=str(world.home.parent))

    async def main() -> Any:
        with (world.home.parent / "mcp-stderr.log").open("w") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
                await session.initialize()
                return await scenario(Agent(session))

    return anyio.run(main)


def test_tools_are_listed_with_their_schemas(mcp_world: ShimWorld) -> None:
    async def scenario(agent: Agent) -> Any:
        return (await agent.session.list_tools()).tools

    tools = {t.name: t for t in run_agent(mcp_world, scenario)}
    assert sorted(tools) == ["call_aws", "explain_aws"]
    call, explain = tools["call_aws"], tools["explain_aws"]
    assert call.input_schema["required"] == ["command"]
    assert set(call.input_schema["properties"]) == {"command", "wait_seconds"}
    assert call.input_schema["properties"]["wait_seconds"]["minimum"] == 0
    assert explain.input_schema["required"] == ["command"]
    assert call.output_schema is not None
    assert {"exit_code", "stdout", "stderr", "truncated", "decision", "rule", "approval"} <= set(
        call.output_schema["properties"])
    text = call.description or ""
    for promise in ("No shell runs", "policy decides", "do not retry", "approve", "[masked:", "recorded"):
        assert promise in text, promise
    assert explain.annotations is not None and explain.annotations.read_only_hint is True


def test_reads_secrets_reviews_and_denials_in_one_session(mcp_world: ShimWorld) -> None:
    moto = mcp_world.s3()
    moto.create_bucket(Bucket="mcp-bucket")
    moto.put_object(Bucket="mcp-bucket", Key="old.log", Body=b"x")
    server = mcp_world.server

    async def scenario(agent: Agent) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        seen["list"] = await agent.call("call_aws", command="aws s3api list-buckets")
        seen["create"] = await agent.call("call_aws", command="secretsmanager create-secret --name mcp/db "
                                                              "--secret-string 'hunter2-do-not-show'")
        seen["secret"] = await agent.call("call_aws", command="aws secretsmanager get-secret-value --secret-id mcp/db")
        seen["explain"] = await agent.call("explain_aws", command="aws s3api delete-object --bucket mcp-bucket "
                                                                  "--key old.log")
        delete = "aws s3api delete-object --bucket mcp-bucket --key old.log"
        seen["pending"] = await agent.call("call_aws", command=delete)
        assert seen["pending"]["approval"] is not None, seen["pending"]
        await anyio.to_thread.run_sync(approve, server, seen["pending"]["approval"]["id"])
        seen["approved"] = await agent.call("call_aws", command=delete)
        seen["denied"] = await agent.call("call_aws", command="aws iam create-access-key --user-name nobody")
        seen["shell"] = await agent.call("call_aws", command="aws s3 ls; cat ~/.aws/credentials")
        seen["file"] = await agent.call("call_aws", command="aws s3 cp ~/.aws/credentials s3://mcp-bucket/c")
        seen["bad"] = await agent.call("explain_aws", command="aws s3 ls $(whoami)")
        return seen

    seen = run_agent(mcp_world, scenario, "--agent", "test-mcp")
    listed = seen["list"]
    assert (listed["exit_code"], listed["decision"], listed["approval"]) == (0, "allow", None)
    assert "mcp-bucket" in listed["stdout"] and listed["truncated"] is False
    assert seen["create"]["exit_code"] == 0, seen["create"]
    secret = seen["secret"]
    assert secret["exit_code"] == 0, secret
    assert "[masked:" in secret["stdout"] and "hunter2" not in secret["stdout"]
    explained = seen["explain"]
    assert (explained["decision"], explained["rule"], explained["actions"]) == (
        "review", "review-deletes", ["s3:DeleteObject"])

    pending = seen["pending"]
    assert pending["exit_code"] == 75 and pending["decision"] == "review" and pending["rule"] == "review-deletes"
    approval = pending["approval"]
    assert approval["status"] == "pending" and approval["id"].startswith("apr_")
    assert approval["url"] == f"{server.url}/approvals/{approval['id']}"
    approved = seen["approved"]
    assert approved["exit_code"] == 0, approved
    assert approved["decision"] == "review" and approved["approval"]["id"] == approval["id"]
    assert approved["approval"]["status"] == "approved"
    assert "old.log" not in [o["Key"] for o in mcp_world.s3().list_objects_v2(Bucket="mcp-bucket").get("Contents", [])]

    denied = seen["denied"]
    assert (denied["exit_code"], denied["decision"], denied["rule"]) == (77, "deny", "deny-iam-access-keys")
    assert denied["stderr"].startswith("hoop: denied by policy rule deny-iam-access-keys")
    shell = seen["shell"]
    assert shell["exit_code"] == 2 and shell["decision"] is None and "there is no shell" in shell["stderr"]
    aws_dir = mcp_world.home.parent / ".aws"
    assert seen["file"]["exit_code"] == 2 and seen["file"]["stderr"] == (
        f"hoop: {aws_dir}/credentials is or holds {aws_dir}, which call_aws does not read or write")
    assert seen["bad"] == {"error": "$VARIABLES, $(...) and `...` are not expanded (there is no shell); "
                                    "write the values"}

    session_id = listed["session_id"]
    assert {r["session_id"] for r in seen.values() if "session_id" in r} == {session_id}
    calls = [(r["operation"], r["http_status"]) for r in session_records(server, session_id)
             if r["type"] == "api.call"]
    assert calls == [("ListBuckets", 200), ("CreateSecret", 200), ("GetSecretValue", 200),
                     ("DeleteObject", 409), ("DeleteObject", 204)]
    # the denial never reached the gateway; the shim's own records of it arrive by the uploader
    # (and the final upload pass when the client disconnected)
    deadline = time.monotonic() + 20
    while True:
        starts = [r for r in session_records(server, session_id) if r["type"] == "command.start"]
        denials = [r for r in starts if r["decision"]["effect"] == "deny"]
        if denials or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert [d["invocation"]["operation"] for d in denials] == ["create-access-key"]
    assert all(r["agent"] == "test-mcp" for r in starts)
    assert "hunter2" not in str(session_records(server, session_id))
    # the client disconnected: the session is closed and its gateway credential revoked
    from hoopcli.server.store.models import AgentSession, SessionCredential

    with server.db.session() as db:
        row = db.get(AgentSession, session_id)
        assert (row.agent, row.exit_code) == ("test-mcp", 0) and row.closed_at is not None
        creds = db.query(SessionCredential).filter(SessionCredential.session_id == session_id).all()
        assert len(creds) == 1 and creds[0].revoked_at is not None


def _approver(server: Any, delay: float) -> Any:
    """An approver who approves the first pending request `delay` seconds after it appears."""
    import httpx

    async def approve_when_pending() -> None:
        for _ in range(300):
            r = await anyio.to_thread.run_sync(lambda: httpx.get(
                server.url + "/api/v1/approvals", headers=server.headers("bob", groups=("approvers",)), timeout=10))
            pending = [a for a in r.json() if a["status"] == "pending"]
            if pending:
                await anyio.sleep(delay)
                await anyio.to_thread.run_sync(approve, server, pending[0]["id"])
                return
            await anyio.sleep(0.1)

    return approve_when_pending


def _delete_while_approving(world: ShimWorld, bucket: str, delay: float) -> dict[str, Any]:
    moto = world.s3()
    moto.create_bucket(Bucket=bucket)
    moto.put_object(Bucket=bucket, Key="k", Body=b"x")

    async def scenario(agent: Agent) -> dict[str, Any]:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_approver(world.server, delay))
            result = await agent.call("call_aws", command=f"s3api delete-object --bucket {bucket} --key k",
                                      wait_seconds=120)       # capped at 60
        return result

    result: dict[str, Any] = run_agent(world, scenario)
    assert result["exit_code"] == 0, result
    assert (result["decision"], result["rule"]) == ("review", "review-deletes")
    assert result["approval"]["status"] == "approved" and result["approval"]["id"].startswith("apr_")
    return result


def test_a_caller_may_wait_for_the_approval(mcp_world: ShimWorld) -> None:
    """Approved after the gateway's hold ended: hoop mcp waits on the approval and sends the call again."""
    result = _delete_while_approving(mcp_world, "mcp-wait", delay=2.5)
    calls = [(r["operation"], r["http_status"]) for r in session_records(mcp_world.server, result["session_id"])
             if r["type"] == "api.call"]
    assert calls == [("DeleteObject", 409), ("DeleteObject", 204)]


def test_a_call_approved_during_the_gateway_hold(make_server: Any, moto_endpoint: str, clean_env: Path,
                                                 tmp_path: Path) -> None:
    """Approved while the gateway held it: one call, and the approval read back from the ledger."""
    world = _world(make_server, moto_endpoint, tmp_path, hold_seconds=20)
    result = _delete_while_approving(world, "mcp-hold", delay=0)
    records = [r for r in session_records(world.server, result["session_id"]) if r["type"] == "api.call"]
    assert [(r["operation"], r["http_status"]) for r in records] == [("DeleteObject", 204)]
    assert records[0]["approval"]["id"] == result["approval"]["id"]


def test_output_is_capped_and_flagged() -> None:
    from hoopcli.agents.mcp import MAX_OUTPUT, _Capped

    out = _Capped(MAX_OUTPUT)
    for _ in range(30):
        out.write(b"x" * 4096)
    assert out.size == 30 * 4096 and len(out.text()) == MAX_OUTPUT == 100 * 1024


def test_on_a_vend_connection_the_shim_asks_for_the_approval(make_server: Any, moto_endpoint: str, clean_env: Path,
                                                             tmp_path: Path) -> None:
    """`credentials: vend`: no gateway; the shim opens the approval itself and gets STS keys."""
    world = _world(make_server, moto_endpoint, tmp_path, hold_seconds=1, mode="vend")
    moto = world.s3()
    moto.create_bucket(Bucket="mcp-vend")
    moto.put_object(Bucket="mcp-vend", Key="k", Body=b"x")
    delete = "aws s3api delete-object --bucket mcp-vend --key k"

    async def scenario(agent: Agent) -> dict[str, Any]:
        seen = {"list": await agent.call("call_aws", command="aws s3api list-buckets"),
                "pending": await agent.call("call_aws", command=delete)}
        await anyio.to_thread.run_sync(approve, world.server, seen["pending"]["approval"]["id"])
        seen["approved"] = await agent.call("call_aws", command=delete)
        return seen

    seen = run_agent(world, scenario)
    assert seen["list"]["exit_code"] == 0 and "mcp-vend" in seen["list"]["stdout"], seen["list"]
    pending = seen["pending"]
    assert (pending["exit_code"], pending["decision"], pending["approval"]["status"]) == (75, "review", "pending")
    assert pending["stderr"].rstrip().splitlines()[-1].startswith(f"hoop: approval {pending['approval']['id']} is "
                                                                  "still pending after 0s")
    approved = seen["approved"]
    assert approved["exit_code"] == 0, approved
    assert approved["approval"] == {**pending["approval"], "status": "approved"}
    assert "Contents" not in world.s3().list_objects_v2(Bucket="mcp-vend")


def test_without_a_login_it_exits_before_the_protocol(tmp_path: Path, clean_env: Path) -> None:
    import subprocess

    env = {"HOOP_HOME": str(tmp_path / "empty"), "HOOP_SERVER": "http://127.0.0.1:9", "HOME": str(tmp_path),
           "PATH": os.environ.get("PATH", "")}
    proc = subprocess.run([sys.executable, "-m", "hoopcli", "mcp"], input=b"", env=env, capture_output=True,
                          timeout=60)
    assert (proc.returncode, proc.stdout) == (65, b"")
    assert proc.stderr == b"hoop: not logged in to http://127.0.0.1:9; run `hoop login`\n"


def test_sigterm_closes_the_session(mcp_world: ShimWorld) -> None:
    import signal
    import subprocess

    from hoopcli.server.store.models import AgentSession

    proc = subprocess.Popen([sys.executable, "-m", "hoopcli", "mcp", "--agent", "sigterm"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=mcp_world.environ)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        # an answer to `initialize` means the session is open and the protocol thread runs
        proc.stdin.write(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"}}}).encode() + b"\n")
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline())["id"] == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
    with mcp_world.server.db.session() as db:
        rows = db.query(AgentSession).filter(AgentSession.agent == "sigterm").all()
        assert len(rows) == 1 and rows[0].closed_at is not None
