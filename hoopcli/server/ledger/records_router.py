"""POST /api/v1/records: ingest transcript records into the organisation's Merkle log
(hoopcli.server.ledger.ingest: idempotent by record id; oversized values cut and marked; records
not valid against the transcript schema come back in `rejected`)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request

from hoopcli.server.errors import BadRequest, TooLarge, Unprocessable
from hoopcli.server.identity.security import Principal, get_db, require
from hoopcli.server.ledger import log as ledger_log
from hoopcli.server.ledger.common import signing_key
from hoopcli.server.ledger.ingest import ingest
from hoopcli.server.store.db import Database

router = APIRouter(prefix="/api/v1", tags=["records"])

MAX_RECORDS_PER_REQUEST = 500


def _parse_body(raw: bytes) -> list[Any]:
    if not raw:
        raise BadRequest("empty body; send {\"records\": [...]}")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadRequest("the body is not valid JSON (or nested too deeply)") from None
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise Unprocessable("send a JSON object {\"records\": [record, ...]}")
    records = body["records"]
    if len(records) > MAX_RECORDS_PER_REQUEST:
        raise TooLarge(f"at most {MAX_RECORDS_PER_REQUEST} records per request "
                       f"(got {len(records)}); send several requests")
    return records


@router.post("/records")
async def post_records(request: Request, principal: Principal = Depends(require()),
                       db: Database = Depends(get_db)) -> dict[str, Any]:
    records = _parse_body(await request.body())
    uploader = ledger_log.Uploader(principal.subject, principal.email)
    return await ingest(db, lambda: signing_key(request), principal.org, uploader, records)
