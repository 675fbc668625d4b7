"""The gateway end to end with boto3: a real hoop server (API + gateway listener), moto's server
as AWS, session credentials issued through the API. Allow, deny, review -> pending -> approved ->
retried once, masking, streaming, revocation, and the server-observed records."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.gateway.gateway_helpers import (
    approve,
    boto3_client,
    credential,
    gateway_server,
    open_session,
    session_records,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def gw(make_server: Any, tmp_path: Path, moto_endpoint: str) -> Any:
    return gateway_server(make_server, tmp_path, moto_endpoint, gateway={"hold_seconds": 1})


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    err = exc.value.response
    return err["Error"]["Code"], err["Error"]["Message"], err["ResponseMetadata"]["HTTPStatusCode"]


def test_allowed_read_write_and_records(gw: Any) -> None:
    sid = open_session(gw)
    cred = credential(gw, sid)
    assert cred["access_key_id"].startswith("HOOP") and cred["endpoint_url"] == gw.gateway_url
    s3 = boto3_client("s3", cred)
    s3.create_bucket(Bucket="gw-allowed")
    s3.put_object(Bucket="gw-allowed", Key="a.txt", Body=b"hello gateway")
    assert s3.get_object(Bucket="gw-allowed", Key="a.txt")["Body"].read() == b"hello gateway"
    listed = s3.list_objects_v2(Bucket="gw-allowed")
    assert [o["Key"] for o in listed["Contents"]] == ["a.txt"]

    records = [r for r in session_records(gw, sid) if r.get("type") == "api.call"]
    ops = [(r["service"], r["operation"], r["decision"]["effect"], r["http_status"]) for r in records]
    assert ops == [("s3", "CreateBucket", "allow", 200), ("s3", "PutObject", "allow", 200),
                   ("s3", "GetObject", "allow", 200), ("s3", "ListObjectsV2", "allow", 200)]
    assert all(r["source"] == "gateway" and r["session_id"] == sid for r in records)
    assert records[1]["params"]["Key"] == "a.txt" and records[1]["actions"] == ["s3:PutObject"]


def test_denied_by_policy_in_the_protocols_error_format(gw: Any, moto_endpoint: str) -> None:
    cred = credential(gw, open_session(gw))
    iam = boto3_client("iam", cred)
    iam.create_user(UserName="gw-deny-user")
    with pytest.raises(ClientError) as exc:
        iam.create_access_key(UserName="gw-deny-user")
    code, message, status = _error(exc)
    assert (code, status) == ("AccessDenied", 403)
    assert message.startswith("hoop: denied by policy rule deny-iam-access-keys")
    # nothing reached AWS: moto has no key for the user
    import boto3

    direct = boto3.client("iam", endpoint_url=moto_endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    assert direct.list_access_keys(UserName="gw-deny-user")["AccessKeyMetadata"] == []


def test_review_pending_then_approved_then_retried_once(gw: Any) -> None:
    sid = open_session(gw)
    cred = credential(gw, sid)
    s3 = boto3_client("s3", cred)
    s3.create_bucket(Bucket="gw-review")
    s3.put_object(Bucket="gw-review", Key="doomed", Body=b"x")
    with pytest.raises(ClientError) as exc:
        s3.delete_object(Bucket="gw-review", Key="doomed")
    code, message, status = _error(exc)
    assert (code, status) == ("HoopApprovalPending", 409)
    approval_id = message.split("approval ", 1)[1].split(" ", 1)[0]
    assert approval_id.startswith("apr_") and "hoop approvals approve" in message
    assert exc.value.response["ResponseMetadata"]["RetryAttempts"] == 0
    s3.head_object(Bucket="gw-review", Key="doomed")             # still there

    approve(gw, approval_id)
    s3.delete_object(Bucket="gw-review", Key="doomed")            # the same request, once
    with pytest.raises(ClientError):
        s3.head_object(Bucket="gw-review", Key="doomed")
    s3.put_object(Bucket="gw-review", Key="doomed", Body=b"x")
    with pytest.raises(ClientError) as again:                     # single use: asks anew
        s3.delete_object(Bucket="gw-review", Key="doomed")
    assert _error(again)[0] == "HoopApprovalPending"
    assert approval_id not in _error(again)[1]


def test_held_request_goes_through_when_approved_during_the_hold(make_server: Any, tmp_path: Path,
                                                                  moto_endpoint: str) -> None:
    srv = gateway_server(make_server, tmp_path, moto_endpoint, gateway={"hold_seconds": 15})
    cred = credential(srv, open_session(srv))
    s3 = boto3_client("s3", cred)
    s3.create_bucket(Bucket="gw-hold")
    s3.put_object(Bucket="gw-hold", Key="k", Body=b"x")

    def approver() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            r = httpx.get(srv.url + "/api/v1/approvals", params={"status": "pending"},
                          headers=srv.headers("bob", groups=("approvers",)), timeout=5)
            pending = [a for a in r.json() if a["operation"] == "delete-object"]
            if pending:
                approve(srv, pending[0]["id"])
                return
            time.sleep(0.1)

    thread = threading.Thread(target=approver)
    thread.start()
    started = time.monotonic()
    s3.delete_object(Bucket="gw-hold", Key="k")
    thread.join()
    assert time.monotonic() - started < 12


def test_secret_value_is_masked_on_the_wire_and_in_the_record(gw: Any) -> None:
    sid = open_session(gw)
    cred = credential(gw, sid)
    sm = boto3_client("secretsmanager", cred)
    sm.create_secret(Name="gw/db", SecretString="hunter2-very-secret-value")
    value = sm.get_secret_value(SecretId="gw/db")["SecretString"]
    assert "hunter2" not in value and value.startswith("[masked:")
    text = str(session_records(gw, sid))
    assert "hunter2" not in text


def test_large_object_streams_up_and_down(gw: Any) -> None:
    cred = credential(gw, open_session(gw))
    s3 = boto3_client("s3", cred)
    s3.create_bucket(Bucket="gw-big")
    data = bytes(range(256)) * (24 * 1024)        # 6 MiB
    s3.put_object(Bucket="gw-big", Key="big.bin", Body=data)
    body = s3.get_object(Bucket="gw-big", Key="big.bin")["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(data).digest()


def test_revoked_and_unknown_credentials_are_refused(gw: Any) -> None:
    sid = open_session(gw)
    cred = credential(gw, sid)
    s3 = boto3_client("s3", cred)
    s3.list_buckets()
    r = httpx.post(f"{gw.url}/api/v1/sessions/{sid}/close", headers=gw.headers("alice"), json={"exit_code": 0})
    assert r.status_code == 200 and r.json()["revoked_credentials"] == 1
    time.sleep(1.1)                               # the gateway's credential cache lives 1 s
    with pytest.raises(ClientError) as exc:
        s3.list_buckets()
    assert _error(exc)[:1] == ("InvalidClientTokenId",)
    wrong = dict(cred, secret_access_key="x" * 40)
    with pytest.raises(ClientError) as exc:
        boto3_client("s3", dict(wrong, access_key_id="HOOPAAAAAAAAAAAAAAAA")).list_buckets()
    assert _error(exc)[0] == "InvalidClientTokenId"


def test_wrong_secret_is_signature_does_not_match(gw: Any) -> None:
    cred = credential(gw, open_session(gw))
    with pytest.raises(ClientError) as exc:
        boto3_client("s3", dict(cred, secret_access_key="y" * 40)).list_buckets()
    assert _error(exc)[0] == "SignatureDoesNotMatch"


def test_vend_connections_get_no_session_credential_and_gateway_ones_no_sts_keys(
        make_server: Any, tmp_path: Path, moto_endpoint: str) -> None:
    srv = gateway_server(make_server, tmp_path, moto_endpoint, connections={
        "default": {"role_arn": "arn:aws:iam::123456789012:role/agent", "endpoint_url": moto_endpoint,
                    "credentials": "gateway"},
        "legacy": {"role_arn": "arn:aws:iam::123456789012:role/agent", "endpoint_url": moto_endpoint,
                   "credentials": "vend"}})
    sid = open_session(srv, connection="legacy")
    r = httpx.post(f"{srv.url}/api/v1/sessions/{sid}/credentials", headers=srv.headers("alice"), json={})
    assert r.status_code == 403
    r = httpx.post(f"{srv.url}/api/v1/credentials", headers=srv.headers("alice"), json={
        "connection": "default", "session_id": open_session(srv), "argv": ["s3api", "list-buckets"]})
    assert r.status_code == 403 and "gateway" in r.text


def test_a_role_the_call_passes_is_decided_as_iam_passrole(gw: Any) -> None:
    """Lambda CreateFunction also needs iam:PassRole on its role (hoopcli.parse.dependent): a
    deny rule on passing admin roles refuses it at the gateway, before AWS sees it."""
    lam = boto3_client("lambda", credential(gw, open_session(gw)))
    with pytest.raises(ClientError) as exc:
        lam.create_function(FunctionName="gw-pass-admin", Runtime="python3.12", Handler="h.h",
                            Role="arn:aws:iam::123456789012:role/admin-everything", Code={"ZipFile": b"PK"})
    code, message, status = _error(exc)
    assert (code, status) == ("AccessDenied", 403)
    assert message.startswith("hoop: denied by policy rule deny-pass-admin-roles")


def test_a_download_the_client_abandons_is_stopped_and_recorded(gw: Any) -> None:
    """The client reads 1 MiB of a 48 MiB object and hangs up: the gateway stops relaying (it
    does not read the rest from AWS into the void) and the call's record says so."""
    sid = open_session(gw)
    s3 = boto3_client("s3", credential(gw, sid))
    s3.create_bucket(Bucket="gw-abandon")
    size = 48 * 1024 * 1024
    s3.put_object(Bucket="gw-abandon", Key="big.bin", Body=b"\x5a" * size)
    body = s3.get_object(Bucket="gw-abandon", Key="big.bin")["Body"]
    assert len(body.read(1024 * 1024)) == 1024 * 1024
    body.close()                                  # closes the connection mid-answer
    deadline = time.monotonic() + 20
    gets: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        gets = [r for r in session_records(gw, sid) if r.get("operation") == "GetObject"]
        if gets:
            break
        time.sleep(0.2)
    assert len(gets) == 1, gets
    assert gets[0]["error_code"] == "HoopRelayInterrupted"
    assert gets[0]["http_status"] == 200 and gets[0]["bytes_out"] < size
