"""One upload pass: send spooled records to POST /api/v1/records (used by `hoop sync` and the
background uploader). Idempotent by record id; the server's reasons for refusing a record end up
next to it in spool/quarantine/.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hoopcli.errors import HoopError, Unavailable

if TYPE_CHECKING:
    from hoopcli.record.spool import Spool

RECORDS_PATH = "/api/v1/records"
BATCH_RECORDS = 100
BATCH_BYTES = 768 << 10          # the server's default body limit is 1 MiB
MIN_SHRINK_BYTES = 8 << 10
CUT_OFF_MIN_BODY = 256 << 10     # a connection cut while sending less than this is a network fault


def _post(client: Any, records: list[dict[str, Any]]) -> tuple[set[str], dict[int, str]]:
    """POST a batch: the ids the server accepted or already had, and {batch index: why} of the
    records it rejected (the ledger answers 200 with `rejected: [{index, id, errors}]`)."""
    body = client.post(RECORDS_PATH, json={"records": records}).json()
    if not isinstance(body, dict):
        raise Unavailable("the hoop server sent an unexpected answer to POST /api/v1/records")
    done: set[str] = set()
    for key in ("accepted", "duplicates"):
        ids = body.get(key) or []
        if isinstance(ids, list):
            done.update(i for i in ids if isinstance(i, str))
    rejected: dict[int, str] = {}
    for item in body.get("rejected") or []:
        if isinstance(item, dict) and isinstance(item.get("index"), int) \
                and 0 <= item["index"] < len(records):
            errors = item.get("errors")
            why = "; ".join(str(e) for e in errors[:5]) if isinstance(errors, list) else "rejected"
            rejected[item["index"]] = why
    return done, rejected


def _shrunk(record: dict[str, Any]) -> dict[str, Any] | None:
    """`record` cut to half its encoded size (marked `record_truncated`), for a server whose body
    limit is below the record; None once it is as small as it sensibly gets."""
    from hoopcli.record.spool import encode_record

    limit = len(encode_record(record, 1 << 62)) // 2
    if limit < MIN_SHRINK_BYTES:
        return None
    smaller: dict[str, Any] = json.loads(encode_record(record, limit))
    return smaller


def _cut_off(exc: BaseException) -> bool:
    """True when the server closed the connection while we were still sending (EPIPE/ECONNRESET):
    what a server does when it answers 413 on Content-Length before reading a large body."""
    seen: BaseException | None = exc
    for _ in range(6):
        if isinstance(seen, (BrokenPipeError, ConnectionResetError)):
            return True
        reason = getattr(seen, "reason", None)        # urllib's URLError wraps the OSError
        seen = reason if isinstance(reason, BaseException) else getattr(seen, "__cause__", None)
        if seen is None:
            return False
    return False


def _body_size(batch: list[tuple[Path, dict[str, Any]]]) -> int:
    return len(json.dumps({"records": [rec for _, rec in batch]}, separators=(",", ":")))


def _send(spool: Spool, client: Any, batch: list[tuple[Path, dict[str, Any]]]) -> tuple[int, int]:
    """Send one batch. Records the server rejects are quarantined with its reason, so a bad record
    cannot block the rest; a batch refused as a whole (4xx) is split until the bad record is found.

    A body too large for the server (413, or the connection cut mid-send on a large body) is
    split; a single record too large is sent cut to half its size, marked `record_truncated`,
    until it fits: cut with a mark, never dropped. The spool keeps the full record until the
    server confirms the cut one."""
    from hoopcli.client import Forbidden, ServerError

    try:
        done, rejected = _post(client, [rec for _, rec in batch])
    except Forbidden:
        raise
    except Unavailable as exc:
        if not (_cut_off(exc) and _body_size(batch) > CUT_OFF_MIN_BODY):
            raise
        return _too_large(spool, client, batch, exc)
    except ServerError as exc:
        if exc.status == 413:
            return _too_large(spool, client, batch, exc)
        if len(batch) > 1:
            return _split(spool, client, batch)
        spool.quarantine(batch[0][0], f"server refused the record (HTTP {exc.status}): {exc.message}"[:500])
        return 0, 1
    spool.ack(done)
    for index, why in rejected.items():
        path, rec = batch[index]
        if rec.get("id") not in done:
            spool.quarantine(path, f"server rejected the record: {why}"[:1000])
    sent = sum(1 for _, rec in batch if rec.get("id") in done)
    return sent, len(batch) - sent


def _split(spool: Spool, client: Any, batch: list[tuple[Path, dict[str, Any]]]) -> tuple[int, int]:
    mid = len(batch) // 2
    a = _send(spool, client, batch[:mid])
    b = _send(spool, client, batch[mid:])
    return a[0] + b[0], a[1] + b[1]


def _too_large(spool: Spool, client: Any, batch: list[tuple[Path, dict[str, Any]]],
               exc: HoopError) -> tuple[int, int]:
    if len(batch) > 1:
        return _split(spool, client, batch)
    path, record = batch[0]
    smaller = _shrunk(record)
    if smaller is not None:
        return _send(spool, client, [(path, smaller)])
    if isinstance(exc, Unavailable):
        raise exc
    spool.quarantine(path, f"server refused the record as too large: {exc.message}"[:500])
    return 0, 1


def upload(spool: Spool, client: Any, limit: int | None = None, *,
           batch_records: int = BATCH_RECORDS, batch_bytes: int = BATCH_BYTES) -> tuple[int, int]:
    """Send up to `limit` pending records, oldest first, in batches: (sent, failed).

    `sent` counts records the server now holds (accepted or duplicate; their files are removed);
    `failed` counts records refused (quarantined) or not confirmed. Raises Unavailable when the
    server cannot be reached (records sent before that are already acknowledged), NotLoggedIn
    and Forbidden as the client does.
    """
    sent = failed = 0
    batch: list[tuple[Path, dict[str, Any]]] = []
    size = 0
    for path, record in spool.records(limit):
        try:
            rec_size = path.stat().st_size
        except OSError:
            continue
        if batch and (len(batch) >= batch_records or size + rec_size > batch_bytes):
            s, f = _send(spool, client, batch)
            sent, failed, batch, size = sent + s, failed + f, [], 0
        batch.append((path, record))
        size += rec_size
    if batch:
        s, f = _send(spool, client, batch)
        sent, failed = sent + s, failed + f
    return sent, failed
