"""Slack interactivity: POST /api/v1/slack/interactions (the Approve / Deny buttons).

1. Verify the request with slack_sdk's SignatureVerifier (HMAC-SHA256 of "v0:{ts}:{body}" with
   the signing secret; timestamps older or newer than 5 minutes are refused): 401 otherwise.
2. Find the approval named by the button and the hoop user behind the Slack user: hoop users
   who could decide it (the `users` table, filled from each user's last verified token, and the
   dev IdP's local accounts) are looked up by email with users.lookupByEmail, and the one whose
   Slack id is the clicker's is the decider. They must hold the approver role (and a group the
   rule lists), exactly as on every other channel.
3. Decide (first decision wins), then update the message in place (chat.update); a refusal is
   told to the clicker alone (chat.postEphemeral). Slack gets its 200 within 3 s in every case.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.parse
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import select

from hoopcli.server.approvals import service as svc
from hoopcli.server.approvals.notify import get_notifier
from hoopcli.server.approvals.router import slack_update
from hoopcli.server.approvals.slack import APPROVE_ACTION, DENY_ACTION, bridge_for
from hoopcli.server.identity.security import Principal, public, roles_for
from hoopcli.server.store.models import User

log = logging.getLogger("hoop.slack")
router = APIRouter(prefix="/api/v1", tags=["slack"])
ACK_SECONDS = 2.5
MAX_CANDIDATES = 200
_inflight: set[asyncio.Future[Any]] = set()   # keeps slow clicks alive after the 3 s ack


def verify(secret: str, body: bytes, timestamp: str | None, signature: str | None) -> bool:
    from slack_sdk.signature import SignatureVerifier

    if not timestamp or not signature or not timestamp.strip().isdigit() or len(timestamp) > 20:
        return False
    try:
        return SignatureVerifier(secret).is_valid(body, timestamp, signature)
    except (ValueError, UnicodeDecodeError):
        return False


def parse_payload(body: bytes) -> dict[str, Any]:
    try:
        form = urllib.parse.parse_qs(body.decode("utf-8"), strict_parsing=False)
        payload = json.loads(form["payload"][0])
    except (UnicodeDecodeError, KeyError, IndexError, ValueError):
        raise HTTPException(400, "expected a form body with a JSON `payload`") from None
    if not isinstance(payload, dict):
        raise HTTPException(400, "the payload must be a JSON object")
    return payload


def _candidates(db: Any, settings: Any, row: svc.Approval) -> list[Principal]:
    """hoop users of the approval's organisation who might be the clicker, from their last token."""
    out: dict[str, Principal] = {}
    with db.session() as s:
        users = s.execute(select(User).where(User.org == row.org, User.email.is_not(None))
                          .order_by(User.last_seen.desc()).limit(1000)).scalars().all()
    for u in users:
        groups = tuple(str(g) for g in (u.groups or []))
        out.setdefault(u.subject, Principal(subject=u.subject, email=u.email, name=u.name, groups=groups,
                                            roles=roles_for(groups, settings.roles), org=row.org))
    if row.org == "default":
        for name, local in (settings.users or {}).items():
            if local.email and name not in out:
                out[name] = Principal(subject=name, email=local.email, name=name, groups=tuple(local.groups),
                                      roles=roles_for(tuple(local.groups), settings.roles))
    eligible = [p for p in out.values()
                if p.subject == row.requester or p.roles & {"approver", "admin"}]
    return eligible[:MAX_CANDIDATES]


def _match(bridge: Any, candidates: list[Principal], slack_user: str) -> Principal | None:
    for principal in candidates:
        if principal.email and bridge.user_id(principal.email) == slack_user:
            return principal
    return None


def handle_click(app: Any, payload: dict[str, Any]) -> dict[str, Any]:
    settings, db = app.state.settings, app.state.db
    bridge = bridge_for(settings)
    actions = payload.get("actions") if payload.get("type") == "block_actions" else None
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
        return {"ok": False, "error": "unsupported interaction"}
    action = actions[0]
    action_id, approval_id = action.get("action_id"), action.get("value")
    user = payload.get("user")
    slack_user = str(user.get("id") or "")[:32] if isinstance(user, dict) else ""
    where = payload.get("channel")
    channel = where.get("id") if isinstance(where, dict) else None
    if action_id not in (APPROVE_ACTION, DENY_ACTION) or not slack_user:
        return {"ok": False, "error": "unsupported action"}

    def refuse(text: str) -> dict[str, Any]:
        if bridge is not None:
            bridge.tell(channel, slack_user, f"hoop: {text}")
        return {"ok": False, "error": text}

    row = svc.find(db, str(approval_id))
    if row is None:
        return refuse(f"no approval {str(approval_id)[:40]!r}")
    if bridge is None:
        return refuse("Slack is not configured for approvals on this server (bot_token, channel)")
    decider = _match(bridge, _candidates(db, settings, row), slack_user)
    if decider is None:
        svc.note(db, row, "refused", f"slack:{slack_user}", "slack",
                 "Slack user is not a hoop approver (no hoop user with an approver role has this Slack account's email)")
        return refuse("your Slack account does not match a hoop user who can approve this "
                      "(matched by email; sign in to hoop once so the server knows your groups)")
    try:
        decided = svc.decide(db, decider, row.id, approve=action_id == APPROVE_ACTION,
                             reason=f"via Slack by {decider.email}", call_hash=row.call_hash,
                             channel="slack", notify=get_notifier(app).publish)
    except svc.ApprovalError as exc:
        current = svc.find(db, row.id)
        if current is not None and current.slack_ts and current.status != "pending":
            slack_update(db, settings, row.id)   # make sure the message shows the real outcome
        return refuse(exc.message)
    return {"ok": True, "status": decided.status, "approval": decided.id}


@router.post("/slack/interactions", dependencies=[Depends(public("Slack signs its own requests"))])
async def interactions(request: Request) -> JSONResponse:
    slack = request.app.state.settings.slack
    if slack is None or not slack.signing_secret:
        raise HTTPException(404, "Slack is not configured on this server")
    body = await request.body()
    if not verify(slack.signing_secret, body, request.headers.get("x-slack-request-timestamp"),
                  request.headers.get("x-slack-signature")):
        raise HTTPException(401, "invalid or expired Slack signature")
    payload = parse_payload(body)
    app = request.app

    async def work() -> dict[str, Any]:
        result = await run_in_threadpool(handle_click, app, payload)
        if result.get("ok"):
            await run_in_threadpool(slack_update, app.state.db, app.state.settings, result["approval"])
        return result

    task = asyncio.ensure_future(work())
    _inflight.add(task)
    task.add_done_callback(_inflight.discard)
    done, _ = await asyncio.wait({task}, timeout=ACK_SECONDS)
    if not done:   # Slack needs its 200 within 3 s; the decision finishes in the background
        return JSONResponse({"ok": True, "status": "processing"})
    try:
        return JSONResponse(task.result())
    except Exception as exc:  # noqa: BLE001 - never leak internals to Slack
        log.error("slack interaction failed: %s", type(exc).__name__)
        return JSONResponse({"ok": False, "error": "internal error"})
