"""Ingesting transcript records into the organisation's Merkle log.

Idempotent by record id: a record already stored comes back in `duplicates` and is not appended
again. Oversized values are cut and marked (never silently dropped); a record that is not valid
against the transcript schema comes back in `rejected` with its errors.

Provenance: POST /records carries what a client *reports* (command.start, command.result). The
server-observed record type (api.call, written by the hoop gateway through
hoopcli.server.ledger.calls) and the `source` field that marks it are refused there: a client
must never be able to forge a record the log presents as seen by the server.
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


def provenance_errors(record: Any, *, gateway: bool) -> list[str]:
    """Who may write this record: a client only command records without a `source`; the
    gateway only api.call records with `"source": "gateway"`."""
    if not isinstance(record, dict):
        return []
    kind = record.get("type")
    if gateway:
        errors = [] if kind in transcript.SERVER_RECORD_TYPES else \
            [f"$.type: the gateway writes only {', '.join(transcript.SERVER_RECORD_TYPES)} records"]
        if record.get("source") != "gateway":
            errors.append('$.source: a gateway record must say "source": "gateway"')
        return errors
    errors = []
    if kind in transcript.SERVER_RECORD_TYPES:
        errors.append(f"$.type: {kind} records are observed and written by the hoop server's gateway "
                      "only; a client cannot upload them")
    if "source" in record:
        errors.append("$.source: reserved for records the server observes (the hoop gateway); "
                      "a client record may not carry it")
    return errors


def check_records(records: list[Any], *, gateway: bool = False
                  ) -> tuple[list[tuple[int, dict[str, Any], list[str]]], list[dict[str, Any]]]:
    """Validate and cap each record: (good [(index, record, marks)], rejected [{index, id, errors}]).

    `gateway=False` (POST /records): server-observed records (api.call, or anything carrying
    `source`) are rejected. `gateway=True` (hoopcli.server.ledger.calls): only api.call records
    with `"source": "gateway"` pass."""
    good: list[tuple[int, dict[str, Any], list[str]]] = []
    rejected: list[dict[str, Any]] = []
    for index, record in enumerate(records):
        rid = record.get("id") if isinstance(record, dict) and isinstance(record.get("id"), str) else None
        marks: list[str] = []
        forged = provenance_errors(record, gateway=gateway)
        if forged:
            rejected.append({"index": index, "id": rid, "errors": forged})
            continue
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
