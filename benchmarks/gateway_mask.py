"""CPU cost of masking a response body at the gateway, in µs (median of many runs, process CPU
time), for responses that hold nothing secret (the common case, returned byte for byte) and for
one that does.

    .venv/bin/python benchmarks/gateway_mask.py
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import botocore.session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hoopcli.masking import Masker
from hoopcli.server.gateway.mask import ResponseMasker

SESSION = botocore.session.get_session()
MASKER = ResponseMasker(Masker(b"bench-key-0123456789abcdef"))


def list_objects_v2(count: int = 7) -> bytes:
    contents = "".join(
        f"<Contents><Key>reports/2024/{i:04d}/summary-{i}.csv</Key><LastModified>2024-01-02T03:04:05.000Z"
        f"</LastModified><ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag><Size>{1000 + i}</Size>"
        f"<StorageClass>STANDARD</StorageClass></Contents>" for i in range(count))
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<Name>example-bucket</Name><Prefix>reports/</Prefix><KeyCount>{count}</KeyCount><MaxKeys>1000</MaxKeys>"
            f"<IsTruncated>false</IsTruncated>{contents}</ListBucketResult>").encode()


GET_ITEM = json.dumps({"Item": {"pk": {"S": "customer#42"}, "sk": {"S": "order#2024-01-02"},
                                "total": {"N": "129.90"}, "items": {"L": [{"S": "sku-1"}, {"S": "sku-2"}]},
                                "address": {"M": {"city": {"S": "Lisbon"}, "zip": {"S": "1100-148"}}}}}).encode()
SECRET = json.dumps({"ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf", "Name": "db",
                     "SecretString": '{"username":"app","password":"s3cr3t-Pa55"}', "VersionId": "v1",
                     "VersionStages": ["AWSCURRENT"], "CreatedDate": 1700000000.0}).encode()

CASES = [
    ("S3 ListObjectsV2 (rest-xml)", "s3", "ListObjectsV2", "rest-xml", list_objects_v2()),
    ("DynamoDB GetItem (json)", "dynamodb", "GetItem", "json", GET_ITEM),
    ("Secrets Manager GetSecretValue (json, masked)", "secretsmanager", "GetSecretValue", "json", SECRET),
]


def measure(service: str, operation: str, protocol: str, body: bytes, runs: int = 2000) -> float:
    model = SESSION.get_service_model(service)
    MASKER.mask(model, operation, protocol, 200, {}, body)  # warm caches
    samples = []
    for _ in range(runs):
        start = time.process_time_ns()
        MASKER.mask(model, operation, protocol, 200, {}, body)
        samples.append(time.process_time_ns() - start)
    return statistics.median(samples) / 1000


def main() -> None:
    print(f"{'response':48} {'bytes':>6} {'µs':>8}")
    for label, service, operation, protocol, body in CASES:
        print(f"{label:48} {len(body):>6} {measure(service, operation, protocol, body):>8.1f}")


if __name__ == "__main__":
    main()
