"""The gateway's record of one request: an `api.call` transcript record, server-observed, appended
to the session's ledger (the same Merkle log as the client's records) before the answer leaves.

Only the gateway writes `api.call` records; POST /api/v1/records refuses them from clients.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import time
import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from hoopcli.server.ledger import log as ledger_log
from hoopcli.server.ledger.ingest import check_records
from hoopcli.server.ledger.writer import writer_for

if TYPE_CHECKING:
    from hoopcli.server.gateway.service import Call

RESPONSE_CAP = 64 * 1024
GATEWAY_UPLOADER = ledger_log.Uploader("hoop-gateway", None)
_CODE = re.compile(rb"<Code>([A-Za-z0-9._:-]{1,128})</Code>|\"__type\"\s*:\s*\"(?:[^\"#]*#)?([A-Za-z0-9._:-]{1,128})\"")


def error_code(body: bytes, headers: Any) -> str | None:
    """The AWS error code of an upstream error answer (header, JSON __type or XML <Code>)."""
    value = headers.get("x-amzn-errortype") if headers is not None else None
    if value:
        return str(value).split(":", 1)[0][:128]
    match = _CODE.search(body[:8192])
    if match:
        return (match.group(1) or match.group(2)).decode("ascii", "replace")
    return None


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _approval(row: Any) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"id": row.id, "status": row.status, "approver": row.decided_by_email or row.decided_by,
            "channel": row.decision_channel,
            "requested_at": _iso(row.requested_at) if row.requested_at else None,
            "decided_at": _iso(row.decided_at) if row.decided_at else None}


def plain(value: Any) -> Any:
    """JSON-safe parameters for the record: bytes become their size (a body is not recorded),
    timestamps ISO 8601, other values as text."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and value != value:
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def build(call: Call) -> dict[str, Any]:
    credential = call.credential
    assert credential is not None
    decoded = call.decoded
    invocation = call.invocation
    decision = call.decision
    api = invocation.api_calls[0] if invocation is not None and invocation.api_calls else None
    return {
        "v": 1, "type": "api.call", "id": uuid.uuid4().hex, "session_id": credential.session_id,
        "time": _iso(call.time), "source": "gateway",
        "user": credential.principal.subject, "user_email": credential.principal.email,
        "agent": credential.agent,
        "connection": credential.connection, "region": call.region,
        "service": decoded.service if decoded else "unknown",
        "operation": decoded.operation if decoded else "unknown",
        "access_level": api.access_level if api else None,
        "actions": list(api.actions) if api else [],
        "resources": [str(r) for r in api.resources] if api else [],
        "params": plain(call.masked_params) if call.masked_params is not None else None,
        "decision": {"effect": decision.effect, "rule": decision.rule, "reason": decision.reason}
        if decision is not None else None,
        "approval": _approval(call.approval),
        "http_status": call.http_status, "error_code": call.error_code, "request_id": call.aws_request_id,
        "gateway_request_id": call.request_id,
        "duration_ms": round((time.perf_counter() - call.started) * 1000, 3),
        "bytes_in": call.bytes_in, "bytes_out": call.bytes_out,
        "response": {"text": call.response_text, "size": call.response_size,
                     "truncated": call.response_size > RESPONSE_CAP} if call.response_text is not None else None,
    }


def submit(api_app: Any, call: Call) -> concurrent.futures.Future[Any]:
    """Build and check the call's record and hand it to the ledger's writer (group commit):
    a future of the AppendResult (`check_result` says whether it was stored)."""
    from hoopcli.server.ledger.checkpoints import SigningKey

    record = build(call)
    good, rejected = check_records([record], gateway=True)
    if rejected:
        raise ValueError(f"gateway record rejected: {rejected[0]['errors'][:3]}")
    state = api_app.state
    key = getattr(state, "ledger_key", None)
    if key is None:
        key = state.ledger_key = SigningKey.load_or_create(state.settings.home)
    return writer_for(state.db, key).submit(call.credential.org if call.credential else "default",
                                            GATEWAY_UPLOADER, good)


def check_result(result: Any) -> None:
    if result.rejected:
        raise ValueError(f"gateway record rejected by the log: {str(result.rejected[0].get('errors'))[:200]}")


async def append(api_app: Any, call: Call) -> None:
    """Append the call's record and wait until it is committed."""
    check_result(await asyncio.wrap_future(submit(api_app, call)))
