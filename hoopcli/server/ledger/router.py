"""Auditor endpoints: sessions (keyset-paginated, filtered), session timelines, streaming export,
checkpoints and the data `hoop sessions verify` needs (leaves, proofs, tombstones).

Visibility: auditors and admins see every session of their organisation; everyone else sees only
the sessions they uploaded. Leaves, proofs and forcing a checkpoint need the auditor role.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from hoopcli.server.identity.security import Principal, get_db, require
from hoopcli.server.ledger import proofs, service, stream
from hoopcli.server.ledger.common import sees_all, signing_key
from hoopcli.server.ledger.query import Filters
from hoopcli.server.store.db import Database

router = APIRouter(prefix="/api/v1", tags=["audit"])


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
    return service.filters(user, agent, connection, since, until, action, decision, status, exit_code,
                           session_id)


def _owner(principal: Principal) -> str | None:
    return None if sees_all(principal) else principal.subject


@router.get("/sessions")
def list_sessions(principal: Principal = Depends(require()), db: Database = Depends(get_db),
                  f: Filters = Depends(filters_dep), limit: int = Query(50, ge=1, le=500),
                  cursor: str | None = Query(None, max_length=512)) -> dict[str, Any]:
    items, nxt = service.list_sessions(db, principal.org, _owner(principal), f, limit, cursor)
    return {"items": items, "next": nxt}


@router.get("/sessions/{session_id}")
def show_session(session_id: str, principal: Principal = Depends(require()),
                 db: Database = Depends(get_db),
                 after: int = Query(-1, ge=-1, le=2**63 - 1), limit: int = Query(2000, ge=1, le=5000)) -> dict[str, Any]:
    return service.show_session(db, principal.org, _owner(principal), session_id, after, limit)


@router.get("/export")
def export(principal: Principal = Depends(require()), db: Database = Depends(get_db),
           f: Filters = Depends(filters_dep),
           format: str = Query("jsonl", pattern="^(jsonl|csv)$")) -> StreamingResponse:
    entries = service.export_entries(db, principal.org, _owner(principal), f)
    if format == "csv":
        return StreamingResponse(stream.as_csv(entries), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": "attachment; filename=hoop-records.csv"})
    return StreamingResponse(stream.jsonl(entries), media_type="application/x-ndjson",
                             headers={"Content-Disposition": "attachment; filename=hoop-records.jsonl"})


# -- checkpoints and verification data -------------------------------------------------------
@router.get("/checkpoints/key")
def checkpoint_key(request: Request, principal: Principal = Depends(require())) -> dict[str, str]:
    return signing_key(request).public_info()


@router.get("/checkpoints")
def list_checkpoints(principal: Principal = Depends(require()), db: Database = Depends(get_db),
                     after: int = Query(-1, ge=-1, le=2**63 - 1), limit: int = Query(1000, ge=1, le=5000)) -> dict[str, Any]:
    return proofs.list_checkpoints(db, principal.org, after, limit)


@router.post("/checkpoints")
def seal(request: Request, principal: Principal = Depends(require("auditor")),
         db: Database = Depends(get_db)) -> dict[str, Any]:
    """Sign a checkpoint covering every record stored so far (a new one only if the log grew)."""
    return proofs.seal(db, principal.org, signing_key(request))


@router.get("/verify")
def verify_summary(principal: Principal = Depends(require("auditor")),
                   db: Database = Depends(get_db),
                   session_id: str | None = Query(None, max_length=128)) -> dict[str, Any]:
    """The latest checkpoint, and for `session_id` an inclusion proof of each of its records
    against that checkpoint."""
    return proofs.summary(db, principal.org, session_id)


@router.get("/verify/leaves")
def verify_leaves(principal: Principal = Depends(require("auditor")), db: Database = Depends(get_db),
                  start: int = Query(0, ge=0, le=2**63 - 1), limit: int = Query(1000, ge=1, le=5000)) -> dict[str, Any]:
    """Leaves [start, start+limit): the stored leaf hash (level-0 node) and the record's leaf text
    (null when retention cleared it, or when the record row is gone)."""
    return proofs.leaves(db, principal.org, start, limit)


@router.get("/verify/consistency")
def verify_consistency(principal: Principal = Depends(require("auditor")),
                       db: Database = Depends(get_db), first: int = Query(..., ge=0, le=2**63 - 1),
                       second: int = Query(..., ge=0, le=2**63 - 1)) -> dict[str, Any]:
    return proofs.consistency_proof(db, principal.org, first, second)


@router.get("/verify/inclusion")
def verify_inclusion(principal: Principal = Depends(require("auditor")),
                     db: Database = Depends(get_db), index: int = Query(..., ge=0, le=2**63 - 1),
                     size: int = Query(..., ge=1, le=2**63 - 1)) -> dict[str, Any]:
    return proofs.inclusion_proof(db, principal.org, index, size)


@router.get("/tombstones")
def tombstones(principal: Principal = Depends(require("auditor")),
               db: Database = Depends(get_db)) -> dict[str, Any]:
    return proofs.tombstones(db, principal.org)
