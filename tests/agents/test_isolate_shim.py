"""hoop's shim inside `hoop run --isolate`: the user's HOOP_HOME (and their login) is hidden, so the
`aws` first on the agent's PATH is hoop's shim running token-free. It sends each call to the
gateway with the session credential from the environment (the server decides, holds, masks and
records), keeps hoop's exit codes (77 denied, 75 pending, where the bare AWS CLI says 254), and
writes no client records. Runs `hoop run --isolate` for real (bubblewrap or unshare) against a
hoop server with its gateway in front of moto."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hoopcli.identity import tokens as auth
from tests.gateway.gateway_helpers import gateway_server, session_records
from tests.shim.conftest import ShimWorld, isolate_world

pytestmark = pytest.mark.e2e
TOOLS = [t for t in ("bwrap", "unshare") if shutil.which(t)]

AGENT = r"""
if cat "$USER_TOKEN" >/dev/null 2>&1; then echo "READ token"; else echo "HIDDEN token"; fi
head -3 "$(command -v aws)" | grep -q hoopcli-shim && echo "AWS IS HOOP'S SHIM"
aws s3api list-objects-v2 --bucket isolated-reads --query 'Contents[].Key' --output text; echo "read=$?"
aws iam create-access-key --user-name ci 2>/dev/null; echo "denied=$?"
aws s3 rm s3://isolated-reads/report.csv 2>/dev/null; echo "reviewed=$?"
echo "SID=$HOOP_SESSION_ID"
"""


@pytest.fixture
def world(make_server: Any, moto_endpoint: str, clean_env: Path, tmp_path: Path) -> ShimWorld:
    server = gateway_server(make_server, tmp_path, moto_endpoint, gateway={"hold_seconds": 1})
    w = isolate_world(server, moto_endpoint, tmp_path)
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing")
    s3.create_bucket(Bucket="isolated-reads")
    s3.put_object(Bucket="isolated-reads", Key="report.csv", Body=b"a,b\n")
    return w


@pytest.mark.parametrize("tool", TOOLS)
def test_the_shim_works_token_free_inside_isolate(world: ShimWorld, tool: str) -> None:
    token = auth.session_file(world.layout)
    assert "id_token" in token.read_text()
    spool_before = sorted(p.name for p in world.home.rglob("*"))
    proc = subprocess.run([sys.executable, "-m", "hoopcli", "run", "--isolate", "--agent", "boxed", "--",
                           "sh", "-c", AGENT], env={**world.environ, "HOOP_ISOLATE_TOOL": tool,
                                                    "USER_TOKEN": str(token)},
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "HIDDEN token" in lines and "READ token" not in lines      # the user's login is out of reach
    assert "AWS IS HOOP'S SHIM" in lines
    # an allowed read goes through the gateway; a denial and a held review keep hoop's exit codes
    assert "report.csv" in lines and "read=0" in lines, proc.stdout + proc.stderr
    assert "denied=77" in lines and "reviewed=75" in lines, proc.stdout + proc.stderr
    sid = lines[-1].split("=", 1)[1]
    records = session_records(world.server, sid)
    # the trail is the gateway's (server-observed); the token-free shim uploaded nothing
    assert {r["type"] for r in records} == {"api.call"}
    ops = [(r["operation"], (r.get("decision") or {}).get("effect"), r["agent"]) for r in records]
    assert ("ListObjectsV2", "allow", "boxed") in ops and ("CreateAccessKey", "deny", "boxed") in ops
    assert any(op == "DeleteObject" and effect == "review" for op, effect, _ in ops), ops
    # nothing was written into the user's HOOP_HOME from inside, and the token is where it was
    assert sorted(p.name for p in world.home.rglob("*")) == spool_before
    assert "id_token" in token.read_text()


def test_isolated_without_a_session_credential_says_so(tmp_path: Path) -> None:
    """HOOP_ISOLATED=1 and no gateway credential (the agent dropped it): one hoop line, exit 65,
    nothing run, no attempt to find a login."""
    from hoopcli.shim import Environment, main

    out, err = io.BytesIO(), io.BytesIO()
    env = Environment({"HOOP_HOME": str(tmp_path / "agent-home"), "HOOP_ISOLATED": "1", "PATH": "/usr/bin:/bin",
                       "HOOP_SERVER": "http://127.0.0.1:9"}, io.TextIOWrapper(io.BytesIO()),
                      io.TextIOWrapper(out, write_through=True), io.TextIOWrapper(err, write_through=True),
                      str(tmp_path))
    code = main(["s3", "ls"], env=env)
    assert code == 65 and out.getvalue() == b""
    assert err.getvalue().decode() == (
        "hoop: inside `hoop run --isolate` your hoop login is hidden, and this environment has no gateway session "
        "credential (HOOP_GATEWAY_URL, AWS_ACCESS_KEY_ID=HOOP..., AWS_SECRET_ACCESS_KEY) to send the call with; run "
        "the agent with `hoop run --isolate` on a connection with `credentials: gateway`\n")
