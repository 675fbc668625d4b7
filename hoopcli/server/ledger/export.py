"""Optional WORM copy of the ledger in S3 (Object Lock, compliance mode).

For deployments that need write-once storage outside the database:

    python -m hoopcli.server.ledger.export --config server.yaml --bucket my-audit-bucket \
        [--prefix hoop/] [--retain-days 2555] [--endpoint-url URL] [--org default]

Layout (one object per item; each PUT carries ObjectLockMode=COMPLIANCE and a retain-until date,
so nobody, root included, can delete or overwrite it before then):

    <prefix><org>/checkpoints/<seq:012d>.json        {"body", "signature", "key_id"}
    <prefix><org>/records/<lo:012d>-<hi:012d>.jsonl  leaves [lo, hi) of the log, one JSON line each:
                                                     {"index", "leaf", "hash"}; segments end at
                                                     checkpoint sizes
    <prefix><org>/key.json                           the checkpoint public key

Idempotent: objects already present are skipped, so it can run from cron. The bucket must have
been created with Object Lock enabled; anything else is refused, not silently exported unlocked.
AWS credentials come from the standard chain of the server host.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from datetime import datetime, timedelta, timezone
from typing import Any

import click
from sqlalchemy import select

from hoopcli.errors import ConfigError, HoopError, Unavailable
from hoopcli.server.ledger import checkpoints as cp
from hoopcli.server.store.ledger import LedgerCheckpoint, LedgerNode, LedgerRecord

DEFAULT_RETAIN_DAYS = 2555  # about 7 years


def _aws_error(exc: Exception) -> HoopError:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
    return Unavailable(f"S3 export failed: {code}")


def check_bucket(s3: Any, bucket: str) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        conf = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("ObjectLockConfigurationNotFoundError", "InvalidRequest"):
            raise ConfigError(f"bucket {bucket} has no Object Lock; create it with Object Lock "
                              "enabled (aws s3api create-bucket --object-lock-enabled-for-bucket)") from exc
        raise _aws_error(exc) from exc
    except BotoCoreError as exc:
        raise _aws_error(exc) from exc
    if conf.get("ObjectLockEnabled") != "Enabled":
        raise ConfigError(f"bucket {bucket}: Object Lock is not enabled")


def _exists(s3: Any, bucket: str, key: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise


def _put(s3: Any, bucket: str, key: str, data: bytes, until: datetime, content_type: str) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type,
                  ContentMD5=base64.b64encode(hashlib.md5(data).digest()).decode(),
                  ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until)


def export(db: Any, org: str, s3: Any, bucket: str, *, prefix: str = "", key: cp.SigningKey | None = None,
           retain_days: int = DEFAULT_RETAIN_DAYS, now: datetime | None = None) -> dict[str, int]:
    """Copy checkpoints and the record segments they cover; returns counts of new objects."""
    from botocore.exceptions import BotoCoreError, ClientError

    now = now or datetime.now(timezone.utc)
    until = now + timedelta(days=retain_days)
    base = f"{prefix}{org}/"
    counts = {"checkpoints": 0, "segments": 0, "records": 0}
    try:
        check_bucket(s3, bucket)
        if key is not None and not _exists(s3, bucket, base + "key.json"):
            _put(s3, bucket, base + "key.json", json.dumps(key.public_info()).encode(), until,
                 "application/json")
        with db.session() as s:
            rows = list(s.scalars(select(LedgerCheckpoint).where(LedgerCheckpoint.org == org)
                                  .order_by(LedgerCheckpoint.seq)))
            done = 0
            for row in rows:
                size = int(row.size)
                if size > done:
                    seg = f"{base}records/{done:012d}-{size:012d}.jsonl"
                    if not _exists(s3, bucket, seg):
                        data = _segment(s, org, done, size)
                        _put(s3, bucket, seg, data, until, "application/x-ndjson")
                        counts["segments"] += 1
                        counts["records"] += size - done
                    done = size
                ck = f"{base}checkpoints/{row.seq:012d}.json"
                if not _exists(s3, bucket, ck):
                    doc = {"body": row.body, "signature": row.signature, "key_id": row.key_id}
                    _put(s3, bucket, ck, json.dumps(doc).encode(), until, "application/json")
                    counts["checkpoints"] += 1
    except (ClientError, BotoCoreError) as exc:
        raise _aws_error(exc) from exc
    return counts


def _segment(s: Any, org: str, lo: int, hi: int) -> bytes:
    leaves = dict(s.execute(select(LedgerRecord.leaf_index, LedgerRecord.leaf).where(
        LedgerRecord.org == org, LedgerRecord.leaf_index >= lo, LedgerRecord.leaf_index < hi)).all())
    hashes = dict(s.execute(select(LedgerNode.idx, LedgerNode.hash).where(
        LedgerNode.org == org, LedgerNode.level == 0, LedgerNode.idx >= lo, LedgerNode.idx < hi)).all())
    lines = []
    for i in range(lo, hi):
        h = hashes.get(i)
        lines.append(json.dumps({"index": i, "leaf": leaves.get(i),
                                 "hash": bytes(h).hex() if h is not None else None}, ensure_ascii=False))
    return ("\n".join(lines) + "\n").encode("utf-8")


@click.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="Server config YAML.")
@click.option("--bucket", required=True, help="An S3 bucket created with Object Lock enabled.")
@click.option("--prefix", default="", help="Key prefix, e.g. hoop/.")
@click.option("--org", default="default", show_default=True)
@click.option("--retain-days", type=click.IntRange(1, 36500), default=DEFAULT_RETAIN_DAYS, show_default=True)
@click.option("--endpoint-url", help="S3 endpoint (a sandbox such as moto_server, or a compatible store).")
@click.option("--region", default=None)
def s3export(config_file: str | None, bucket: str, prefix: str, org: str, retain_days: int,
             endpoint_url: str | None, region: str | None) -> None:
    """Copy signed checkpoints and records to S3 under Object Lock (compliance mode)."""
    import boto3

    from hoopcli.server.settings import load_settings
    from hoopcli.server.store.db import Database

    settings = load_settings(config_file)
    db = Database(settings.database_url)
    db.migrate()
    s3 = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)
    counts = export(db, org, s3, bucket, prefix=prefix, retain_days=retain_days,
                    key=cp.SigningKey.load_or_create(settings.home))
    click.echo(f"exported {counts['checkpoints']} checkpoints and {counts['records']} records "
               f"in {counts['segments']} segments to s3://{bucket}/{prefix}{org}/")


def main(argv: list[str] | None = None) -> int:
    from hoopcli.cli import run_command

    return run_command(s3export, argv, "python -m hoopcli.server.ledger.export")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
