"""Approvals over Slack: post a request's message, keep it up to date, and decide a button click.

A click is decided by the hoop user behind the Slack user: hoop users who could decide it (the
`users` table, filled from each user's last verified token, and the dev IdP's local accounts)
are looked up by email with users.lookupByEmail, and the one whose Slack id is the clicker's is
the decider. They must hold the approver role (and a group the rule lists), exactly as on every
other channel. A refusal is told to the clicker alone (chat.postEphemeral).
"""

from __future__ import annotations

from typing import Any

from hoopcli.server.approvals import service as svc
from hoopcli.server.approvals.notify import Notifier
from hoopcli.server.approvals.slack import APPROVE_ACTION, DENY_ACTION, SlackBridge, bridge_for
from hoopcli.server.identity.security import Principal, roles_for
from hoopcli.server.identity.service import users_with_email
from hoopcli.server.settings import Settings
from hoopcli.server.store.db import Database

MAX_CANDIDATES = 200


def slack_post(db: Database, settings: Settings, approval_id: str) -> None:
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
    bridge = bridge_for(settings)
    row = svc.find(db, approval_id)
    if bridge is None or row is None or not row.slack_ts or not row.slack_channel:
        return
    bridge.update(row.slack_channel, row.slack_ts, svc.to_json(row, settings.public_url))


def _candidates(db: Database, settings: Settings, row: svc.Approval) -> list[Principal]:
    """hoop users of the approval's organisation who might be the clicker, from their last token."""
    out: dict[str, Principal] = {}
    for u in users_with_email(db, row.org):
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


def _match(bridge: SlackBridge, candidates: list[Principal], slack_user: str) -> Principal | None:
    for principal in candidates:
        if principal.email and bridge.user_id(principal.email) == slack_user:
            return principal
    return None


def click(db: Database, settings: Settings, notifier: Notifier, payload: dict[str, Any]) -> dict[str, Any]:
    """Decide the approval a button click names (first decision wins) and update its message."""
    result = _handle_click(db, settings, notifier, payload)
    if result.get("ok"):
        slack_update(db, settings, result["approval"])
    return result


def _handle_click(db: Database, settings: Settings, notifier: Notifier, payload: dict[str, Any]) -> dict[str, Any]:
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
                             channel="slack", notify=notifier.publish)
    except svc.ApprovalError as exc:
        current = svc.find(db, row.id)
        if current is not None and current.slack_ts and current.status != "pending":
            slack_update(db, settings, row.id)   # make sure the message shows the real outcome
        return refuse(exc.message)
    return {"ok": True, "status": decided.status, "approval": decided.id}
