"""The gateway's records: one server-observed `api.call` per AWS request an agent makes through
the hoop gateway, appended to the session's ledger by the server itself.

Command records (command.start / command.result) are what a client *reports*; an api.call is
what the server *saw* (it authenticated the caller, decided, forwarded and read the answer), so
it is authoritative. Only this module's path may append one: POST /records refuses the type and
the `source` field (hoopcli.server.ledger.ingest.provenance_errors).

    record = gateway_record(session_id=..., service="s3", operation="DeleteObject", user=sub, ...)
    future = append_api_calls(db, signing_key, org, [record])     # never waits on the database
    result = future.result()        # or: await asyncio.wrap_future(future)
    # result.accepted / .duplicates / .rejected ({index, id, errors}) / .size

Everything passed in must already be masked (params, response text); values past the
transcript caps are cut and marked here as on ingest.
"""

from __future__ import annotations

import concurrent.futures
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from hoopcli.server.ledger import log as ledger_log
from hoopcli.server.ledger.checkpoints import SigningKey
from hoopcli.server.ledger.ingest import check_records
from hoopcli.server.ledger.writer import writer_for
from hoopcli.transcript.schema import SCHEMA_VERSION

GATEWAY = ledger_log.Uploader(ledger_log.GATEWAY_SUBJECT, None)


def _rfc3339(value: datetime | str | None) -> str:
    if isinstance(value, str):
        return value
    when = (value or datetime.now(timezone.utc))
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _response(text: str | bytes | None, size: int | None, truncated: bool) -> dict[str, Any] | None:
    if text is None:
        return None
    if isinstance(text, bytes):
        raw, text = text, text.decode("utf-8", errors="replace")
    else:
        raw = text.encode("utf-8", "surrogatepass")
    return {"text": text, "size": max(len(raw), size or 0),
            "truncated": truncated or (size is not None and size > len(raw))}


def gateway_record(*, session_id: str, service: str, operation: str,
                   decision: Mapping[str, Any] | None, time: datetime | str | None = None, user: str | None = None,
                   user_email: str | None = None, agent: str | None = None,
                   connection: str | None = None, region: str | None = None,
                   access_level: str | None = None, actions: Sequence[str] = (),
                   resources: Sequence[str] = (), params: Mapping[str, Any] | None = None,
                   approval: Mapping[str, Any] | None = None, http_status: int | None = None,
                   error_code: str | None = None, request_id: str | None = None,
                   gateway_request_id: str | None = None, duration_ms: float | None = None, bytes_in: int | None = None,
                   bytes_out: int | None = None, response_text: str | bytes | None = None,
                   response_size: int | None = None, response_truncated: bool = False,
                   id: str | None = None) -> dict[str, Any]:
    """One `api.call` record (docs/transcript.md).

    `time`: when the request arrived (default now). `user`: the subject the gateway
    authenticated (the session belongs to it: a session another user owns refuses the record);
    `user_email` its email. `service` is botocore's service name, `operation` the API name.
    `params` and `response_text` must be masked by the caller; `response_size` is the size
    before the caller cut the text, if it did (`response_truncated` then True). `decision` is
    {effect, rule, reason}, or None when the request was refused before policy could decide
    (e.g. it could not be decoded); `approval` {id, approver, channel, requested_at,
    decided_at} or None. `request_id` is AWS's (x-amz-request-id), `gateway_request_id` the
    gateway's own id of the request, if it has one."""
    return {
        "v": SCHEMA_VERSION, "type": ledger_log.API_CALL, "id": id or uuid.uuid4().hex,
        "session_id": session_id, "time": _rfc3339(time), "source": "gateway",
        "user": user, "user_email": user_email, "agent": agent, "connection": connection,
        "region": region, "service": service, "operation": operation,
        "access_level": access_level, "actions": list(actions), "resources": list(resources),
        "params": dict(params) if params is not None else None,
        "decision": dict(decision) if decision is not None else None,
        "approval": dict(approval) if approval is not None else None,
        "http_status": http_status, "error_code": error_code, "request_id": request_id,
        "gateway_request_id": gateway_request_id,
        "duration_ms": duration_ms, "bytes_in": bytes_in, "bytes_out": bytes_out,
        "response": _response(response_text, response_size, response_truncated),
    }


def append_api_calls(db: Any, key: SigningKey, org: str, records: Sequence[Any]
                     ) -> concurrent.futures.Future[ledger_log.AppendResult]:
    """Validate and cap gateway records, then hand them to the ledger's writer (group commit).

    Returns at once with a future of the AppendResult: `accepted` (appended now), `duplicates`
    (that id is already in the log), `rejected` ({index, id, errors}: not an api.call with
    `"source": "gateway"`, invalid against the schema, or its session belongs to another user).
    The future raises `hoopcli.errors.Unavailable` when the database cannot take the records."""
    good, rejected = check_records(list(records), gateway=True)
    done: concurrent.futures.Future[ledger_log.AppendResult] = concurrent.futures.Future()
    if not good:
        done.set_result(ledger_log.AppendResult(rejected=rejected))
        return done
    inner = writer_for(db, key).submit(org, GATEWAY, good)

    def finish(fut: concurrent.futures.Future[ledger_log.AppendResult]) -> None:
        exc = fut.exception()
        if exc is not None:
            done.set_exception(exc)
            return
        res = fut.result()
        res.rejected = sorted(rejected + res.rejected, key=lambda r: r["index"])
        done.set_result(res)

    inner.add_done_callback(finish)
    return done
