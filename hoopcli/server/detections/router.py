"""Findings API.

    GET  /api/v1/findings[?session_id=&since=&limit=]   newest first (approvers, auditors and
                                                        admins see the organisation's; others their own)
    GET  /api/v1/findings/{id}                          one finding, its hold, the records that raised it
    POST /api/v1/sessions/{id}/release  {reason?}       end a session's hold (approver role; not the
                                                        session's own user)
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from hoopcli.server.detections import holds, service
from hoopcli.server.identity.security import Principal, get_db, get_settings, require
from hoopcli.server.settings import Settings
from hoopcli.server.store.db import Database

router = APIRouter(prefix="/api/v1", tags=["findings"])


class ReleaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=2000)


@router.get("/findings")
def list_findings(session_id: str | None = Query(None, max_length=128), since: str | None = Query(None, max_length=40),
                  limit: int = Query(100, ge=1, le=500), principal: Principal = Depends(require()),
                  db: Database = Depends(get_db), settings: Settings = Depends(get_settings)) -> list[dict[str, Any]]:
    return service.list_findings(db, settings, principal, session_id=session_id, since=since, limit=limit)


@router.get("/findings/{finding_id}")
def show_finding(finding_id: str, principal: Principal = Depends(require()), db: Database = Depends(get_db),
                 settings: Settings = Depends(get_settings)) -> dict[str, Any]:
    return service.get_finding(db, settings, principal, finding_id)


@router.post("/sessions/{session_id}/release")
def release_session(session_id: str, body: ReleaseIn | None = None, principal: Principal = Depends(require("approver")),
                    db: Database = Depends(get_db)) -> dict[str, Any]:
    return holds.release(db, principal, session_id, body.reason if body else None)
