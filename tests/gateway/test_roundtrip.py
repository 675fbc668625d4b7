"""Round trip through botocore's own serializers: a fast sample in `make test`, every operation
of every service in `make soak`."""

from __future__ import annotations

import pytest
from gateway_roundtrip import ALIAS, ENDPOINT_PREFIX, INDEX, SESSION, TWIN, all_operations, round_trip, sweep

SAMPLE = [(s, ops[i]) for s in SESSION.get_available_services()
          for ops in [INDEX.model(s).operation_names] for i in range(0, len(ops), max(1, len(ops) // 2))][::3]
KNOWN = {"greengrassv2"}  # shares endpoint and paths with greengrass v1, whose member names differ


@pytest.mark.parametrize("service, operation", [op for op in SAMPLE if op[0] not in KNOWN])
def test_sample_decodes_exactly(service: str, operation: str) -> None:
    assert round_trip(service, operation) in (None, ENDPOINT_PREFIX, ALIAS, TWIN)


@pytest.mark.parametrize("service, operation", [("s3", "PutObject"), ("s3", "GetObject"), ("s3", "ListObjectsV2"),
                                                ("s3", "CreateMultipartUpload"), ("s3", "UploadPartCopy"),
                                                ("dynamodb", "GetItem"), ("sqs", "SendMessage"),
                                                ("ec2", "DescribeInstances"), ("iam", "CreateAccessKey"),
                                                ("lambda", "Invoke"), ("s3control", "GetAccessPoint")])
def test_representative_operations_decode_exactly(service: str, operation: str) -> None:
    assert round_trip(service, operation) is None


def test_the_round_trip_can_fail() -> None:
    from gateway_roundtrip import DECODER, Generator, request_for

    model = INDEX.model("dynamodb")
    op = model.operation_model("GetItem")
    params = Generator().params(op)
    decoded = DECODER.decode(request_for(model, op, params), "dynamodb")
    params["TableName"] += "x"
    assert decoded.params != params


@pytest.mark.soak
def test_full_sweep_decodes_at_least_99_5_percent() -> None:
    total, failures = sweep(all_operations())
    for ok in (ENDPOINT_PREFIX, ALIAS, TWIN):
        failures.pop(ok, None)
    failed = sum(len(v) for v in failures.values())
    assert (total - failed) / total >= 0.995, dict(failures)
