"""Issue 15, item 2: a reviewed command's API calls are checked against what was approved:
actions, resources and the parameters the approver saw, not only action names."""

from __future__ import annotations

from hoopcli.parse import call_for, parse
from hoopcli.parse.scope import outside_approval


def test_same_action_other_resource_is_refused() -> None:
    inv = parse(["s3api", "delete-object", "--bucket", "mine", "--key", "a"])
    ok = call_for("s3", "DeleteObject", {"Bucket": "mine", "Key": "a"})
    assert outside_approval(ok, inv) is None
    other = call_for("s3", "DeleteObject", {"Bucket": "prod", "Key": "a"})
    why = outside_approval(other, inv)
    assert why is not None and "s3:DeleteObject on arn:aws:s3:::prod/a is outside what was approved" in why


def test_a_parameter_the_approver_saw_must_be_sent_as_shown() -> None:
    inv = parse(["guardduty", "update-detector", "--detector-id", "d", "--enable"])
    sent = call_for("guardduty", "UpdateDetector", {"DetectorId": "d", "Enable": False})
    why = outside_approval(sent, inv)
    assert why is not None and "sends Enable='false', not the 'true' the approval showed" in why
    assert outside_approval(call_for("guardduty", "UpdateDetector", {"DetectorId": "d", "Enable": True}),
                            inv) is None


def test_recursive_delete_covers_keys_under_the_prefix_only() -> None:
    inv = parse(["s3", "rm", "s3://b/dir/", "--recur"])
    assert outside_approval(call_for("s3", "ListObjectsV2", {"Bucket": "b", "Prefix": "dir/"}), inv) is None
    assert outside_approval(call_for("s3", "DeleteObject", {"Bucket": "b", "Key": "dir/x/y"}), inv) is None
    why = outside_approval(call_for("s3", "DeleteObject", {"Bucket": "b", "Key": "other"}), inv)
    assert why is not None and "outside what was approved" in why


def test_an_action_not_approved_is_refused() -> None:
    inv = parse(["s3api", "get-object", "--bucket", "b", "--key", "k", "out"])
    why = outside_approval(call_for("s3", "DeleteObject", {"Bucket": "b", "Key": "k"}), inv)
    assert why is not None and why.startswith("s3:DeleteObject (s3:DeleteObject) was not part of the approved command")
