"""WORM export of checkpoints and records to S3 Object Lock, against a real moto_server."""

from __future__ import annotations

import json
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError
from ledger_factory import command

from hoopcli.errors import ConfigError
from hoopcli.server.ledger import checkpoints as cp
from hoopcli.server.ledger import export as s3export
from hoopcli.transcript import merkle
from hoopcli.transcript.checkpoints import verify_signature


def s3(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def test_export_is_locked_idempotent_and_verifiable_offline(sqlite_ledger, moto_endpoint) -> None:
    ledger = sqlite_ledger
    client = s3(moto_endpoint)
    bucket = f"audit-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    ledger.post(command("s-1", 0) + command("s-1", 2, t=1))
    ledger.auditor().post("/api/v1/checkpoints", {})
    ledger.post(command("s-2", 0, t=5))
    ledger.auditor().post("/api/v1/checkpoints", {})
    key = cp.SigningKey.load_or_create(ledger.srv.settings.home)
    counts = s3export.export(ledger.srv.db, "default", client, bucket, prefix="hoop/", key=key, retain_days=1)
    assert counts == {"checkpoints": 2, "segments": 2, "records": 6}
    assert s3export.export(ledger.srv.db, "default", client, bucket, prefix="hoop/", key=key) == \
        {"checkpoints": 0, "segments": 0, "records": 0}

    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == ["hoop/default/checkpoints/000000000000.json", "hoop/default/checkpoints/000000000001.json",
                    "hoop/default/key.json", "hoop/default/records/000000000000-000000000004.jsonl",
                    "hoop/default/records/000000000004-000000000006.jsonl"]
    head = client.head_object(Bucket=bucket, Key=keys[0])
    assert head["ObjectLockMode"] == "COMPLIANCE"
    version = head.get("VersionId")
    with pytest.raises(ClientError):
        client.delete_object(Bucket=bucket, Key=keys[0], VersionId=version)

    # an auditor holding only the bucket can check it: signatures, hashes, roots
    pub = json.loads(client.get_object(Bucket=bucket, Key=keys[2])["Body"].read())
    raw = __import__("base64").b64decode(pub["public_key"])
    tree = merkle.MemoryTree()
    for seg in keys[3:]:
        for line in client.get_object(Bucket=bucket, Key=seg)["Body"].read().decode().splitlines():
            item = json.loads(line)
            h = merkle.leaf_hash(item["leaf"].encode())
            assert h.hex() == item["hash"]
            tree.append_hash(h)
    for ck in keys[:2]:
        doc = json.loads(client.get_object(Bucket=bucket, Key=ck)["Body"].read())
        body = json.loads(doc["body"])
        assert verify_signature(raw, body, doc["signature"])
        assert tree.root(body["size"]).hex() == body["root"]


def test_bucket_without_object_lock_is_refused(sqlite_ledger, moto_endpoint) -> None:
    client = s3(moto_endpoint)
    bucket = f"plain-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    with pytest.raises(ConfigError, match="has no Object Lock"):
        s3export.export(sqlite_ledger.srv.db, "default", client, bucket)
