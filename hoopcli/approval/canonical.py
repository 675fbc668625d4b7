"""The canonical form of one call and its SHA-256: what an approval is bound to.

The shim hashes the call it asks approval for; the server hashes its own parse of the same argv
and refuses to use an approval for any other call. Stdlib only (the shim's review path and the
server both import it)."""

from __future__ import annotations

import json
import math
from typing import Any

from hoopcli.canonical import canonical_json, sha256_hex


def _plain(value: Any) -> Any:
    """JSON-able, order-independent form of parameter values (sets sorted, bytes hex, tuples lists)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_plain(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, (bytes, bytearray)):
        return {"bytes": bytes(value).hex()}
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": repr(value)}     # NaN and infinity have no canonical JSON form
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def canonical_call(invocation: Any, connection: str) -> dict[str, Any]:
    """{service, operation, params, connection, region, endpoint_url, resources} of an Invocation.

    `resources` is the parser's resource list: a second guard so that two calls differing only in
    a resource can never share a hash even if a parser leaves a positional argument out of params.
    """
    globals_ = getattr(invocation, "globals", None)
    return {
        "service": invocation.service,
        "operation": invocation.operation,
        "params": _plain(dict(invocation.params or {})),
        "connection": connection,
        "region": getattr(globals_, "region", None),
        "endpoint_url": getattr(globals_, "endpoint_url", None),
        "resources": sorted(str(r) for r in invocation.resources),
    }


def call_hash(call: dict[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of a call form."""
    return sha256_hex(canonical_json(call))


def hash_invocation(invocation: Any, connection: str) -> str:
    return call_hash(canonical_call(invocation, connection))
