"""POST /api/v1/credentials: short-lived STS credentials for one aws invocation.

The rules (re-parse, the server's own policy decision, approvals, STS) live in
hoopcli.server.credentials.service; this module only reads the request.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from hoopcli.server.credentials import service
from hoopcli.server.identity.security import Principal, get_db, get_settings, require
from hoopcli.server.settings import Settings
from hoopcli.server.store.db import Database

router = APIRouter(prefix="/api/v1", tags=["credentials"])


class CredentialsIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    connection: str = Field(min_length=1, max_length=64)
    session_id: str = Field(min_length=1, max_length=64)
    argv: list[str] = Field(min_length=1, max_length=2000)
    approval_id: str | None = Field(default=None, max_length=64)


@router.post("/credentials")
def vend_credentials(
    request: Request,
    body: CredentialsIn,
    principal: Principal = Depends(require()),
    db: Database = Depends(get_db),
    settings: Settings = Depends(get_settings),
) -> Any:   # no response model: the vended answer goes out exactly as built
    return service.vend(db, settings, principal, request.app.state.aws_session, connection_name=body.connection,
                        session_id=body.session_id, argv=body.argv, approval_id=body.approval_id)
