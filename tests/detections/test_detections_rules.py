"""Each shipped rule, one scripted session: exactly that finding, raised within 2 s of the call
that met the threshold, with the records that raised it. Gateway records go through the real
ledger writer; client records through POST /api/v1/records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from detections_helpers import AUDITOR, Script, findings, raised, rules_of, settle

SECRETS = [f"prod/app-{i}/db" for i in range(25)]


@pytest.fixture
def srv(make_server: Any) -> Any:
    return make_server(roles=AUDITOR)


def _raised_in_time(srv: Any, script: Script, last: dict[str, Any], rule: str) -> dict[str, Any]:
    script.gateway(last)
    took = raised(srv, script.session)
    assert took is not None and took < 2.0, took
    settle(srv)
    got = findings(srv, script.session)
    assert rules_of(got) == [rule]
    assert got[0]["trigger_record"] == last["id"]
    return got[0]


def test_mass_secret_reads_holds_the_session(srv: Any) -> None:
    s = Script(srv)
    s.gateway(*[s.call("secretsmanager", "GetSecretValue", {"SecretId": name}) for name in SECRETS[:19]])
    s.gateway(s.call("secretsmanager", "GetSecretValue", {"SecretId": SECRETS[0]}))   # the same one again
    settle(srv)
    assert findings(srv, s.session) == []
    f = _raised_in_time(srv, s, s.call("ssm", "GetParameter", {"Name": "/prod/key", "WithDecryption": True}),
                        "mass-secret-reads")
    assert (f["severity"], f["action"], f["count"], f["held"]) == ("high", "hold", 20, True)
    assert f["outcome"] == "session held"
    assert "secrets read: 20 in 10m (threshold 20)" in f["summary"]
    assert len(f["records"]) == 21 and set(f["values"]) == {*SECRETS[:19], "/prod/key"}   # the repeat too


def test_ssm_without_decryption_and_failed_reads_do_not_count(srv: Any) -> None:
    s = Script(srv)
    s.gateway(*[s.call("ssm", "GetParameter", {"Name": f"/p/{i}"}) for i in range(25)])
    s.gateway(*[s.call("secretsmanager", "GetSecretValue", {"SecretId": f"x{i}"}, http_status=400,
                       error_code="ResourceNotFoundException") for i in range(12)])
    settle(srv)
    assert findings(srv, s.session) == []


def test_batch_reads_count_each_secret_and_arn_and_name_are_one(srv: Any) -> None:
    s = Script(srv)
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/app-0/db-AbC123"
    s.gateway(s.call("secretsmanager", "BatchGetSecretValue", {"SecretIdList": SECRETS[:18]}),
              s.call("secretsmanager", "GetSecretValue", {"SecretId": arn}))
    settle(srv)
    assert findings(srv, s.session) == []
    f = _raised_in_time(srv, s, s.call("ssm", "GetParameters", {"Names": ["/a", "/b"], "WithDecryption": "true"}),
                        "mass-secret-reads")
    assert f["count"] == 20


def test_credential_minting_alerts(srv: Any) -> None:
    s = Script(srv)
    s.gateway(s.call("iam", "CreateAccessKey", {"UserName": "bob"}, effect="deny"))   # denied: nothing minted
    settle(srv)
    assert findings(srv, s.session) == []
    f = _raised_in_time(srv, s, s.call("sts", "AssumeRole", {"RoleArn": "arn:aws:iam::1:role/x",
                                                             "RoleSessionName": "y"}), "credential-minting")
    assert (f["severity"], f["action"], f["held"]) == ("medium", "alert", False)
    assert f["values"] == ["sts.AssumeRole"]


def test_defence_evasion_counts_even_a_denied_attempt(srv: Any) -> None:
    s = Script(srv)
    s.gateway(s.call("s3", "ListBuckets"))
    f = _raised_in_time(srv, s, s.call("cloudtrail", "StopLogging", {"Name": "org-trail"}, effect="deny"),
                        "defence-evasion")
    assert (f["severity"], f["action"], f["held"]) == ("high", "hold", True)


def test_guardduty_disabled_by_update_is_evasion(srv: Any) -> None:
    s = Script(srv)
    s.gateway(s.call("guardduty", "UpdateDetector", {"DetectorId": "d", "Enable": True}))
    settle(srv)
    assert findings(srv, s.session) == []
    _raised_in_time(srv, s, s.call("guardduty", "UpdateDetector", {"DetectorId": "d", "Enable": False}),
                    "defence-evasion")


def test_policy_probing_from_client_reported_denials(srv: Any) -> None:
    s = Script(srv)
    for i in range(4):
        s.upload(*s.command(["iam", "create-user", "--user-name", f"u{i}"], effect="deny"))
    settle(srv)
    assert findings(srv, s.session) == []
    records = s.command(["s3api", "get-object", "--bucket", "b", "--key", "k", "out"], calls=[
        {"service": "s3", "operation": "GetObject", "params": {"Bucket": "b", "Key": "k"}, "request_id": "R",
         "http_status": 403, "error_code": "AccessDenied", "duration_ms": 3.0}], exit_code=254)
    s.upload(*records)
    took = raised(srv, s.session)
    assert took is not None and took < 2.0, took
    settle(srv)
    got = findings(srv, s.session)
    assert rules_of(got) == ["policy-probing"]
    assert got[0]["count"] == 5 and got[0]["trigger_record"] == records[1]["id"].replace("-", "")


def test_error_rate_spike(srv: Any) -> None:
    s = Script(srv)
    s.gateway(*[s.call("s3", "GetObject", {"Bucket": "b", "Key": f"k{i}"}) for i in range(10)])
    s.gateway(*[s.call("s3", "GetObject", {"Bucket": "b", "Key": f"m{i}"}, http_status=404, error_code="NoSuchKey")
                for i in range(19)])
    settle(srv)
    assert findings(srv, s.session) == []
    f = _raised_in_time(srv, s, s.call("dynamodb", "GetItem", {"TableName": "t", "Key": {}}, http_status=400,
                                       error_code="ResourceNotFoundException"), "error-rate-spike")
    assert f["count"] == 20 and "20 of 30 calls failed" in f["summary"]


def test_enumeration_burst(srv: Any) -> None:
    s = Script(srv)
    calls = [("s3", "ListBuckets"), ("ec2", "DescribeInstances"), ("iam", "ListUsers"), ("lambda", "ListFunctions"),
             ("rds", "DescribeDBInstances"), ("dynamodb", "ListTables"), ("sqs", "ListQueues"),
             ("sns", "ListTopics"), ("kms", "ListKeys")]
    s.gateway(*[s.call(svc, op) for svc, op in calls], *[s.call(svc, op) for svc, op in calls])
    settle(srv)
    assert findings(srv, s.session) == []
    f = _raised_in_time(srv, s, s.call("secretsmanager", "ListSecrets"), "enumeration-burst")
    assert f["count"] == 10 and "secretsmanager" in f["values"]


def test_first_secret_access_after_learning(make_server: Any, tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\ndetections:\n  shipped:\n    first-secret-access: {learning: 0}\n")
    srv = make_server(roles=AUDITOR, policy_file=str(policy))
    s = Script(srv)
    f = _raised_in_time(srv, s, s.call("secretsmanager", "GetSecretValue", {"SecretId": "prod/db"}),
                        "first-secret-access")
    assert f["summary"] == "first read of prod/db by this user in 30 days"
    s.gateway(s.call("secretsmanager", "GetSecretValue", {"SecretId": "prod/db"}))   # read again: not first
    other = Script(srv, user="alice")
    other.gateway(other.call("secretsmanager", "GetSecretValue", {"SecretId": "prod/db"}))   # another session
    settle(srv)
    assert len(findings(srv)) == 1


def test_first_secret_access_is_quiet_while_learning(srv: Any) -> None:
    s = Script(srv)
    s.gateway(*[s.call("secretsmanager", "GetSecretValue", {"SecretId": n}) for n in SECRETS[:5]])
    settle(srv)
    assert findings(srv) == []


def test_custom_rule_from_the_policy(make_server: Any, tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("""\
version: 1
detections:
  shipped:
    enumeration-burst: {enabled: false}
  rules:
    - id: bulk-deletes
      match: {actions: ["s3:DeleteObject"]}
      count: 3
      window: 5m
      distinct: resources
      severity: critical
      action: alert
