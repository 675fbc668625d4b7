"""POST /api/v1/records: ingest transcript records into the organisation's Merkle log.

Idempotent by record id: a record already stored comes back in `duplicates` and is not appended
again. Oversized values are cut and marked (never silently dropped); a record that is not valid
against the transcript schema comes back in `rejected` with its errors.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from ... import transcript
from ...errors import Unavailable
from .. import ledger_log
from ..security import Principal, get_db, require
from ..store.db import Database
from .ledger_common import signing_key

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
    records = _parse_body(await request.body())
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(ingest, request, principal, db, records)


def ingest(request: Request, principal: Principal, db: Database, records: list[Any]) -> dict[str, Any]:
    good: list[tuple[int, dict[str, Any], list[str]]] = []
    rejected: list[dict[str, Any]] = []
    for index, record in enumerate(records):
        rid = record.get("id") if isinstance(record, dict) and isinstance(record.get("id"), str) else None
        if isinstance(record, dict):
            try:
                transcript.canonical_json(record)
                record, marks = transcript.apply_caps(record)
                errors = transcript.validate(record)
            except (ValueError, TypeError, RecursionError):
                errors = ["$: not representable as canonical JSON (NaN, or nested too deeply)"]
        else:
            errors = transcript.validate(record)
        if errors:
            rejected.append({"index": index, "id": rid, "errors": errors[:20]})
            continue
        good.append((index, record, marks))
    uploader = ledger_log.Uploader(principal.subject, principal.email)
    key = signing_key(request)
    attempts = 0
    while True:
        try:
            with db.session() as s:
                result = ledger_log.append(s, principal.org, uploader, good, key=key)
            break
        except OperationalError as exc:  # SQLite busy past its timeout, PG deadlock/serialization
            attempts += 1
            if attempts >= 3:
                raise Unavailable(f"the ledger is busy: {type(exc.orig).__name__}") from exc
        except SQLAlchemyError as exc:
            # e.g. two servers racing on the same record id: the unique constraint holds; retry
            # once so the loser reports the record as a duplicate.
            attempts += 1
            if attempts >= 3:
                raise Unavailable("cannot store the records now") from exc
    return {"accepted": result.accepted, "duplicates": result.duplicates,
            "rejected": rejected + result.rejected, "size": result.size}
