"""Approvals API: request, list, show (long-poll with ?wait=S), decide.

    POST /api/v1/approvals                 {argv, connection, session_id?, reason?, agent?, call_hash?}
    GET  /api/v1/approvals[?status=&limit=]
    GET  /api/v1/approvals/{id}[?wait=S]   returns at once when decided, else after <= S seconds
    POST /api/v1/approvals/{id}/decision   {decision: approve|deny, reason?, call_hash?}
    GET  /api/v1/passkeys                  the caller's own passkeys (id, name, created, last used)
    DELETE /api/v1/passkeys/{id}           remove one of the caller's own passkeys (404 otherwise)

A decision through this route is recorded with channel "cli": the channel is the route's, never
the body's (a `channel` field that older clients send is accepted and ignored). A requester cannot
approve their own request here unless the rule says `presence: none`: that needs the console's
fresh sign-in or passkey, which no stored or refreshed token can give.

The server re-parses argv and re-evaluates the policy (workflow.request): the client's reading
of the command is never trusted. Errors: 403 (policy denies, justification missing, not allowed
to decide), 404 (unknown or another organisation's approval), 409 (already decided, expired,
call hash mismatch).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from hoopcli.server.approvals import passkeys, workflow
from hoopcli.server.approvals.notify import get_notifier
from hoopcli.server.identity.security import Principal, get_db, get_settings, require
from hoopcli.server.settings import Settings
from hoopcli.server.store.db import Database

router = APIRouter(prefix="/api/v1", tags=["approvals"])
HASH = r"^[0-9a-f]{64}$"
MAX_WAIT = 60.0


class ApprovalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    argv: list[str] = Field(min_length=1, max_length=1000)
    connection: str = Field(min_length=1, max_length=64)
    session_id: str | None = Field(default=None, max_length=64)
    reason: str | None = Field(default=None, max_length=2000)
    agent: str | None = Field(default=None, max_length=128)
    call_hash: str | None = Field(default=None, pattern=HASH)


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "deny"]
    reason: str | None = Field(default=None, max_length=2000)
    call_hash: str | None = Field(default=None, pattern=HASH)
    # older clients send their idea of the channel; it is accepted and ignored (the route decides)
    channel: Literal["cli", "terminal", "web"] | None = None


# -- routes ---------------------------------------------------------------------------------

@router.post("/approvals")
def create_approval(body: ApprovalIn, background: BackgroundTasks,
                    principal: Principal = Depends(require()), db: Database = Depends(get_db),
                    settings: Settings = Depends(get_settings)) -> dict[str, Any]:
    return workflow.request(db, settings, principal, background.add_task, argv=body.argv,
                            connection=body.connection, session_id=body.session_id, reason=body.reason,
                            agent=body.agent, call_hash=body.call_hash)


@router.get("/approvals")
def list_approvals(status: Literal["pending", "approved", "rejected", "expired"] | None = None,
                   limit: int = Query(100, ge=1, le=1000),
                   principal: Principal = Depends(require()), db: Database = Depends(get_db),
                   settings: Settings = Depends(get_settings)) -> list[dict[str, Any]]:
    return workflow.list_visible(db, settings, principal, status=status, limit=limit)


@router.get("/approvals/{approval_id}")
async def show_approval(approval_id: str, request: Request,
                        wait: float = Query(0.0, ge=0.0, le=MAX_WAIT),
                        principal: Principal = Depends(require()), db: Database = Depends(get_db),
                        settings: Settings = Depends(get_settings)) -> dict[str, Any]:
    return await workflow.show(db, settings, get_notifier(request.app), principal, approval_id, wait,
                               request.is_disconnected)


@router.post("/approvals/{approval_id}/decision")
def decide_approval(approval_id: str, body: DecisionIn, request: Request, background: BackgroundTasks,
                    principal: Principal = Depends(require()), db: Database = Depends(get_db),
                    settings: Settings = Depends(get_settings)) -> dict[str, Any]:
    return workflow.decide(db, settings, get_notifier(request.app), principal, background.add_task,
                           approval_id, approve=body.decision == "approve", reason=body.reason,
                           call_hash=body.call_hash, channel="cli")


# -- passkeys (registering one is the console's: it needs a browser and a fresh sign-in) ----------

@router.get("/passkeys")
def list_passkeys(principal: Principal = Depends(require()), db: Database = Depends(get_db)) -> list[dict[str, Any]]:
    return [passkeys.to_json(p) for p in passkeys.listed(db, principal.org, principal.subject)]


@router.delete("/passkeys/{credential_id}")
def remove_passkey(credential_id: str = Path(max_length=512), principal: Principal = Depends(require()),
                   db: Database = Depends(get_db)) -> dict[str, Any]:
    passkeys.remove(db, principal.org, principal.subject, credential_id)
    return {"removed": credential_id}
