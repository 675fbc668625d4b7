"""The gateway end to end with the other real clients: the AWS SDK for JavaScript v3 (node) and
the AWS CLI v2 (2.9.19, which predates AWS_ENDPOINT_URL: the harness passes --endpoint-url), each
a real process with only the session credential, against a hoop server whose gateway forwards
to moto. For each client: list and read, a masked secret, a 5 MiB object up and down (the JS
SDK sends it aws-chunked with a CRC32 trailer), a policy denial, and review -> HoopApprovalPending
(one attempt, no retry by the client) -> approved -> the same command again succeeds.

One hoop server (API + gateway) serves the whole module: starting one and loading botocore's
models at the gateway's first request take about 10 s, so a server per test would triple the run
time. Every test opens its own session, so records never mix.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.conftest import FAKE_AWS, RunningServer
from tests.gateway.clients import require_cli_v2, require_node, run_client
from tests.gateway.gateway_helpers import (
    agent_env,
    approve,
    credential,
    module_gateway_server,
    open_session,
    session_records,
)

pytestmark = pytest.mark.e2e

CLIENTS = ("js", "cli_v2")
BODY_SIZE = 5 * 1024 * 1024


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str) -> Iterator[RunningServer]:
    """A hoop server with its gateway in front of moto, shared by the module. Reviews are held
    for 1 s before HoopApprovalPending."""
    require_cli_v2()
    require_node()
    with module_gateway_server(tmp_path_factory.mktemp("gw-clients"), moto_endpoint) as srv:
        yield srv


@pytest.fixture(scope="module")
def moto_s3(moto_endpoint: str) -> Any:
    """S3 at moto itself, bypassing the gateway: to seed buckets and to check what really happened."""
    return boto3.session.Session(**FAKE_AWS).client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")


@pytest.fixture(scope="module")
def body(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    path = tmp_path_factory.mktemp("body") / "5MiB.bin"
    data = os.urandom(BODY_SIZE)
    path.write_bytes(data)
    return path, data


def unique(prefix: str, client: str) -> str:
    return f"{prefix}-{client.replace('_', '-')}-{secrets.token_hex(4)}"


def session(gw: RunningServer) -> tuple[str, dict[str, str]]:
    """A new session and the environment its agent gets (only the session credential)."""
    sid = open_session(gw)
    return sid, agent_env(credential(gw, sid))


def ok(result: dict[str, Any]) -> dict[str, Any]:
    assert result["ok"], result
    assert result["exit_code"] == 0, result
    return dict(result["output"])


def calls(gw: RunningServer, sid: str) -> list[dict[str, Any]]:
    return [r for r in session_records(gw, sid) if r.get("type") == "api.call"]


@pytest.mark.parametrize("client", CLIENTS)
def test_list_and_read(client: str, gw: RunningServer, tmp_path: Path) -> None:
    sid, env = session(gw)
    bucket = unique("gw-list", client)
    small = tmp_path / "hello.txt"
    small.write_bytes(b"hello through the gateway\n")
    ok(run_client(client, env, "s3", "CreateBucket", {"Bucket": bucket}))
    ok(run_client(client, env, "s3", "PutObject", {"Bucket": bucket, "Key": "dir/hello.txt"}, body_file=small))

    buckets = ok(run_client(client, env, "s3", "ListBuckets", {}))
    assert bucket in [b["Name"] for b in buckets["Buckets"]]
    listed = ok(run_client(client, env, "s3", "ListObjectsV2", {"Bucket": bucket}))
    assert [(o["Key"], o["Size"]) for o in listed["Contents"]] == [("dir/hello.txt", small.stat().st_size)]
    got = ok(run_client(client, env, "s3", "GetObject", {"Bucket": bucket, "Key": "dir/hello.txt"}))
    assert got["Body"] == {"bytes": small.stat().st_size, "sha256": hashlib.sha256(small.read_bytes()).hexdigest()}

    records = calls(gw, sid)
    assert [(r["operation"], r["decision"]["effect"], r["http_status"]) for r in records] == [
        ("CreateBucket", "allow", 200), ("PutObject", "allow", 200), ("ListBuckets", "allow", 200),
        ("ListObjectsV2", "allow", 200), ("GetObject", "allow", 200)]
    assert all(r["source"] == "gateway" and r["service"] == "s3" for r in records)


@pytest.mark.parametrize("client", CLIENTS)
def test_secret_is_masked_for_the_client_and_in_the_records(client: str, gw: RunningServer) -> None:
    sid, env = session(gw)
    name, value = unique("gw/db", client), "hunter2-" + secrets.token_hex(12)
    created = ok(run_client(client, env, "secretsmanager", "CreateSecret", {"Name": name, "SecretString": value}))
    assert created["Name"] == name
    got = ok(run_client(client, env, "secretsmanager", "GetSecretValue", {"SecretId": name}))
    assert got["SecretString"].startswith("[masked:"), got
    assert value not in str(got)
    records = calls(gw, sid)
    assert [(r["operation"], r["http_status"]) for r in records] == [("CreateSecret", 200), ("GetSecretValue", 200)]
    assert value not in str(session_records(gw, sid))          # not in the params, not in the response


@pytest.mark.parametrize("client", CLIENTS)
def test_object_up_and_down_byte_identical(client: str, gw: RunningServer, moto_s3: Any,
                                           body: tuple[Path, bytes], tmp_path: Path) -> None:
    """5 MiB up (the JS SDK: aws-chunked, a CRC32 trailer, decoded and verified at the gateway
    as it streams; the CLI: a signed SHA-256 body) and down, unchanged both ways."""
    path, data = body
    sid, env = session(gw)
    bucket = unique("gw-big", client)
    moto_s3.create_bucket(Bucket=bucket)
    put = ok(run_client(client, env, "s3", "PutObject", {"Bucket": bucket, "Key": "big.bin"}, body_file=path))
    assert put["ETag"].strip('"') == hashlib.md5(data).hexdigest()       # what AWS (moto) received
    assert moto_s3.get_object(Bucket=bucket, Key="big.bin")["Body"].read() == data

    out = tmp_path / "downloaded.bin"
    got = ok(run_client(client, env, "s3", "GetObject", {"Bucket": bucket, "Key": "big.bin"}, out_file=out))
    assert got["Body"] == {"bytes": BODY_SIZE, "sha256": hashlib.sha256(data).hexdigest()}
    assert out.read_bytes() == data

    records = calls(gw, sid)
    assert [(r["operation"], r["http_status"]) for r in records] == [("PutObject", 200), ("GetObject", 200)]
    assert records[0]["bytes_in"] == BODY_SIZE and records[1]["bytes_out"] == BODY_SIZE


@pytest.mark.parametrize("client", CLIENTS)
def test_denied_by_policy(client: str, gw: RunningServer) -> None:
    sid, env = session(gw)
    result = run_client(client, env, "iam", "CreateAccessKey", {"UserName": unique("gw-deny", client)})
    assert result["ok"] is False, result
    assert result["code"] == "AccessDenied", result
    assert result["message"].startswith("hoop: denied by policy rule deny-iam-access-keys"), result
    if client == "js":
        assert (result["http_status"], result["attempts"]) == (403, 1)
    [record] = calls(gw, sid)
    assert (record["operation"], record["decision"]["effect"], record["http_status"], record["request_id"]) == \
        ("CreateAccessKey", "deny", 403, None)                 # never reached AWS


@pytest.mark.parametrize("client", CLIENTS)
def test_review_pending_then_approved_then_the_same_command_succeeds(client: str, gw: RunningServer,
                                                                      moto_s3: Any) -> None:
    sid, env = session(gw)
    bucket = unique("gw-review", client)
    moto_s3.create_bucket(Bucket=bucket)
    moto_s3.put_object(Bucket=bucket, Key="doomed", Body=b"x")
    params = {"Bucket": bucket, "Key": "doomed"}

    pending = run_client(client, env, "s3", "DeleteObject", params)
    assert pending["ok"] is False, pending
    assert pending["code"] == "HoopApprovalPending", pending
    approval_id = pending["message"].split("approval ", 1)[1].split(" ", 1)[0]
    assert approval_id.startswith("apr_") and f"hoop approvals approve {approval_id}" in pending["message"]
    # exactly one attempt: the client did not retry the 409 by itself
    if client == "js":
        assert (pending["http_status"], pending["attempts"]) == (409, 1)
    else:
        assert "max retries" not in pending["stderr"] and pending["attempts"] is None
    deletes = [r for r in calls(gw, sid) if r["operation"] == "DeleteObject"]
    assert [(r["http_status"], r["error_code"], r["decision"]["effect"]) for r in deletes] == \
        [(409, "HoopApprovalPending", "review")]
    moto_s3.head_object(Bucket=bucket, Key="doomed")                 # still there

    approve(gw, approval_id)
    ok(run_client(client, env, "s3", "DeleteObject", params))        # the same command, once
    assert "Contents" not in moto_s3.list_objects_v2(Bucket=bucket)
    deletes = [r for r in calls(gw, sid) if r["operation"] == "DeleteObject"]
    assert [r["http_status"] for r in deletes] == [409, 204]
    assert deletes[1]["approval"]["id"] == approval_id
