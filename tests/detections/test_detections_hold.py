"""Actions through the real gateway (boto3 against moto): a held session's next call waits for an
approver and says why in one line; an approval lets exactly that call through; a release ends
the hold; `revoke` revokes the session credential."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError
from detections_helpers import AUDITOR, findings, settle

from tests.conftest import FAKE_AWS
from tests.gateway.gateway_helpers import approve, boto3_client, credential, gateway_server, open_session

pytestmark = pytest.mark.e2e


def _secrets(moto_endpoint: str, n: int, prefix: str) -> list[str]:
    sm = boto3.session.Session(**FAKE_AWS).client("secretsmanager", endpoint_url=moto_endpoint,
                                                  region_name="us-east-1")
    names = [f"{prefix}/s{i}" for i in range(n)]
    for name in names:
        sm.create_secret(Name=name, SecretString="hunter2-" + name)
    return names


def _pending(exc: pytest.ExceptionInfo[ClientError]) -> str:
    err = exc.value.response["Error"]
    assert err["Code"] == "HoopApprovalPending", err
    return str(err["Message"])


def test_held_session_waits_for_an_approver_until_released(make_server: Any, tmp_path: Path,
                                                           moto_endpoint: str) -> None:
    gw = gateway_server(make_server, tmp_path, moto_endpoint, gateway={"hold_seconds": 1},
                        roles={**AUDITOR, "approver": ["approvers"]})
    names = _secrets(moto_endpoint, 21, "hold")
    sid = open_session(gw)
    sm = boto3_client("secretsmanager", credential(gw, sid))
    for name in names[:20]:
        sm.get_secret_value(SecretId=name)
    with pytest.raises(ClientError) as exc:
        sm.get_secret_value(SecretId=names[20])
    message = _pending(exc)
    assert "\n" not in message
    assert message.startswith("hoop: session held by finding fnd_")
    assert "(mass-secret-reads: secrets read: 20 in 10m" in message
    assert "approval apr_" in message and "(detection:mass-secret-reads)" in message
    assert [f["rule"] for f in findings(gw, sid)] == ["mass-secret-reads"]

    approval = message.split("approval ", 1)[1].split(" ", 1)[0]
    r = httpx.post(f"{gw.url}/api/v1/approvals/{approval}/decision", headers=gw.headers("alice", groups=("approvers",)),
                   json={"decision": "approve"}, timeout=10)
    assert r.status_code == 403, r.text           # the session's own user cannot approve it
    approve(gw, approval)                          # bob, an approver
    assert sm.get_secret_value(SecretId=names[20])["SecretString"] != "hunter2-" + names[20]   # masked
    with pytest.raises(ClientError) as again:      # the approval let that one call through, once
        sm.get_secret_value(SecretId=names[20])
    _pending(again)
    s3 = boto3_client("s3", credential(gw, sid))
    with pytest.raises(ClientError) as listing:    # whatever the policy says (reads are allowed)
        s3.list_buckets()
    _pending(listing)

    r = httpx.post(f"{gw.url}/api/v1/sessions/{sid}/release", headers=gw.headers("alice", groups=("approvers",)),
                   json={}, timeout=10)
    assert r.status_code == 403, r.text
    r = httpx.post(f"{gw.url}/api/v1/sessions/{sid}/release", headers=gw.headers("bob", groups=("approvers",)),
                   json={"reason": "checked with the team"}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["released_by"] == "bob" and r.json()["held"] is False
    s3.list_buckets()
    sm.get_secret_value(SecretId=names[0])
    settle(gw)
    assert [f["rule"] for f in findings(gw, sid)] == ["mass-secret-reads"]     # the same episode: once


def test_a_policy_deny_stays_a_deny_in_a_held_session(make_server: Any, tmp_path: Path, moto_endpoint: str) -> None:
    gw = gateway_server(make_server, tmp_path, moto_endpoint, gateway={"hold_seconds": 1}, roles=AUDITOR)
    sid = open_session(gw)
    cred = credential(gw, sid)
    ct = boto3_client("cloudtrail", cred)
    with pytest.raises(ClientError) as exc:        # evasion: not in the policy's list, so reviewed, and held
        ct.stop_logging(Name="org-trail")
    _pending(exc)
    settle(gw)
    assert [f["rule"] for f in findings(gw, sid)] == ["defence-evasion"]
    iam = boto3_client("iam", cred)
    with pytest.raises(ClientError) as denied:
        iam.create_access_key(UserName="bob")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"


def test_revoke_action_revokes_the_session_credential(make_server: Any, tmp_path: Path, moto_endpoint: str) -> None:
    policy_extra = "detections:\n  shipped:\n    mass-secret-reads: {count: 3, action: revoke}\n"
    gw = gateway_server(make_server, tmp_path, moto_endpoint, gateway={"hold_seconds": 1}, roles=AUDITOR)
    policy = Path(gw.settings.policy_file)
    policy.write_text(policy.read_text() + policy_extra)
    names = _secrets(moto_endpoint, 3, "revoke")
    sid = open_session(gw)
    sm = boto3_client("secretsmanager", credential(gw, sid))
    for name in names:
        sm.get_secret_value(SecretId=name)
    settle(gw)
    [f] = findings(gw, sid)
    assert (f["rule"], f["action"], f["outcome"]) == ("mass-secret-reads", "revoke",
                                                      "session held; 1 session credential revoked")
    import time

    time.sleep(1.1)                                # the gateway's credential cache (1 s)
    with pytest.raises(ClientError) as exc:
        sm.get_secret_value(SecretId=names[0])
    assert exc.value.response["Error"]["Code"] == "InvalidClientTokenId"
