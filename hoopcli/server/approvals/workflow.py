"""What the approvals API and the console ask of approvals, one function per request.

request: re-parse the argv and re-evaluate the policy (the client's reading of the command is
never trusted), then record the request; list / show: what the caller may see (show long-polls
until a decision or `wait` seconds); decide: record a decision and wake the waiters. Slack side
effects are handed to `later` (the router's background tasks; the console runs them at once).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.concurrency import run_in_threadpool

from hoopcli.errors import InvocationError
from hoopcli.server.approvals import service as svc
from hoopcli.server.approvals.notify import Notifier
from hoopcli.server.approvals.slack_service import slack_post, slack_update
from hoopcli.server.errors import Unprocessable
from hoopcli.server.identity.security import Principal
from hoopcli.server.identity.service import check_connection, remember_user
from hoopcli.server.settings import Settings
from hoopcli.server.store.db import Database

SEES_ALL = frozenset({"approver", "auditor", "admin"})
Later = Callable[..., Any]   # later(function, *args): run a side effect after the answer


def visible(row: svc.Approval, subject: str, roles: frozenset[str] | set[str]) -> bool:
    """Requesters see their own requests; approvers, auditors and admins see the organisation's."""
    return row.requester == subject or bool(roles & SEES_ALL)


def get_visible(db: Database, principal: Principal, approval_id: str) -> svc.Approval:
    row = svc.get(db, principal.org, approval_id)
    if not visible(row, principal.subject, principal.roles):
        raise svc.ApprovalNotFound(f"no approval {approval_id!r}")
    return row


def _slack_wanted(settings: Settings, row: svc.Approval) -> bool:
    return settings.slack is not None and (not row.channels or "slack" in row.channels)


def request(db: Database, settings: Settings, principal: Principal, later: Later, *, argv: list[str],
            connection: str, session_id: str | None, reason: str | None, agent: str | None,
            call_hash: str | None) -> dict[str, Any]:
    from hoopcli.parse import parse
    from hoopcli.server.detections.holds import held_decision
    from hoopcli.server.policy.service import decide

    check_connection(settings, connection)
    if any("\x00" in a for a in argv):
        raise Unprocessable("NUL characters are not allowed in argv")
    try:
        invocation = parse(argv)
    except InvocationError as exc:
        raise Unprocessable(f"cannot read the command: {exc.message}") from None
    decision = decide(db, settings, principal, invocation, connection)
    # a session a detection holds: every call is reviewed by an approver (docs/detections.md)
    decision = held_decision(db, principal.org, session_id, decision)
    # the users row (groups from this token: Slack matching reads them)
    remember_user(db, principal)
    row, created = svc.create(db, settings, principal, invocation=invocation, decision=decision,
                              connection=connection, session_id=session_id, reason=reason,
                              agent=agent, client_hash=call_hash)
    if row is None:
        return {"id": None, "status": "not_required",
                "decision": {"effect": decision.effect, "rule": decision.rule, "reason": decision.reason}}
    if created and _slack_wanted(settings, row):
        later(slack_post, db, settings, row.id)
    return svc.to_json(row, settings.public_url)


def list_visible(db: Database, settings: Settings, principal: Principal, *, status: str | None,
                 limit: int) -> list[dict[str, Any]]:
    remember_user(db, principal)   # approvers' groups, for matching Slack users by email
    rows = svc.list_(db, principal.org, status=status, limit=limit)
    return [svc.to_json(r, settings.public_url) for r in rows if visible(r, principal.subject, principal.roles)]


async def show(db: Database, settings: Settings, notifier: Notifier, principal: Principal,
               approval_id: str, wait: float, disconnected: Callable[[], Awaitable[bool]]) -> dict[str, Any]:
    """The approval with its events; while it is pending, wait up to `wait` seconds for a decision."""
    deadline = time.monotonic() + wait
    while True:
        seen = notifier.version(approval_id)
        row = await run_in_threadpool(get_visible, db, principal, approval_id)
        remaining = deadline - time.monotonic()
        if row.status != "pending" or remaining <= 0:
            break
        if await disconnected():
            break
        await notifier.wait(row.id, min(remaining, notifier.poll_interval,
                                        max(0.05, row.expires_at - time.time())), since=seen)
    out = svc.to_json(row, settings.public_url)
    out["events"] = await run_in_threadpool(svc.events, db, principal.org, row.id)
    return out


def decide(db: Database, settings: Settings, notifier: Notifier, principal: Principal, later: Later,
           approval_id: str, *, approve: bool, reason: str | None, call_hash: str | None,
           channel: str) -> dict[str, Any]:
    """Record a decision (first one wins), wake the waiters, and refresh the Slack message."""
    remember_user(db, principal)
    row = _decide(db, settings, notifier, principal, later, approval_id, approve=approve, reason=reason,
                  call_hash=call_hash, channel=channel)
    return svc.to_json(row, settings.public_url)


def _decide(db: Database, settings: Settings, notifier: Notifier, principal: Principal, later: Later,
            approval_id: str, *, approve: bool, reason: str | None, call_hash: str | None,
            channel: str, presence: svc.Presence | None = None) -> svc.Approval:
    row = svc.decide(db, principal, approval_id, approve=approve, reason=reason, call_hash=call_hash,
                     channel=channel, presence=presence, notify=notifier.publish)
    if row.slack_ts:
        later(slack_update, db, settings, row.id)
    return row


def console_decide(db: Database, settings: Settings, notifier: Notifier, principal: Principal,
                   approval_id: str, *, approve: bool, reason: str | None, call_hash: str | None,
                   presence: svc.Presence | None = None) -> svc.Approval:
    """A decision from the web console (with the presence its session proved, if any); the Slack
    message is updated before the page answers."""
    return _decide(db, settings, notifier, principal, _now, approval_id, approve=approve, reason=reason,
                   call_hash=call_hash, channel="web", presence=presence)


def _now(function: Callable[..., Any], *args: Any) -> None:
    function(*args)


def console_list(db: Database, settings: Settings, subject: str, roles: frozenset[str], org: str,
                 limit: int = 200) -> list[dict[str, Any]]:
    """The console's approvals page and its live feed: what this user sees, newest first."""
    rows = svc.list_(db, org, limit=limit)
    return [svc.to_json(r, settings.public_url) for r in rows if visible(r, subject, roles)]


def console_view(db: Database, settings: Settings, principal: Principal, approval_id: str,
                 presence: svc.Presence | None = None
                 ) -> tuple[dict[str, Any], list[dict[str, Any]], str | None, str | None] | None:
    """(approval, events, why this user may not decide it from the console, why they must prove
    presence first before approving it (None: they need not, or this session already has)), or
    None if unseen."""
    try:
        row = svc.get(db, principal.org, approval_id)
    except svc.ApprovalError:
        return None
    if not visible(row, principal.subject, principal.roles):
        return None
    why_not = step_up = None
    if row.status == "pending":
        why_not = svc.refusal(row, principal) or svc.channel_refusal(row, principal, "web")
        if why_not is None and svc.needs_presence(row, principal):
            step_up = svc.presence_refusal(row, presence)
    return svc.to_json(row, settings.public_url), svc.events(db, principal.org, row.id), why_not, step_up
