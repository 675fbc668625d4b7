"""Auditor endpoints: sessions (keyset-paginated, filtered), session timelines, streaming export,
checkpoints and the data `hoop sessions verify` needs (leaves, proofs, tombstones).

Visibility: auditors and admins see every session of their organisation; everyone else sees only
the sessions they uploaded. Leaves, proofs and forcing a checkpoint need the auditor role.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from hoopcli.errors import UsageError
from hoopcli.server.identity.security import Principal, get_db, require
from hoopcli.server.ledger import log as ledger_log
from hoopcli.server.ledger import query as ledger_query
from hoopcli.server.ledger.common import sees_all, signing_key
from hoopcli.server.ledger.query import Filters
from hoopcli.server.store.db import Database
from hoopcli.server.store.ledger import LedgerCheckpoint, LedgerNode, LedgerRecord, LedgerTombstone
from hoopcli.transcript import merkle
from hoopcli.transcript.checkpoints import parse_body

router = APIRouter(prefix="/api/v1", tags=["audit"])


def _filters(user: str | None, agent: str | None, connection: str | None, since: str | None,
             until: str | None, action: str | None, decision: str | None, status: str | None,
             exit_code: int | None, session_id: str | None = None) -> Filters:
    try:
        return Filters(user=user, agent=agent, connection=connection,
                       since=ledger_query.parse_when(since, "since"),
                       until=ledger_query.parse_when(until, "until"),
                       action=action, decision=decision, status=status, exit_code=exit_code,
                       session_id=session_id)
    except UsageError as exc:
        raise HTTPException(400, exc.message) from None


def filters_dep(user: str | None = Query(None, max_length=320),
                agent: str | None = Query(None, max_length=128),
                connection: str | None = Query(None, max_length=128),
                since: str | None = Query(None, max_length=40),
                until: str | None = Query(None, max_length=40),
                action: str | None = Query(None, max_length=255),
                decision: str | None = Query(None, max_length=16),
                status: str | None = Query(None, max_length=16),
                exit_code: int | None = Query(None, ge=-(2**31), le=2**31 - 1),
                session_id: str | None = Query(None, max_length=128)) -> Filters:
    return _filters(user, agent, connection, since, until, action, decision, status, exit_code,
                    session_id)


def _owner(principal: Principal) -> str | None:
    return None if sees_all(principal) else principal.subject


@router.get("/sessions")
def list_sessions(principal: Principal = Depends(require()), db: Database = Depends(get_db),
                  f: Filters = Depends(filters_dep), limit: int = Query(50, ge=1, le=500),
                  cursor: str | None = Query(None, max_length=512)) -> dict[str, Any]:
    try:
        with db.session() as s:
            items, nxt = ledger_query.list_sessions(s, principal.org, _owner(principal), f, limit, cursor)
    except UsageError as exc:
        raise HTTPException(400, exc.message) from None
    return {"items": items, "next": nxt}


@router.get("/sessions/{session_id}")
def show_session(session_id: str, principal: Principal = Depends(require()),
                 db: Database = Depends(get_db),
                 after: int = Query(-1, ge=-1, le=2**63 - 1), limit: int = Query(2000, ge=1, le=5000)) -> dict[str, Any]:
    if len(session_id) > 128:
        raise HTTPException(404, "no such session")
    with db.session() as s:
        row = ledger_query.get_session(s, principal.org, _owner(principal), session_id)
        if row is None:
            raise HTTPException(404, "no such session")
        entries = ledger_query.session_records(s, principal.org, session_id, after, limit)
        out = {"session": ledger_query.session_dict(row)}
    out["commands"] = ledger_query.timeline(entries)
    out["records"] = len(entries)
    out["next"] = entries[-1]["index"] if len(entries) == limit else None
    return out


CSV_COLUMNS = ["index", "received_at", "uploader", "session_id", "command_id", "type", "seq",
               "time", "user", "agent", "host", "connection", "argv", "effect", "rule",
               "approval_id", "approver", "assumed_role_arn", "exit_code", "api_calls",
               "stdout_size", "stdout_truncated", "stderr_size", "stderr_truncated", "truncated"]


def _csv_row(entry: dict[str, Any]) -> list[Any]:
    rec = entry.get("record") or {}
    rc = entry.get("receipt") or {}
    dec = rec.get("decision") or {}
    appr = rec.get("approval") or {}
    cred = rec.get("credentials") or {}
    out = rec.get("stdout") or {}
    err = rec.get("stderr") or {}
    calls = rec.get("api_calls")
    return [entry["index"], rc.get("received_at"), rc.get("uploader"), rec.get("session_id"),
            rec.get("command_id"), rec.get("type"), rec.get("seq"), rec.get("time"),
            rec.get("user"), rec.get("agent"), rec.get("host"), rec.get("connection"),
            json.dumps(rec["argv"]) if isinstance(rec.get("argv"), list) else "",
            dec.get("effect"), dec.get("rule"), appr.get("id"), appr.get("approver"),
            cred.get("assumed_role_arn"), rec.get("exit_code"),
            ";".join(f"{c.get('service')}:{c.get('operation')}" for c in calls if isinstance(c, dict))
            if isinstance(calls, list) else "",
            out.get("size"), out.get("truncated"), err.get("size"), err.get("truncated"),
            ";".join(rc.get("truncated") or [])]


def _csv_safe(value: Any) -> Any:
    # Spreadsheet formula injection: a cell starting with = + - @ is shown as text.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


@router.get("/export")
def export(principal: Principal = Depends(require()), db: Database = Depends(get_db),
           f: Filters = Depends(filters_dep),
           format: str = Query("jsonl", pattern="^(jsonl|csv)$")) -> StreamingResponse:
    org, owner = principal.org, _owner(principal)
    try:  # refuse bad filters now, before the 200 has been sent
        with db.session() as s:
            ledger_query.list_sessions(s, org, owner, f, 1)
    except UsageError as exc:
        raise HTTPException(400, exc.message) from None

    def jsonl() -> Iterator[bytes]:
        for index, leaf in ledger_query.iter_records(db, org, owner, f):
            yield (json.dumps(ledger_query.leaf_entry(index, leaf), ensure_ascii=False) + "\n").encode()

    def as_csv() -> Iterator[bytes]:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(CSV_COLUMNS)
        for index, leaf in ledger_query.iter_records(db, org, owner, f):
            writer.writerow([_csv_safe(v) for v in _csv_row(ledger_query.leaf_entry(index, leaf))])
            if buf.tell() > 64 * 1024:
                yield buf.getvalue().encode()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue().encode()

    if format == "csv":
        return StreamingResponse(as_csv(), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": "attachment; filename=hoop-records.csv"})
    return StreamingResponse(jsonl(), media_type="application/x-ndjson",
                             headers={"Content-Disposition": "attachment; filename=hoop-records.jsonl"})


# -- checkpoints and verification data -------------------------------------------------------
def _checkpoint_dict(row: LedgerCheckpoint) -> dict[str, Any]:
    return {"seq": row.seq, "size": row.size, "root": row.root, "body": row.body,
            "signature": row.signature, "key_id": row.key_id}


@router.get("/checkpoints/key")
def checkpoint_key(request: Request, principal: Principal = Depends(require())) -> dict[str, str]:
    return signing_key(request).public_info()


@router.get("/checkpoints")
def list_checkpoints(principal: Principal = Depends(require()), db: Database = Depends(get_db),
                     after: int = Query(-1, ge=-1, le=2**63 - 1), limit: int = Query(1000, ge=1, le=5000)) -> dict[str, Any]:
    with db.session() as s:
        rows = list(s.scalars(select(LedgerCheckpoint).where(
            LedgerCheckpoint.org == principal.org, LedgerCheckpoint.seq > after)
            .order_by(LedgerCheckpoint.seq).limit(limit)))
        items = [_checkpoint_dict(r) for r in rows]
    return {"items": items, "next": items[-1]["seq"] if len(items) == limit else None}


@router.post("/checkpoints")
def seal(request: Request, principal: Principal = Depends(require("auditor")),
         db: Database = Depends(get_db)) -> dict[str, Any]:
    """Sign a checkpoint covering every record stored so far (a new one only if the log grew)."""
    key = signing_key(request)
    with db.session() as s:
        row = ledger_log.seal(s, principal.org, key)
        return {"checkpoint": _checkpoint_dict(row) if row is not None else None}


@router.get("/verify")
def verify_summary(principal: Principal = Depends(require("auditor")),
                   db: Database = Depends(get_db),
                   session_id: str | None = Query(None, max_length=128)) -> dict[str, Any]:
    """The latest checkpoint, and for `session_id` an inclusion proof of each of its records
    against that checkpoint."""
    org = principal.org
    with db.session() as s:
        last = ledger_log.latest_checkpoint(s, org)
        out: dict[str, Any] = {"size": ledger_log.log_size(s, org),
                               "checkpoint": _checkpoint_dict(last) if last else None, "proofs": []}
        if session_id and last is not None:
            rows = s.execute(select(LedgerRecord.leaf_index, LedgerRecord.id, LedgerRecord.leaf).where(
                LedgerRecord.org == org, LedgerRecord.session_id == session_id,
                LedgerRecord.leaf_index < last.size).order_by(LedgerRecord.leaf_index).limit(5000))
            for index, rid, leaf in rows:
                proof = ledger_log.with_nodes(
                    s, org, lambda g, i=index: merkle.inclusion_proof(g, i, last.size))
                out["proofs"].append({"index": index, "id": rid, "leaf": leaf,
                                      "proof": [p.hex() for p in proof]})
    return out


@router.get("/verify/leaves")
def verify_leaves(principal: Principal = Depends(require("auditor")), db: Database = Depends(get_db),
                  start: int = Query(0, ge=0, le=2**63 - 1), limit: int = Query(1000, ge=1, le=5000)) -> dict[str, Any]:
    """Leaves [start, start+limit): the stored leaf hash (level-0 node) and the record's leaf text
    (null when retention cleared it, or when the record row is gone)."""
    org = principal.org
    with db.session() as s:
        hashes = dict(s.execute(select(LedgerNode.idx, LedgerNode.hash).where(
            LedgerNode.org == org, LedgerNode.level == 0, LedgerNode.idx >= start,
            LedgerNode.idx < start + limit)).all())
        recs = {i: (rid, leaf) for i, rid, leaf in s.execute(select(
            LedgerRecord.leaf_index, LedgerRecord.id, LedgerRecord.leaf).where(
            LedgerRecord.org == org, LedgerRecord.leaf_index >= start,
            LedgerRecord.leaf_index < start + limit))}
        size = ledger_log.log_size(s, org)
    items = []
    for i in range(start, min(start + limit, size)):
        rid, leaf = recs.get(i, (None, None))
        h = hashes.get(i)
        items.append({"index": i, "id": rid, "present": i in recs, "leaf": leaf,
                      "hash": bytes(h).hex() if h is not None else None})
    nxt = start + limit if start + limit < size else None
    return {"size": size, "items": items, "next": nxt}


@router.get("/verify/consistency")
def verify_consistency(principal: Principal = Depends(require("auditor")),
                       db: Database = Depends(get_db), first: int = Query(..., ge=0, le=2**63 - 1),
                       second: int = Query(..., ge=0, le=2**63 - 1)) -> dict[str, Any]:
    with db.session() as s:
        size = ledger_log.log_size(s, principal.org)
        if not first <= second <= size:
            raise HTTPException(400, f"need 0 <= first <= second <= {size}")
        proof = ledger_log.with_nodes(s, principal.org,
                                      lambda g: merkle.consistency_proof(g, first, second))
    return {"first": first, "second": second, "proof": [p.hex() for p in proof]}


@router.get("/verify/inclusion")
def verify_inclusion(principal: Principal = Depends(require("auditor")),
                     db: Database = Depends(get_db), index: int = Query(..., ge=0, le=2**63 - 1),
                     size: int = Query(..., ge=1, le=2**63 - 1)) -> dict[str, Any]:
    with db.session() as s:
        current = ledger_log.log_size(s, principal.org)
        if not index < size <= current:
            raise HTTPException(400, f"need 0 <= index < size <= {current}")
        proof = ledger_log.with_nodes(s, principal.org,
                                      lambda g: merkle.inclusion_proof(g, index, size))
    return {"index": index, "size": size, "proof": [p.hex() for p in proof]}


@router.get("/tombstones")
def tombstones(principal: Principal = Depends(require("auditor")),
               db: Database = Depends(get_db)) -> dict[str, Any]:
    with db.session() as s:
        rows = list(s.scalars(select(LedgerTombstone).where(LedgerTombstone.org == principal.org)
                              .order_by(LedgerTombstone.seq)))
        items = [{"seq": r.seq, "body": r.body, "signature": r.signature, "key_id": r.key_id,
                  "parsed": parse_body(r.body)} for r in rows]
    return {"items": items}
