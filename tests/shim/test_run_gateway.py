"""`hoop run` and `hoop env` on a gateway connection: the agent gets a session credential and the
gateway's endpoint, never an STS key; a boto3 script and the `aws` shim both go through the
gateway, and every call lands in the session's ledger as a server-observed record."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.gateway_helpers import gateway_server, session_records
from tests.shim.conftest import ShimWorld, make_world

pytestmark = pytest.mark.e2e

SCRIPT = textwrap.dedent("""
    import json, os, boto3
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="run-gw")
    sm = boto3.client("secretsmanager")
    sm.create_secret(Name="run/token", SecretString="s3cr3t-agent-must-not-see")
    print(json.dumps({"buckets": [b["Name"] for b in s3.list_buckets()["Buckets"]],
                      "secret": sm.get_secret_value(SecretId="run/token")["SecretString"],
                      "env": {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "HOOP_"))}}))
""")


@pytest.fixture
def gw_world(make_server: Any, moto_endpoint: str, clean_env: Path, tmp_path: Path) -> ShimWorld:
    server = gateway_server(make_server, tmp_path, moto_endpoint, gateway={"hold_seconds": 2})
    return make_world(server, moto_endpoint, tmp_path, AWS_EC2_METADATA_DISABLED="true")


def _hoop(world: ShimWorld, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**world.environ, "AWS_ACCESS_KEY_ID": "AKIAAMBIENTAMBIENT00", "AWS_SECRET_ACCESS_KEY": "ambient",
            **env}
    return subprocess.run([sys.executable, "-m", "hoopcli", *args], env=full, capture_output=True, text=True,
                          timeout=180)


def test_an_sdk_script_under_hoop_run_goes_through_the_gateway(gw_world: ShimWorld, tmp_path: Path) -> None:
    script = tmp_path / "agent.py"
    script.write_text(SCRIPT)
    proc = _hoop(gw_world, "run", "--agent", "sdk-script", "--", sys.executable, str(script))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    env = out["env"]
    assert env["AWS_ENDPOINT_URL"] == gw_world.server.gateway_url
    assert env["AWS_ACCESS_KEY_ID"].startswith("HOOP") and "AWS_SESSION_TOKEN" not in env
    assert "ambient" not in json.dumps(env)
    assert "run-gw" in out["buckets"]
    assert out["secret"].startswith("[masked:") and "s3cr3t" not in out["secret"]
    ops = [(r["operation"], r["source"]) for r in session_records(gw_world.server, env["HOOP_SESSION_ID"])
           if r["type"] == "api.call"]
    assert ops == [("CreateBucket", "gateway"), ("CreateSecret", "gateway"), ("ListBuckets", "gateway"),
                   ("GetSecretValue", "gateway")]
    # the session ended with the agent: its credential no longer works
    import boto3
    from botocore.exceptions import ClientError

    s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                      aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    import time

    time.sleep(1.1)
    with pytest.raises(ClientError) as exc:
        s3.list_buckets()
    assert exc.value.response["Error"]["Code"] == "InvalidClientTokenId"


def test_the_shim_under_hoop_run_uses_the_gateway(gw_world: ShimWorld) -> None:
    import boto3

    boto3.client("s3", endpoint_url=gw_world.moto, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket="shim-gw")
    proc = _hoop(gw_world, "run", "--agent", "shim", "--", "sh", "-c", "aws s3api list-buckets && echo SID=$HOOP_SESSION_ID")
    assert proc.returncode == 0, proc.stderr
    assert "shim-gw" in proc.stdout
    sid = proc.stdout.strip().splitlines()[-1].split("=", 1)[1]
    calls = [r for r in session_records(gw_world.server, sid) if r["type"] == "api.call"]
    assert [(c["service"], c["operation"]) for c in calls] == [("s3", "ListBuckets")]
    # no STS key was vended for it
    from hoopcli.server.store.models import CredentialGrant

    with gw_world.server.db.session() as db:
        assert db.query(CredentialGrant).count() == 0


def test_hoop_env_prints_a_working_gateway_environment(gw_world: ShimWorld) -> None:
    proc = _hoop(gw_world, "env", "--json", "--ttl", "10m")
    assert proc.returncode == 0, proc.stderr
    values = json.loads(proc.stdout)
    assert values["AWS_ENDPOINT_URL"] == gw_world.server.gateway_url
    assert values["AWS_ACCESS_KEY_ID"].startswith("HOOP")
    import boto3

    s3 = boto3.client("s3", endpoint_url=values["AWS_ENDPOINT_URL"], region_name=values["AWS_REGION"],
                      aws_access_key_id=values["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=values["AWS_SECRET_ACCESS_KEY"])
    s3.list_buckets()
    shell = _hoop(gw_world, "env")
    assert shell.returncode == 0 and "export AWS_ENDPOINT_URL=" in shell.stdout
    bad = _hoop(gw_world, "env", "--ttl", "5s")
    assert bad.returncode != 0 and "--ttl" in bad.stderr


def test_hoop_sessions_end_revokes_the_credential(gw_world: ShimWorld) -> None:
    values = json.loads(_hoop(gw_world, "env", "--json").stdout)
    proc = _hoop(gw_world, "sessions", "end", values["HOOP_SESSION_ID"])
    assert proc.returncode == 0, proc.stderr
    assert "1 credential(s) revoked" in proc.stdout
    again = _hoop(gw_world, "sessions", "end", values["HOOP_SESSION_ID"])
    assert again.returncode != 0 and again.stderr.startswith("hoop: ")


def test_the_shim_alone_on_a_gateway_connection_gets_a_session_credential(gw_world: ShimWorld) -> None:
    """No `hoop run`: the shim's own session is claimed on the server and given one session
    credential, cached; no STS key is vended; reviewed and denied calls keep the shim's codes."""
    import boto3

    from hoopcli.server.store.models import CredentialGrant, SessionCredential

    moto = boto3.client("s3", endpoint_url=gw_world.moto, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing")
    moto.create_bucket(Bucket="alone-gw")
    moto.put_object(Bucket="alone-gw", Key="k", Body=b"x")
    env = {"HOOP_APPROVAL_WAIT": "1"}
    first = gw_world.exec("s3api", "list-buckets", env=env)
    assert first.code == 0, first.stderr
    assert "alone-gw" in first.stdout
    assert gw_world.exec("s3api", "list-objects-v2", "--bucket", "alone-gw", env=env).code == 0
    with gw_world.server.db.session() as db:
        assert db.query(CredentialGrant).count() == 0
        creds = db.query(SessionCredential).all()
    assert len(creds) == 1
    pending = gw_world.exec("s3api", "delete-object", "--bucket", "alone-gw", "--key", "k", env=env)
    assert pending.code == 75, pending.stderr
    assert "HoopApprovalPending" in pending.stderr and "apr_" in pending.stderr
    denied = gw_world.exec("iam", "create-access-key", "--user-name", "nobody", env=env)
    assert denied.code == 77
    calls = [r for r in session_records(gw_world.server, creds[0].session_id) if r["type"] == "api.call"]
    assert [c["operation"] for c in calls] == ["ListBuckets", "ListObjectsV2", "DeleteObject"]


def test_the_real_cli_v2_behind_the_shim_goes_through_the_gateway(gw_world: ShimWorld) -> None:
    """HOOP_REAL_AWS (the subprocess runner, a real AWS CLI v2): on a gateway connection its calls
    are decided, masked per operation and recorded by the server like any SDK's."""
    from tests.gateway.clients import require_cli_v2

    cli = require_cli_v2()
    import boto3

    boto3.client("secretsmanager", endpoint_url=gw_world.moto, region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing").create_secret(
        Name="v2/secret", SecretString="v2-plaintext-never-shown")
    env = {"HOOP_REAL_AWS": cli}
    out = gw_world.exec("secretsmanager", "get-secret-value", "--secret-id", "v2/secret", env=env)
    assert out.code == 0, out.stderr
    assert "v2-plaintext-never-shown" not in out.stdout + out.stderr
    assert json.loads(out.stdout)["SecretString"].startswith("[masked:")
    from hoopcli.server.store.models import SessionCredential

    with gw_world.server.db.session() as db:
        sid = db.query(SessionCredential).one().session_id
    calls = [r for r in session_records(gw_world.server, sid) if r["type"] == "api.call"]
    assert [c["operation"] for c in calls] == ["GetSecretValue"]
