"""argv -> Invocation: service, operation, API calls, IAM actions and access level.

Stdlib-only at module level: this runs on every `aws` call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Access levels of the Service Authorization Reference, from least to most powerful. "Unknown"
# is never treated as read-only: policy treats it like Write or stricter.
LIST = "List"
READ = "Read"
TAGGING = "Tagging"
WRITE = "Write"
PERMISSIONS = "Permissions management"
UNKNOWN = "Unknown"
ACCESS_LEVEL_RANK = {LIST: 0, READ: 1, TAGGING: 2, WRITE: 3, PERMISSIONS: 4, UNKNOWN: 5}
READ_ONLY_LEVELS = frozenset({LIST, READ})
# `aws configure` subcommands that only read the local configuration (no AWS call, no secret).
CONFIGURE_READ_ONLY = frozenset({"list", "list-profiles"})


def strictest(levels: Any) -> str:
    """The most powerful access level of `levels` (Unknown beats everything); List when empty."""
    best = LIST
    for level in levels:
        if ACCESS_LEVEL_RANK.get(level, 5) > ACCESS_LEVEL_RANK[best]:
            best = level if level in ACCESS_LEVEL_RANK else UNKNOWN
    return best


@dataclass(frozen=True)
class GlobalOptions:
    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    output: str | None = None
    query: str | None = None
    debug: bool = False
    no_verify_ssl: bool = False
    no_paginate: bool = False
    no_sign_request: bool = False
    ca_bundle: str | None = None
    cli_read_timeout: str | None = None
    cli_connect_timeout: str | None = None
    color: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, False)}


@dataclass(frozen=True)
class ApiCall:
    """One AWS API call an invocation makes (or may make)."""

    service: str                     # botocore service name: "s3", "cloudwatch", "ec2"
    operation: str                   # API operation name: "ListObjectsV2"
    actions: tuple[str, ...]         # IAM actions: ("s3:ListBucket",)
    access_level: str                # one of the levels above
    resources: tuple[str, ...] = ()  # ARNs or names derived from the parameters
    params: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "operation": self.operation,
            "actions": list(self.actions),
            "access_level": self.access_level,
            "resources": list(self.resources),
        }


@dataclass(frozen=True)
class Invocation:
    """A parsed `aws ...` command line."""

    argv: tuple[str, ...]                 # the arguments after `aws`, as given
    kind: str                             # api | s3 | help | version | configure | wait | custom
    service: str                          # CLI command name: "s3api", "s3", "cloudwatch"
    operation: str | None                 # CLI operation name: "list-buckets", "cp", None for `--version`
    globals: GlobalOptions = GlobalOptions()
    params: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    api_calls: tuple[ApiCall, ...] = ()

    @property
    def api_operations(self) -> list[str]:
        return [c.operation for c in self.api_calls]

    @property
    def actions(self) -> list[str]:
        seen: dict[str, None] = {}
        for call in self.api_calls:
            for action in call.actions:
                seen.setdefault(action, None)
        return list(seen)

    @property
    def resources(self) -> list[str]:
        seen: dict[str, None] = {}
        for call in self.api_calls:
            for res in call.resources:
                seen.setdefault(res, None)
        return list(seen)

    @property
    def access_level(self) -> str:
        if not self.api_calls:
            if self.kind in ("help", "version"):
                return LIST
            if self.kind == "configure" and self.operation in CONFIGURE_READ_ONLY:
                return READ
            return UNKNOWN
        return strictest(c.access_level for c in self.api_calls)

    @property
    def read_only(self) -> bool:
        return self.access_level in READ_ONLY_LEVELS

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "operation": self.operation,
            "kind": self.kind,
            "api_operations": self.api_operations,
            "actions": self.actions,
            "access_level": self.access_level,
            "resources": self.resources,
            "globals": self.globals.to_dict(),
            "api_calls": [c.to_dict() for c in self.api_calls],
        }


def parse(argv: list[str] | tuple[str, ...]) -> Invocation:
    """Parse the arguments after `aws`. Raises InvocationError for anything unclassifiable.

    Globals are accepted anywhere on the line, like the real CLI; the service, operation, API
    calls, IAM actions, access levels and resources come from the generated index in
    hoopcli/actions/data (see docs/explain.md).
    """
    from .actions.parser import parse as _parse

    return _parse(argv)


def call_for(service: str, operation: str, params: dict[str, Any] | None = None,
             region: str | None = None) -> ApiCall:
    """Classify one real API call (botocore service model name, API operation name, final
    parameters): actions, access level and resources. Never raises for unknown names: an
    operation missing from the index is access level Unknown."""
    from .actions.parser import call_for as _call_for

    return _call_for(service, operation, params or {}, region)
