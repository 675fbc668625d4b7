"""POST /api/v1/credentials: short-lived STS credentials for one aws invocation.

The server never trusts the client's classification: it re-parses the raw argv, evaluates the
policy itself (hoopcli.server.policy.service), consumes an approval when the policy asks for review,
and only then calls STS. The response carries the secret exactly once; the database and the log
keep the assumed-role ARN and the decision, never the secret or the raw argv.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError

from hoopcli.errors import InvocationError, Unavailable
from hoopcli.server.credentials.broker import BrokerError, assume_role
from hoopcli.server.identity.security import Principal, get_db, get_settings, require
from hoopcli.server.identity.service import check_connection, remember_user
from hoopcli.server.settings import Settings
from hoopcli.server.store.db import Database
from hoopcli.server.store.models import AgentSession, CredentialGrant

router = APIRouter(prefix="/api/v1", tags=["credentials"])
log = logging.getLogger("hoopcli.server.credentials")
SESSION_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
APPROVAL_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class CredentialsIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    connection: str = Field(min_length=1, max_length=64)
    session_id: str = Field(min_length=1, max_length=64)
    argv: list[str] = Field(min_length=1, max_length=2000)
    approval_id: str | None = Field(default=None, max_length=64)


def decide(db: Database, settings: Settings, principal: Principal, invocation: Any, connection: str) -> dict[str, Any]:
    """The server's policy decision as {effect, rule, reason}: the ONE place that chooses between
    the policy engineer's authority module and the stop-gap (List/Read allow, else review)."""
    try:
        from hoopcli.server.policy import service as authority
    except ImportError:
        authority = None  # type: ignore[assignment]
    if authority is not None and hasattr(authority, "decide"):
        decision = authority.decide(db, settings, principal, invocation, connection)
        data = decision.to_dict() if hasattr(decision, "to_dict") else dict(decision)
        # the parts a client needs; `calls` (parameters) stays on the server
        return {k: data.get(k) for k in ("effect", "rule", "reason", "review", "access_level")}
    if invocation.read_only:
        return {"effect": "allow", "rule": "builtin:read-only", "reason": "List and Read actions are allowed"}
    return {"effect": "review", "rule": "builtin:review-writes", "reason": "changes need an approval"}


def consume_approval(db: Database, principal: Principal, invocation: Any, connection: str, approval_id: str) -> None:
    """Use the approval for exactly this call; HTTPException with the approvals' status otherwise."""
    try:
        from hoopcli.approval.canonical import hash_invocation
        from hoopcli.server.approvals import service as approvals_service
    except ImportError:
        raise HTTPException(409, "approvals are not available on this server") from None
    try:
        approvals_service.consume(db, approval_id, principal, hash_invocation(invocation, connection))
    except approvals_service.ApprovalError as exc:
        raise HTTPException(getattr(exc, "status_code", 409), exc.message) from None


@router.post("/credentials")
def vend_credentials(
    request: Request,
    body: CredentialsIn,
    principal: Principal = Depends(require()),
    db: Database = Depends(get_db),
    settings: Settings = Depends(get_settings),
) -> Any:
    from hoopcli.parse import parse

    connection = check_connection(settings, body.connection)
    if not SESSION_ID_RE.match(body.session_id):
        raise HTTPException(422, "session_id: use letters, digits, '-' and '_' (at most 64)")
    if body.approval_id is not None and not APPROVAL_ID_RE.match(body.approval_id):
        raise HTTPException(422, "approval_id: not a valid approval id")
    if any("\x00" in arg for arg in body.argv):
        raise HTTPException(422, "argv: NUL characters are not allowed")
    try:
        invocation = parse(list(body.argv))
    except InvocationError as exc:
        raise HTTPException(400, f"cannot classify this aws command: {exc.message}") from None
    if not invocation.actions:
        raise HTTPException(400, "this aws command makes no AWS API calls; it needs no credentials")

    decision = decide(db, settings, principal, invocation, connection.name)
    if decision["effect"] == "deny":
        rule = decision.get("rule") or "policy"
        reason = decision.get("reason") or "denied by policy"
        raise HTTPException(403, f"denied by {rule}: {reason}")
    if decision["effect"] != "allow":
        if body.approval_id is None:
            return JSONResponse(
                {
                    "detail": "this command needs an approval; request one and retry with approval_id",
                    "approval_required": True,
                    "decision": decision,
                },
                status_code=409,
            )
        consume_approval(db, principal, invocation, connection.name, body.approval_id)

    _claim_session(db, principal, body.session_id, connection.name)
    try:
        vended = assume_role(
            connection,
            invocation,
            session_id=body.session_id,
            user=principal.email or principal.subject,
            aws_session=request.app.state.aws_session,
        )
    except BrokerError as exc:
        log.warning("AssumeRole refused for connection %s: %s", connection.name, exc.message)
        raise HTTPException(502, exc.message) from None
    except Unavailable as exc:
        raise HTTPException(503, exc.message) from None

    grant_id = uuid.uuid4().hex
    remember_user(db, principal)
    with db.session() as s:
        s.add(CredentialGrant(
            id=grant_id, org=principal.org, session_id=body.session_id, user=principal.subject,
            connection=connection.name, assumed_role_arn=vended.assumed_role_arn,
            sts_session_name=vended.sts_session_name, actions=list(invocation.actions),
            decision=decision, approval_id=body.approval_id, expiration=vended.expiration,
        ))
    log.info(
        "credentials vended grant=%s user=%s connection=%s role=%s actions=%d",
        grant_id, principal.subject, connection.name, vended.assumed_role_arn, len(invocation.actions),
    )
    return {**vended.response(), "decision": decision, "grant_id": grant_id}


def _claim_session(db: Database, principal: Principal, session_id: str, connection: str) -> None:
    """The session must be the caller's; a session the shim minted locally is created here."""
    with db.session() as s:
        row = s.get(AgentSession, session_id)
        if row is not None:
            if row.user != principal.subject or row.org != principal.org:
                raise HTTPException(403, "this session belongs to another user")
            return
    try:
        with db.session() as s:
            s.add(AgentSession(
                id=session_id, org=principal.org, user=principal.subject, user_email=principal.email,
                connection=connection, source="credentials",
            ))
    except IntegrityError:
        with db.session() as s:  # created concurrently (records upload or another shim)
            row = s.get(AgentSession, session_id)
            if row is None or row.user != principal.subject or row.org != principal.org:
                raise HTTPException(403, "this session belongs to another user") from None