""")
    srv = make_server(roles=AUDITOR, policy_file=str(policy))
    s = Script(srv)
    s.gateway(*[s.call("s3", "DeleteObject", {"Bucket": "b", "Key": "same"}) for _ in range(3)])
    s.gateway(s.call("s3", "DeleteObject", {"Bucket": "b", "Key": "other"}))
    settle(srv)
    assert findings(srv, s.session) == []
    f = _raised_in_time(srv, s, s.call("s3", "DeleteObject", {"Bucket": "b", "Key": "third"}), "bulk-deletes")
    assert f["severity"] == "critical" and len(f["values"]) == 3


def test_one_finding_per_window_then_again(srv: Any) -> None:
    from datetime import datetime, timedelta, timezone

    s = Script(srv, start=datetime.now(timezone.utc) - timedelta(hours=2), step=1.0)
    s.gateway(*[s.call("sts", "GetSessionToken") for _ in range(5)])
    s.when += timedelta(minutes=11)
    s.gateway(s.call("sts", "GetSessionToken"))
    settle(srv)
    assert rules_of(findings(srv, s.session)) == ["credential-minting", "credential-minting"]


def test_developers_see_only_their_own_findings(srv: Any) -> None:
    s = Script(srv, user="alice")
    s.gateway(s.call("sts", "GetSessionToken"))
    b = Script(srv, user="bob")
    b.gateway(b.call("sts", "GetSessionToken"))
    settle(srv)
    mine = httpx.get(srv.url + "/api/v1/findings", headers=srv.headers("alice"), timeout=10).json()
    assert [f["session_id"] for f in mine] == [s.session]
    other = findings(srv, b.session)[0]["id"]
    r = httpx.get(f"{srv.url}/api/v1/findings/{other}", headers=srv.headers("alice"), timeout=10)
    assert r.status_code == 404
    shown = httpx.get(f"{srv.url}/api/v1/findings/{other}", headers=srv.headers("bob"), timeout=10).json()
    assert [e["record"]["operation"] for e in shown["record_entries"]] == ["GetSessionToken"]
