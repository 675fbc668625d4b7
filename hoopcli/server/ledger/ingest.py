"""Ingesting transcript records into the organisation's Merkle log.

Idempotent by record id: a record already stored comes back in `duplicates` and is not appended
again. Oversized values are cut and marked (never silently dropped); a record that is not valid
against the transcript schema comes back in `rejected` with its errors.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool

from hoopcli.canonical import canonical_json
from hoopcli.server.ledger import log as ledger_log
from hoopcli.server.ledger.checkpoints import SigningKey
from hoopcli.server.ledger.writer import writer_for
from hoopcli.server.store.db import Database
from hoopcli.transcript import schema as transcript


async def ingest(db: Database, key: Callable[[], SigningKey], org: str, uploader: ledger_log.Uploader,
                 records: list[Any]) -> dict[str, Any]:
    """Append the valid records (group commit: the writer appends every waiting request's records
    in one transaction) -> {accepted, duplicates, rejected, size}. `key` is read only when
    there is something to append."""
    good, rejected = await run_in_threadpool(check_records, records)
    if good:
        fut = writer_for(db, key()).submit(org, uploader, good)
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
