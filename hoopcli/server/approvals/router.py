"""Approvals API: request, list, show (long-poll with ?wait=S), decide.

    POST /api/v1/approvals                 {argv, connection, session_id?, reason?, agent?, call_hash?}
    GET  /api/v1/approvals[?status=&limit=]
    GET  /api/v1/approvals/{id}[?wait=S]   returns at once when decided, else after <= S seconds
    POST /api/v1/approvals/{id}/decision   {decision: approve|deny, reason?, call_hash?, channel?}

The server re-parses argv and re-evaluates the policy (authority.decide): the client's reading
of the command is never trusted. Errors: 403 (policy denies, justification missing, not allowed
to decide), 404 (unknown or another organisation's approval), 409 (already decided, expired,
call hash mismatch).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from hoopcli.server.approvals import service as svc
from hoopcli.server.approvals.notify import get_notifier
from hoopcli.server.identity.security import Principal, get_db, get_settings, require
from hoopcli.server.identity.service import check_connection, remember_user
from hoopcli.server.settings import Settings
from hoopcli.server.store.db import Database

log = logging.getLogger("hoop.approvals")
router = APIRouter(prefix="/api/v1", tags=["approvals"])
HASH = r"^[0-9a-f]{64}$"
MAX_WAIT = 60.0
SEES_ALL = frozenset({"approver", "auditor", "admin"})


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
    channel: Literal["cli", "terminal", "web"] = "cli"


def remember(db: Database, principal: Principal) -> None:
    """Upsert the users row (groups from this token: Slack matching reads them); common.py's
    remember_user survives two first requests of one user racing on the insert."""
    remember_user(db, principal)


def _http(exc: svc.ApprovalError) -> HTTPException:
    return HTTPException(exc.status_code, exc.message)


def _visible(row: svc.Approval, principal: Principal) -> bool:
    return row.requester == principal.subject or bool(principal.roles & SEES_ALL)


def _get_visible(db: Database, principal: Principal, approval_id: str) -> svc.Approval:
    row = svc.get(db, principal.org, approval_id)
    if not _visible(row, principal):
        raise svc.ApprovalNotFound(f"no approval {approval_id!r}")
    return row


# -- Slack side effects (run after the response is sent) -----------------------------------

def slack_post(db: Database, settings: Settings, approval_id: str) -> None:
    from hoopcli.server.approvals.slack import bridge_for

    bridge = bridge_for(settings)
    if bridge is None:
        return
    row = svc.find(db, approval_id)
    if row is None or row.slack_ts:
        return
    posted = bridge.post(svc.to_json(row, settings.public_url))
    if posted:
        svc.set_slack_message(db, approval_id, *posted)


def slack_update(db: Database, settings: Settings, approval_id: str) -> None:
    from hoopcli.server.approvals.slack import bridge_for

    bridge = bridge_for(settings)
    row = svc.find(db, approval_id)
    if bridge is None or row is None or not row.slack_ts or not row.slack_channel:
        return
    bridge.update(row.slack_channel, row.slack_ts, svc.to_json(row, settings.public_url))


def _slack_wanted(settings: Settings, row: svc.Approval) -> bool:
    return settings.slack is not None and (not row.channels or "slack" in row.channels)


# -- routes ---------------------------------------------------------------------------------

@router.post("/approvals")
def create_approval(body: ApprovalIn, background: BackgroundTasks,
                    principal: Principal = Depends(require()), db: Database = Depends(get_db),
                    settings: Settings = Depends(get_settings)) -> dict[str, Any]:
    from hoopcli.errors import InvocationError
    from hoopcli.parse import parse
    from hoopcli.server.policy.service import decide

    check_connection(settings, body.connection)
    if any("\x00" in a for a in body.argv):
        raise HTTPException(422, "NUL characters are not allowed in argv")
    try:
        invocation = parse(body.argv)
    except InvocationError as exc:
        raise HTTPException(422, f"cannot read the command: {exc.message}") from None
    decision = decide(db, settings, principal, invocation, body.connection)
    remember(db, principal)
    try:
        row, created = svc.create(db, settings, principal, invocation=invocation, decision=decision,
                                  connection=body.connection, session_id=body.session_id,
                                  reason=body.reason, agent=body.agent, client_hash=body.call_hash)
    except svc.ApprovalError as exc:
        raise _http(exc) from None
    if row is None:
        return {"id": None, "status": "not_required",
                "decision": {"effect": decision.effect, "rule": decision.rule, "reason": decision.reason}}
    if created and _slack_wanted(settings, row):
        background.add_task(slack_post, db, settings, row.id)
    return svc.to_json(row, settings.public_url)


@router.get("/approvals")
def list_approvals(status: Literal["pending", "approved", "rejected", "expired"] | None = None,
                   limit: int = Query(100, ge=1, le=1000),
                   principal: Principal = Depends(require()), db: Database = Depends(get_db),
                   settings: Settings = Depends(get_settings)) -> list[dict[str, Any]]:
    remember(db, principal)   # approvers' groups, for matching Slack users by email
    rows = svc.list_(db, principal.org, status=status, limit=limit)
    return [svc.to_json(r, settings.public_url) for r in rows if _visible(r, principal)]


@router.get("/approvals/{approval_id}")
async def show_approval(approval_id: str, request: Request,
                        wait: float = Query(0.0, ge=0.0, le=MAX_WAIT),
                        principal: Principal = Depends(require()), db: Database = Depends(get_db),
                        settings: Settings = Depends(get_settings)) -> dict[str, Any]:
    notifier = get_notifier(request.app)
    deadline = time.monotonic() + wait
    while True:
        seen = notifier.version(approval_id)
        try:
            row = await run_in_threadpool(_get_visible, db, principal, approval_id)
        except svc.ApprovalError as exc:
            raise _http(exc) from None
        remaining = deadline - time.monotonic()
        if row.status != "pending" or remaining <= 0:
            break
        if await request.is_disconnected():
            break
        await notifier.wait(row.id, min(remaining, notifier.poll_interval,
                                        max(0.05, row.expires_at - time.time())), since=seen)
    out = svc.to_json(row, settings.public_url)
    out["events"] = await run_in_threadpool(svc.events, db, principal.org, row.id)
    return out


@router.post("/approvals/{approval_id}/decision")
def decide_approval(approval_id: str, body: DecisionIn, request: Request, background: BackgroundTasks,
                    principal: Principal = Depends(require()), db: Database = Depends(get_db),
                    settings: Settings = Depends(get_settings)) -> dict[str, Any]:
    notifier = get_notifier(request.app)
    remember(db, principal)
    try:
        row = svc.decide(db, principal, approval_id, approve=body.decision == "approve",
                         reason=body.reason, call_hash=body.call_hash, channel=body.channel,
                         notify=notifier.publish)
    except svc.ApprovalError as exc:
        raise _http(exc) from None
    if row.slack_ts:
        background.add_task(slack_update, db, settings, row.id)
    return svc.to_json(row, settings.public_url)

