"""POST /api/v1/sessions: open an agent session for the calling user;
POST /api/v1/sessions/{id}/close: `hoop run` ends it with the agent's exit status."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from hoopcli.server.identity.security import Principal, get_db, get_settings, require
from hoopcli.server.identity.service import check_connection, remember_user
from hoopcli.server.settings import Settings
from hoopcli.server.store.db import Database
from hoopcli.server.store.models import AgentSession

router = APIRouter(prefix="/api/v1", tags=["sessions"])


class SessionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent: str | None = Field(default=None, max_length=128)
    host: str | None = Field(default=None, max_length=255)
    cwd: str | None = Field(default=None, max_length=4096)
    connection: str | None = Field(default=None, max_length=64)


@router.post("/sessions", status_code=201)
def open_session(
    body: SessionIn,
    principal: Principal = Depends(require()),
    db: Database = Depends(get_db),
    settings: Settings = Depends(get_settings),
) -> dict[str, Any]:
    if body.connection is not None:
        check_connection(settings, body.connection)
    for value in (body.agent, body.host, body.cwd):
        if value is not None and "\x00" in value:
            raise HTTPException(422, "NUL characters are not allowed")
    remember_user(db, principal)
    with db.session() as s:
        row = AgentSession(
            id=uuid.uuid4().hex,
            org=principal.org,
            user=principal.subject,
            user_email=principal.email,
            agent=body.agent,
            host=body.host,
            cwd=body.cwd,
            connection=body.connection,
            source="api",
        )
        s.add(row)
        s.flush()
        return row.to_dict()


class CloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    exit_code: int | None = Field(default=None, ge=-(2**31), le=2**31 - 1)


@router.post("/sessions/{session_id}/close")
def close_session(
    session_id: str,
    body: CloseIn,
    principal: Principal = Depends(require()),
    db: Database = Depends(get_db),
) -> dict[str, Any]:
    """Only the session's owner (or an admin) closes it, once; a second close is a 409."""
    from datetime import datetime, timezone

    if len(session_id) > 64:
        raise HTTPException(404, "no such session")
    with db.session() as s:
        row = s.get(AgentSession, session_id)
        if row is None or row.org != principal.org or (row.user != principal.subject and not principal.has("admin")):
            raise HTTPException(404, "no such session")
        if row.closed_at is not None:
            raise HTTPException(409, "the session is already closed")
        row.closed_at = datetime.now(timezone.utc)
        row.exit_code = body.exit_code
        s.flush()
        return row.to_dict()
