"""Benign sessions raise nothing: a read-heavy agent run of a few hundred calls across services,
and the demo's story (the shim's commands and the same agent's SDK calls through the gateway)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from detections_helpers import AUDITOR, Script, findings, settle

from tests.conftest import FAKE_AWS
from tests.gateway.gateway_helpers import approve, boto3_client, credential, gateway_server, open_session

READS = [("s3", "ListBuckets", {}), ("s3", "ListObjectsV2", {"Bucket": "logs"}),
         ("s3", "GetObject", {"Bucket": "logs", "Key": "app.log"}), ("s3", "HeadObject", {"Bucket": "logs", "Key": "a"}),
         ("ec2", "DescribeInstances", {}), ("ec2", "DescribeSecurityGroups", {}), ("ec2", "DescribeVpcs", {}),
         ("lambda", "ListFunctions", {}), ("lambda", "GetFunction", {"FunctionName": "api"}),
         ("dynamodb", "DescribeTable", {"TableName": "orders"}), ("dynamodb", "Query", {"TableName": "orders"}),
         ("dynamodb", "GetItem", {"TableName": "orders", "Key": {}}), ("logs", "FilterLogEvents", {"logGroupName": "g"}),
         ("logs", "DescribeLogGroups", {}), ("cloudwatch", "GetMetricData", {}), ("cloudwatch", "ListMetrics", {}),
         ("sqs", "GetQueueAttributes", {"QueueUrl": "q"}), ("sqs", "ListQueues", {})]


def test_read_heavy_agent_run_raises_nothing(make_server: Any) -> None:
    srv = make_server(roles=AUDITOR)
    rng = random.Random(16)
    s = Script(srv, step=0.7)
    batch: list[dict[str, Any]] = []
    for i in range(320):
        if i % 40 == 7:                                   # a handful of secrets, read again and again
            batch.append(s.call("secretsmanager", "GetSecretValue", {"SecretId": f"app/db-{i % 3}"}))
        elif i % 50 == 11:                                # the odd miss
            batch.append(s.call("s3", "GetObject", {"Bucket": "logs", "Key": f"gone-{i}"}, http_status=404,
                                error_code="NoSuchKey"))
        else:
            svc, op, params = rng.choice(READS)
            batch.append(s.call(svc, op, params))
        if len(batch) == 40:
            s.gateway(*batch)
            batch = []
    s.gateway(*batch)
    for i in range(3):                                    # and a few shim commands of its own
        s.upload(*s.command(["s3", "ls", f"s3://logs/{i}/"], calls=[
            {"service": "s3", "operation": "ListObjectsV2", "params": {"Bucket": "logs"}, "request_id": "R",
             "http_status": 200, "error_code": None, "duration_ms": 5.0}]))
    settle(srv)
    assert findings(srv) == []


@pytest.mark.e2e
def test_the_demo_story_raises_nothing(make_server: Any, tmp_path: Path, moto_endpoint: str) -> None:
    gw = gateway_server(make_server, tmp_path, moto_endpoint, gateway={"hold_seconds": 1}, roles=AUDITOR)
    aws = boto3.session.Session(**FAKE_AWS)
    aws.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").create_bucket(Bucket="demo-logs")
    aws.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").put_object(
        Bucket="demo-logs", Key="2026/11/27/app.log", Body=b"log line\n")
    aws.client("secretsmanager", endpoint_url=moto_endpoint, region_name="us-east-1").create_secret(
        Name="demo/db-password", SecretString="demo-db-password-7Qm2xKp9")
    # the shim's half of the story, as its records arrive (s3 ls, get-secret-value, s3 rb reviewed and
    # approved, iam create-access-key denied)
    s = Script(gw)
    s.upload(*s.command(["s3", "ls"], calls=[{"service": "s3", "operation": "ListBuckets", "params": {},
                                              "http_status": 200, "error_code": None}]))
    s.upload(*s.command(["secretsmanager", "get-secret-value", "--secret-id", "demo/db-password"], calls=[
        {"service": "secretsmanager", "operation": "GetSecretValue", "params": {"SecretId": "demo/db-password"},
         "http_status": 200, "error_code": None}]))
    s.upload(*s.command(["s3", "rb", "s3://demo-scratch"], effect="review", calls=[
        {"service": "s3", "operation": "DeleteBucket", "params": {"Bucket": "demo-scratch"}, "http_status": 204,
         "error_code": None}]))
    s.upload(*s.command(["iam", "create-access-key", "--user-name", "demo-user"], effect="deny"))

    # the SDK half, through the gateway: a read, a secret, a reviewed delete (approved), a denied key
    sid = open_session(gw)
    cred = credential(gw, sid)
    boto3_client("s3", cred).list_objects_v2(Bucket="demo-logs")
    boto3_client("secretsmanager", cred).get_secret_value(SecretId="demo/db-password")
    s3 = boto3_client("s3", cred)
    with pytest.raises(ClientError) as pending:
        s3.delete_object(Bucket="demo-logs", Key="2026/11/27/app.log")
    message = pending.value.response["Error"]["Message"]
    approve(gw, message.split("approval ", 1)[1].split(" ", 1)[0])
    s3.delete_object(Bucket="demo-logs", Key="2026/11/27/app.log")
    with pytest.raises(ClientError):
        boto3_client("iam", cred).create_access_key(UserName="demo-user")
    settle(gw)
    assert findings(gw) == []
