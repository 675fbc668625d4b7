"""POST /api/v1/records: ingest transcript records into the organisation's Merkle log.

Idempotent by record id: a record already stored comes back in `duplicates` and is not appended
again. Oversized values are cut and marked (never silently dropped); a record that is not valid
against the transcript schema comes back in `rejected` with its errors.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request

from hoopcli.canonical import canonical_json
from hoopcli.server.identity.security import Principal, get_db, require
from hoopcli.server.ledger import log as ledger_log
from hoopcli.server.ledger.common import signing_key
from hoopcli.server.store.db import Database
from hoopcli.transcript import schema as transcript

router = APIRouter(prefix="/api/v1", tags=["records"])

MAX_RECORDS_PER_REQUEST = 500


def _parse_body(raw: bytes) -> list[Any]:
    if not raw:
        raise HTTPException(400, "empty body; send {\"records\": [...]}")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise HTTPException(400, "the body is not valid JSON (or nested too deeply)") from None
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise HTTPException(422, "send a JSON object {\"records\": [record, ...]}")
    records = body["records"]
    if len(records) > MAX_RECORDS_PER_REQUEST:
        raise HTTPException(413, f"at most {MAX_RECORDS_PER_REQUEST} records per request "
                                 f"(got {len(records)}); send several requests")
    return records


@router.post("/records")
async def post_records(request: Request, principal: Principal = Depends(require()),
                       db: Database = Depends(get_db)) -> dict[str, Any]:
    import asyncio

    from starlette.concurrency import run_in_threadpool

    from hoopcli.server.ledger.writer import writer_for

    records = _parse_body(await request.body())
    good, rejected = await run_in_threadpool(check_records, records)
    uploader = ledger_log.Uploader(principal.subject, principal.email)
    if good:
        # group commit: the writer appends every waiting request's records in one transaction
        fut = writer_for(db, signing_key(request)).submit(principal.org, uploader, good)
        result = await asyncio.wrap_future(fut)
    else:
        result = ledger_log.AppendResult()
    return {"accepted": result.accepted, "duplicates": result.duplicates,
            "rejected": rejected + result.rejected, "size": result.size}


def check_records(records: list[Any]) -> tuple[list[tuple[int, dict[str, Any], list[str]]], list[dict[str, Any]]]:
    """Validate and cap each record: (good [(index, record, marks)], rejected [{index, id, errors}])."""
    good: list[tuple[int, dict[str, Any], list[str]]] = []
    rejected: list[dict[str, Any]] = []
    for index, record in enumerate(records):
        rid = record.get("id") if isinstance(record, dict) and isinstance(record.get("id"), str) else None
        marks: list[str] = []
        if isinstance(record, dict):
            try:
                size = len(canonical_json(record))
                record, marks = transcript.apply_caps(record, encoded_size=size)
                errors = transcript.validate(record)
            except (ValueError, TypeError, RecursionError):
                errors = ["$: not representable as canonical JSON (NaN, or nested too deeply)"]
        else:
            errors = transcript.validate(record)
        if errors:
            rejected.append({"index": index, "id": rid, "errors": errors[:20]})
            continue
        good.append((index, record, marks))
    return good, rejected
