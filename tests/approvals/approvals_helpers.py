"""Helpers for the approvals tests: real Invocations, Decisions and Principals (no parser needed)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ -> `fakes` importable

from hoopcli.invocation import ApiCall, GlobalOptions, Invocation  # noqa: E402
from hoopcli.policy.model import Decision, ReviewSpec  # noqa: E402
from hoopcli.server.security import Principal, roles_for  # noqa: E402
from hoopcli.server.settings import DEFAULT_ROLES  # noqa: E402


def make_invocation(bucket: str = "a", region: str | None = None, op: str = "rb") -> Invocation:
    """`aws s3 rb s3://BUCKET` as the parser describes it (built directly: no parser needed)."""
    call = ApiCall("s3", "DeleteBucket", ("s3:DeleteBucket",), "Write", (f"arn:aws:s3:::{bucket}",),
                   {"Bucket": bucket})
    return Invocation(argv=("s3", op, f"s3://{bucket}") + (("--region", region) if region else ()),
                      kind="s3", service="s3", operation=op, globals=GlobalOptions(region=region),
                      params={"paths": f"s3://{bucket}"}, api_calls=(call,))


def review(approvers: tuple[str, ...] = ("self",), channels: tuple[str, ...] = ("terminal", "cli", "slack", "web"),
           justification: bool = False, expiry: int = 1800) -> Decision:
    return Decision("review", "review-writes", "changes are reviewed",
                    ReviewSpec(approvers=approvers, channels=channels, expiry=expiry, wait=600,
                               require_justification=justification))


def principal(sub: str, groups: tuple[str, ...] = (), org: str = "default") -> Principal:
    return Principal(subject=sub, email=f"{sub}@example.com", name=sub, groups=groups,
                     roles=roles_for(groups, dict(DEFAULT_ROLES)), org=org)
