"""Issue 15, item 3: a session policy never falls back to Resource "*" by accident."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hoopcli.parse import parse
from hoopcli.server.credentials.broker import MAX_PACKED_POLICY, ScopeUnbounded, session_policy


def test_a_file_value_is_not_widened_to_every_resource(tmp_path: Path) -> None:
    name = tmp_path / "bucket.txt"
    name.write_text("other-bucket")
    inv = parse(["s3api", "delete-object", "--bucket", f"file://{name}", "--key", "k"])
    with pytest.raises(ScopeUnbounded, match=r"cannot bound s3:DeleteObject \(DeleteObject\)"):
        session_policy(inv)


def test_a_crafted_long_key_fails_closed() -> None:
    inv = parse(["s3", "rm", "s3://mine/" + "k" * 3000])
    with pytest.raises(ScopeUnbounded) as info:
        session_policy(inv)
    assert f"({MAX_PACKED_POLICY})" in info.value.message
    assert "split the command" in (info.value.hint or "")


def test_operations_without_resources_keep_star_and_arns_stay_exact() -> None:
    assert session_policy(parse(["sqs", "list-queues"]))["Statement"] == [
        {"Effect": "Allow", "Action": ["sqs:ListQueues"], "Resource": "*"}]
    policy = session_policy(parse(["s3", "rm", "s3://b/dir", "--recur"]))
    text = json.dumps(policy)
    assert '"Resource": "*"' not in text
    assert {"Effect": "Allow", "Action": ["s3:DeleteObject"], "Resource": ["arn:aws:s3:::b/dir*"]} \
        in policy["Statement"]


def test_an_sqs_queue_url_is_its_queue_arn() -> None:
    policy = session_policy(parse(["sqs", "receive-message", "--queue-url",
                                   "https://sqs.eu-west-1.amazonaws.com/123456789012/q"]))
    assert policy["Statement"] == [{"Effect": "Allow", "Action": ["sqs:ReceiveMessage"],
                                    "Resource": ["arn:aws:sqs:eu-west-1:123456789012:q"]}]


def test_an_ssm_parameter_name_is_its_parameter_arn() -> None:
    policy = session_policy(parse(["ssm", "get-parameter", "--name", "/app/db", "--region", "eu-west-1"]))
    assert policy["Statement"] == [{"Effect": "Allow", "Action": ["ssm:GetParameter"],
                                    "Resource": ["arn:aws:ssm:eu-west-1:*:parameter/app/db"]}]
