"""POST /api/v1/sessions: open an agent session for the calling user;
POST /api/v1/sessions/{id}/close: `hoop run` ends it with the agent's exit status."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from hoopcli.server.identity.security import Principal, get_db, get_settings, require
from hoopcli.server.sessions import credentials, service
from hoopcli.server.settings import Settings
from hoopcli.server.store.db import Database

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
    return service.open_session(db, settings, principal, agent=body.agent, host=body.host, cwd=body.cwd,
                                connection=body.connection)


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
    return service.close_session(db, principal, session_id, body.exit_code)


class CredentialIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ttl_seconds: int | None = Field(default=None, ge=60, le=7 * 86400)
    connection: str | None = Field(default=None, min_length=1, max_length=64)


@router.post("/sessions/{session_id}/credentials", status_code=201)
def issue_credential(
    session_id: str,
    body: CredentialIn,
    principal: Principal = Depends(require()),
    db: Database = Depends(get_db),
    settings: Settings = Depends(get_settings),
) -> dict[str, Any]:
    """A gateway session credential for the caller's own open session (`hoop run`, `hoop env`),
    or, with `connection`, for a session the shim minted locally (claimed for the caller).
    The secret is in this answer only; the server keeps no copy."""
    return credentials.issue(db, settings, principal, session_id, body.ttl_seconds, body.connection)
