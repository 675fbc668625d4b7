"""The canonical call form and its hash: one approval binds exactly one call."""

from __future__ import annotations

import json

from approvals_helpers import make_invocation

from hoopcli.approval.canonical import call_hash, canonical_call, hash_invocation
from hoopcli.canonical import canonical_json


def test_canonical_form_has_the_agreed_keys() -> None:
    call = canonical_call(make_invocation("a", "eu-west-1"), "prod")
    assert call == {
        "service": "s3", "operation": "rb", "params": {"paths": "s3://a"}, "connection": "prod",
        "region": "eu-west-1", "endpoint_url": None, "resources": ["arn:aws:s3:::a"],
    }
    assert json.loads(canonical_json(call)) == call


def test_hash_is_sha256_of_sorted_compact_json() -> None:
    import hashlib

    call = canonical_call(make_invocation("a"), "default")
    expected = hashlib.sha256(json.dumps(call, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert call_hash(call) == expected
    assert len(expected) == 64


def test_same_call_same_hash_any_key_order() -> None:
    a = canonical_call(make_invocation("a"), "default")
    b = dict(reversed(list(a.items())))
    assert call_hash(a) == call_hash(b)


def test_every_part_of_the_call_changes_the_hash() -> None:
    base = hash_invocation(make_invocation("a"), "default")
    assert hash_invocation(make_invocation("b"), "default") != base          # the bucket
    assert hash_invocation(make_invocation("a"), "prod") != base             # the connection
    assert hash_invocation(make_invocation("a", "eu-west-1"), "default") != base  # the region
    assert hash_invocation(make_invocation("a", op="rm"), "default") != base  # the operation


def test_non_json_parameter_values_hash_deterministically() -> None:

    inv = make_invocation("a").replace(params={"Body": b"\x00\x01", "Tags": {"b", "a"}, "N": (1, 2)})
    first = hash_invocation(inv, "default")
    inv2 = make_invocation("a").replace(params={"N": [1, 2], "Tags": {"a", "b"}, "Body": bytearray(b"\x00\x01")})
    assert hash_invocation(inv2, "default") == first
