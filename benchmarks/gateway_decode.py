"""CPU cost of the gateway's foundation per request: SigV4 verification + decode, in µs
(median of many runs, process CPU time), for representative requests signed by botocore.

    .venv/bin/python benchmarks/gateway_decode.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest, create_request_object, prepare_request_dict
from botocore.credentials import Credentials
from botocore.serialize import create_serializer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hoopcli.server.gateway.decode import Decoder, ServiceIndex
from hoopcli.server.gateway.request import GatewayRequest
from hoopcli.server.gateway.sigv4 import SigV4Verifier

KEY, SECRET = "HOOPBENCHKEY00000001", "bench-secret"
INDEX = ServiceIndex()
DECODER = Decoder(INDEX, domain="gw.test")
VERIFIER = SigV4Verifier({KEY: SECRET}.get)

CASES = [
    ("S3 GetObject", "s3", "GetObject", {"Bucket": "bucket", "Key": "dir/object.txt"}, "rest-xml"),
    ("DynamoDB GetItem", "dynamodb", "GetItem", {"TableName": "t", "Key": {"id": {"S": "42"}}}, "json"),
    ("SQS SendMessage (json)", "sqs", "SendMessage", {"QueueUrl": "https://sqs.eu-west-1.amazonaws.com/1/q",
                                                      "MessageBody": "hello"}, "json"),
    ("SQS SendMessage (query)", "sqs", "SendMessage", {"QueueUrl": "https://sqs.eu-west-1.amazonaws.com/1/q",
                                                       "MessageBody": "hello"}, "query"),
    ("EC2 DescribeInstances", "ec2", "DescribeInstances", {"InstanceIds": ["i-1", "i-2"], "MaxResults": 10}, "ec2"),
]


def signed(service: str, operation: str, params: dict, protocol: str) -> GatewayRequest:
    model = INDEX.model(service)
    request_dict = create_serializer(protocol, include_validation=False).serialize_to_request(
        params, model.operation_model(operation))
    prepare_request_dict(request_dict, endpoint_url="http://gw.test")
    prepared = create_request_object(request_dict).prepare()
    body = prepared.body or b""
    body = body.encode() if isinstance(body, str) else body
    aws = AWSRequest(method=prepared.method, url=prepared.url, data=body, headers=dict(prepared.headers))
    (S3SigV4Auth if service == "s3" else SigV4Auth)(Credentials(KEY, SECRET), model.signing_name,
                                                    "eu-west-1").add_auth(aws)
    parts = urlsplit(aws.url)
    headers = [(k, v) for k, v in aws.headers.items()] + [("Host", parts.netloc)]
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    return GatewayRequest.build(aws.method, target, headers, body)


def measure(request: GatewayRequest, runs: int = 2000) -> tuple[float, float, float]:
    verify, decode, total = [], [], []
    for _ in range(runs):
        t0 = time.process_time_ns()
        verified = VERIFIER.verify(request)
        t1 = time.process_time_ns()
        DECODER.decode(request, verified.service)
        t2 = time.process_time_ns()
        verify.append(t1 - t0)
        decode.append(t2 - t1)
        total.append(t2 - t0)
    return tuple(statistics.median(x) / 1000 for x in (verify, decode, total))  # type: ignore[return-value]


def main() -> None:
    print(f"{'request':28} {'verify µs':>10} {'decode µs':>10} {'total µs':>10}")
    for label, service, op, params, protocol in CASES:
        request = signed(service, op, params, protocol)
        measure(request, 50)  # warm caches (route tables, shapes)
        v, d, t = measure(request)
        print(f"{label:28} {v:10.1f} {d:10.1f} {t:10.1f}")


if __name__ == "__main__":
    main()
