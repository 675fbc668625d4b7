"""From a decoded request to the policy's answer: the same IAM actions, resources, decision and
approval binding the shim uses, from the same code (hoopcli.parse, hoopcli.policy,
hoopcli.approval.canonical).

A request becomes an Invocation of kind "sdk": its service and operation are the CLI's names
(`s3api`, `delete-object`, as approvers know them from the shim), its parameters the decoded ones,
and its one API call the classification `hoopcli.parse.call_for` gives. Idempotency tokens that
SDKs fill with a fresh UUID on every call are left out of the approval binding, so the same
request sent again after approval matches the approval.
"""

from __future__ import annotations

import json
from typing import Any

from botocore import xform_name
from botocore.model import ServiceModel

from hoopcli.approval.canonical import hash_invocation
from hoopcli.parse import call_for
from hoopcli.parse.dependent import with_dependents
from hoopcli.parse.index import cli_name_for
from hoopcli.parse.invocation import GlobalOptions, Invocation
from hoopcli.server.gateway.decode import Decoded

MAX_DISPLAY_VALUE = 200


def binding_params(model: ServiceModel, decoded: Decoded) -> dict[str, Any]:
    """The parameters an approval is bound to: all but idempotency tokens."""
    shape = model.operation_model(decoded.operation).input_shape
    if shape is None:
        return dict(decoded.params)
    tokens = {n for n, m in shape.members.items() if m.metadata.get("idempotencyToken")}
    return {k: v for k, v in decoded.params.items() if k not in tokens}


def _display(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    text = value if isinstance(value, str) else json.dumps(value, default=str, separators=(",", ":"))
    return text if len(text) <= MAX_DISPLAY_VALUE else text[:MAX_DISPLAY_VALUE] + "…"


def display_argv(cli_service: str, cli_operation: str, masked_params: dict[str, Any]) -> tuple[str, ...]:
    """What approvers and the trail show: the CLI spelling of the call, parameters masked."""
    argv = [cli_service, cli_operation]
    for name, value in masked_params.items():
        argv += ["--" + xform_name(name, "-"), _display(value)]
    return tuple(argv)


def invocation_for(model: ServiceModel, decoded: Decoded, region: str,
                   masked_params: dict[str, Any]) -> Invocation:
    cli_service = cli_name_for(decoded.service) or decoded.service
    cli_operation = xform_name(decoded.operation, "-")
    params = binding_params(model, decoded)
    call = call_for(decoded.service, decoded.operation, params, region)
    # with the actions AWS also checks for it (iam:PassRole on a role it passes, ...): a rule on
    # those decides here as in the shim (hoopcli.parse.dependent)
    return Invocation(display_argv(cli_service, cli_operation, masked_params), "sdk", cli_service, cli_operation,
                      GlobalOptions(region=region), params, with_dependents((call,), region))


def call_hash(invocation: Invocation, connection: str) -> str:
    return hash_invocation(invocation, connection)
