"""Approvals: create, read, decide (first decision wins), consume (single use, bound to the call).

Shared by every channel (CLI, terminal, web, Slack) and by the credential broker, which calls
`consume(db, approval_id, principal, call_hash)` before it vends credentials for a reviewed call.

Atomicity: a decision is one `UPDATE ... WHERE status = 'pending' AND expires_at > now`; exactly
one of several racing deciders sees rowcount 1, on SQLite and PostgreSQL alike. On PostgreSQL the
same transaction issues `pg_notify('hoop_approvals', id)`, delivered at commit to every server
process (see notify.py).
"""

from __future__ import annotations

import re
import secrets
import shlex
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select, text, update

from hoopcli.approval.canonical import hash_invocation
from hoopcli.exitcodes import ExitStatus
from hoopcli.server.errors import ServiceError
from hoopcli.server.store.approvals import ApprovalEvent, ApprovalRow

Approval = ApprovalRow
USE_WINDOW_SECONDS = 600          # an approved request must be used within this many seconds
DECIDER_CHANNELS = ("cli", "web", "slack")   # set by the route a decision came through, never by its body
STEP_UP_WINDOW = 900.0    # a fresh sign-in or passkey counts for this long (and only after the request)
PRESENCE_METHODS = ("sign-in", "passkey")
NOTIFY_CHANNEL = "hoop_approvals"
SECRET_FLAG = re.compile(r"secret|password|passwd|token|private|credential|key-material|passphrase"
                         r"|auth|certificate-pem|--cli-input", re.IGNORECASE)
NAMES_ONLY = re.compile(r"-(id|ids|arn|arns|name|names)$")   # --secret-id names a secret, it is not one


class ApprovalError(ServiceError):
    exit_status = ExitStatus.ERROR
    status_code = 400


class ApprovalNotFound(ApprovalError):
    status_code = 404


class ApprovalForbidden(ApprovalError):
    status_code = 403


class ApprovalConflict(ApprovalError):
    status_code = 409


class JustificationRequired(ApprovalForbidden):
    pass


@dataclass(frozen=True, slots=True)
class Presence:
    """Proof that the person was there: a fresh interactive sign-in at the identity provider
    (`at` = the ID token's auth_time) or a passkey assertion (`at` = when it was verified).
    Only the console establishes one; a bearer token (stored or refreshed) never does."""

    method: str
    at: float


# --------------------------------------------------------------------------- helpers

def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    when = datetime.fromtimestamp(ts, timezone.utc)  # Python 3.10 has no datetime.UTC
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


def display_command(argv: Iterable[str], limit: int = 2000) -> str:
    """`aws ...` for people to read, with the values of secret-looking flags masked."""
    out: list[str] = ["aws"]
    mask_next = False
    for arg in argv:
        arg = str(arg)
        if mask_next and not arg.startswith("--"):
            out.append("[masked]")
            mask_next = False
            continue
        mask_next = False
        if arg.startswith("--") and SECRET_FLAG.search(arg) and not NAMES_ONLY.search(arg.partition("=")[0]):
            name, eq, _ = arg.partition("=")
            out.append(f"{name}=[masked]" if eq else name)
            mask_next = not eq
            continue
        out.append(shlex.quote(arg))
    text_ = " ".join(out)
    return text_ if len(text_) <= limit else text_[: limit - 1] + "…"


def _review(decision: Any, name: str, default: Any = None) -> Any:
    review = getattr(decision, "review", None)
    if review is None:
        return default
    if isinstance(review, dict):
        return review.get(name, default)
    return getattr(review, name, default)


def _strings(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def _event(session: Any, row: ApprovalRow, event: str, actor: str | None, channel: str | None,
           detail: str | None = None) -> None:
    session.add(ApprovalEvent(approval_id=row.id, org=row.org, at=time.time(), actor=actor,
                              channel=channel, event=event, detail=(detail or None) and detail[:1000]))


def _pg_notify(session: Any, approval_id: str) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:c, :p)"), {"c": NOTIFY_CHANNEL, "p": approval_id})


def _actor(principal: Any) -> str:
    return getattr(principal, "email", None) or principal.subject


def to_json(row: ApprovalRow, public_url: str = "") -> dict[str, Any]:
    return {
        "id": row.id, "status": row.status, "url": f"{public_url.rstrip('/')}/approvals/{row.id}",
        "requester": row.requester_email or row.requester, "requester_subject": row.requester,
        "agent": row.agent, "session_id": row.session_id, "connection": row.connection,
        "region": row.region, "command": row.command, "service": row.service,
        "operation": row.operation, "access_level": row.access_level,
        "actions": list(row.actions or []), "resources": list(row.resources or []),
        "call_hash": row.call_hash, "justification": row.justification, "rule": row.rule,
        "approvers": list(row.approvers or []), "channels": list(row.channels or []),
        "presence": row.presence or "fresh", "requested_at": iso(row.requested_at), "expires_at": iso(row.expires_at),
        "decided_at": iso(row.decided_at), "approver": row.decided_by_email or row.decided_by,
        "channel": row.decision_channel, "reason": row.decision_reason,
        "consumed_at": iso(row.consumed_at),
    }


# --------------------------------------------------------------------------- create / read

def create(db: Any, settings: Any, principal: Any, *, invocation: Any, decision: Any, connection: str,
           session_id: str | None = None, reason: str | None = None, agent: str | None = None,
           client_hash: str | None = None) -> tuple[ApprovalRow | None, bool]:
    """Record a request for a call the (server's) policy sends to review -> (row, created).

    (None, False) when the policy allows the call outright; an existing pending request for the
    same requester and call is returned (created False) instead of a duplicate.

    Raises ApprovalForbidden when the policy denies the call or a required justification is
    missing; ApprovalConflict when the client's call hash differs from the server's own.
    """
    effect = getattr(decision, "effect", "deny")
    if effect == "allow":
        return None, False
    if effect != "review":
        why = getattr(decision, "reason", None) or "denied by policy"
        raise ApprovalForbidden(f"denied by rule {getattr(decision, 'rule', None) or '(default)'}: {why}")
    reason = (reason or "").strip()[:2000] or None
    if _review(decision, "require_justification", False) and not reason:
        raise JustificationRequired(
            f"rule {getattr(decision, 'rule', None) or '(unnamed)'} requires a justification; "
            "set HOOP_REASON to why the command is needed and run it again")
    digest = hash_invocation(invocation, connection)
    if client_hash is not None and client_hash != digest:
        raise ApprovalConflict("the call hash sent does not match the server's reading of the command; "
                               "client and server versions may differ")
    now = time.time()
    expiry = min(float(_review(decision, "expiry", None) or settings.approval_ttl_seconds),
                 float(settings.approval_ttl_seconds))
    with db.session() as session:
        existing = session.execute(
            select(ApprovalRow).where(
                ApprovalRow.org == principal.org, ApprovalRow.requester == principal.subject,
                ApprovalRow.call_hash == digest, ApprovalRow.status == "pending",
                ApprovalRow.expires_at > now,
                # the same call under another rule (a detection's hold) needs its own request
                ApprovalRow.rule.is_(None) if getattr(decision, "rule", None) is None
                else ApprovalRow.rule == getattr(decision, "rule", None),
            ).limit(1)
        ).scalar_one_or_none()
        if existing is not None:        # the same call asked again: resume, do not duplicate
            return existing, False
        row = ApprovalRow(
            id="apr_" + secrets.token_hex(8), org=principal.org, status="pending",
            requester=principal.subject, requester_email=getattr(principal, "email", None),
            agent=(agent or None) and str(agent)[:128], session_id=(session_id or None) and str(session_id)[:64],
            connection=connection, region=getattr(invocation.globals, "region", None),
            command=display_command(invocation.argv), service=invocation.service,
            operation=invocation.operation, access_level=invocation.access_level,
            actions=list(invocation.actions), resources=list(invocation.resources)[:200],
            call_hash=digest, justification=reason, rule=getattr(decision, "rule", None),
            approvers=_strings(_review(decision, "approvers")),
            channels=_strings(_review(decision, "channels")),
            presence="none" if _review(decision, "presence", "fresh") == "none" else None,
            requested_at=now, expires_at=now + float(expiry),
        )
        session.add(row)
        session.flush()
        _event(session, row, "requested", _actor(principal), None, reason)
    return row, True


def _expire(session: Any, org: str, ids: list[str] | None = None) -> None:
    now = time.time()
    stmt = update(ApprovalRow).where(ApprovalRow.org == org, ApprovalRow.status == "pending",
                                     ApprovalRow.expires_at <= now)
    if ids is not None:
        stmt = stmt.where(ApprovalRow.id.in_(ids))
    if session.execute(stmt.values(status="expired")).rowcount:
        for approval_id in ids or []:
            session.add(ApprovalEvent(approval_id=approval_id, org=org, at=now, event="expired"))


def get(db: Any, org: str, approval_id: str) -> ApprovalRow:
    if not isinstance(approval_id, str) or not re.fullmatch(r"apr_[0-9a-f]{16}", approval_id):
        raise ApprovalNotFound(f"no approval {approval_id!r}")
    with db.session() as session:
        _expire(session, org, [approval_id])
        row = session.execute(select(ApprovalRow).where(
            ApprovalRow.id == approval_id, ApprovalRow.org == org)).scalar_one_or_none()
    if row is None:
        raise ApprovalNotFound(f"no approval {approval_id!r}")
    return row


def find(db: Any, approval_id: str) -> ApprovalRow | None:
    """Any organisation's approval by id: only for channels that carry no org (Slack), which
    must then check the decider against `row.org`."""
    if not isinstance(approval_id, str) or not re.fullmatch(r"apr_[0-9a-f]{16}", approval_id):
        return None
    with db.session() as session:
        row = session.get(ApprovalRow, approval_id)
    return get(db, row.org, approval_id) if row is not None else None


def note(db: Any, row: ApprovalRow, event: str, actor: str | None, channel: str | None,
         detail: str | None) -> None:
    """Record an event (e.g. a refused Slack click by an unknown user) without changing the row."""
    with db.session() as session:
        _event(session, row, event, actor, channel, detail)


def list_(db: Any, org: str, status: str | None = None, limit: int = 100) -> list[ApprovalRow]:
    with db.session() as session:
        _expire(session, org)
        stmt = select(ApprovalRow).where(ApprovalRow.org == org)
        if status:
            stmt = stmt.where(ApprovalRow.status == status)
        stmt = stmt.order_by(ApprovalRow.requested_at.desc()).limit(max(1, min(limit, 1000)))
        return list(session.execute(stmt).scalars())


def events(db: Any, org: str, approval_id: str) -> list[dict[str, Any]]:
    with db.session() as session:
        rows = session.execute(select(ApprovalEvent).where(
            ApprovalEvent.org == org, ApprovalEvent.approval_id == approval_id
        ).order_by(ApprovalEvent.id)).scalars()
        return [{"at": iso(e.at), "event": e.event, "actor": e.actor, "channel": e.channel,
                 "detail": e.detail} for e in rows]


# --------------------------------------------------------------------------- deciding

def holds(principal: Any, entry: str) -> bool:
    """Does `principal` satisfy one `approvers` entry: "role:NAME" or an IdP group name."""
    roles = set(getattr(principal, "roles", ()) or ())
    if entry.startswith("role:"):
        return entry[5:] in roles or "admin" in roles
    return entry in set(getattr(principal, "groups", ()) or ())


def refusal(row: ApprovalRow, principal: Any) -> str | None:
    """Why `principal` may not decide `row` (None: they may).

    The requester decides only when the rule lists `self`. Anyone else needs the approver role
    (admin implies it) and, when the rule lists groups or roles, one of them.
    """
    approvers = [str(a) for a in (row.approvers or [])]
    if principal.subject == row.requester:
        if "self" in approvers:
            return None
        return "requesters cannot approve their own requests (the rule does not say approvers: self)"
    if approvers == ["self"]:
        return "this rule lets only the requester approve (approvers: self)"
    roles = set(getattr(principal, "roles", ()) or ())
    if not roles & {"approver", "admin"}:
        return "only users with the approver role can decide approvals"
    listed = [a for a in approvers if a != "self"]
    if listed and not any(holds(principal, a) for a in listed):
        return f"this rule needs an approver from {', '.join(listed)}"
    return None


def needs_presence(row: ApprovalRow, principal: Any) -> bool:
    """Must `principal` prove presence to approve `row`? The requester must, unless the rule says
    `presence: none` (a confirmation against mistakes, not against a hostile agent)."""
    return principal.subject == row.requester and (row.presence or "fresh") != "none"


def presence_refusal(row: ApprovalRow, presence: Presence | None, now: float | None = None) -> str | None:
    """Why `presence` does not let the requester approve `row` (None: it does)."""
    now = time.time() if now is None else now
    if presence is None or presence.method not in PRESENCE_METHODS:
        return ("approving your own request needs proof that you are there, which a stored or refreshed "
                f"login cannot give: open {row.id} in the hoop console and sign in again (or use a passkey)")
    if presence.at <= row.requested_at:
        return ("your sign-in is older than this request; sign in again (or use a passkey) to approve "
                "your own request")
    if now - presence.at > STEP_UP_WINDOW:
        return (f"your sign-in is more than {STEP_UP_WINDOW / 60:.0f} minutes old; sign in again "
                "(or use a passkey) to approve your own request")
    return None


def channel_refusal(row: ApprovalRow, principal: Any, channel: str) -> str | None:
    """Why the rule's `channels:` refuses a decision through `channel` (None: accepted).

    `terminal` names the requester's own decision from where the terminal sends them: the
    console's step-up (or, with `presence: none`, the prompt's answer through the API)."""
    if not row.channels or channel in row.channels:
        return None
    if "terminal" in row.channels and principal.subject == row.requester and channel in ("web", "cli"):
        return None
    return f"this rule takes decisions only via {', '.join(row.channels)}"


def decide(db: Any, principal: Any, approval_id: str, *, approve: bool, reason: str | None = None,
           call_hash: str | None = None, channel: str = "cli", presence: Presence | None = None,
           notify: Callable[[str], None] | None = None) -> ApprovalRow:
    """Record a decision. Exactly one decision ever wins; later ones get ApprovalConflict.

    `channel` is the route the decision came through (cli: the API, web: the console, slack);
    `presence` is what the console established (a fresh sign-in or a passkey). The requester
    approving their own request needs it (needs_presence); denying one's own request does not.
    """
    if channel not in DECIDER_CHANNELS:
        raise ApprovalError(f"unknown channel {channel!r}")
    reason = (reason or "").strip()[:2000] or None
    row = get(db, principal.org, approval_id)
    actor = _actor(principal)
    problem: ApprovalError | None = None
    why = refusal(row, principal) or channel_refusal(row, principal, channel)
    if why:
        problem = ApprovalForbidden(why)
    elif call_hash is not None and call_hash != row.call_hash:
        problem = ApprovalConflict("the call hash does not match this approval's call; refusing to "
                                   "approve a different command")
    elif row.status != "pending":
        problem = ApprovalConflict(f"approval {row.id} is already {row.status}"
                                   + (f" (by {row.decided_by_email or row.decided_by})" if row.decided_by else ""))
    elif approve and needs_presence(row, principal):
        why = presence_refusal(row, presence)
        problem = ApprovalForbidden(why) if why else None
    detail = reason
    if presence is not None and principal.subject == row.requester:   # the trail says how they proved it
        detail = f"{reason + ' ' if reason else ''}[presence: {presence.method} at {iso(presence.at)}]"
    now = time.time()
    with db.session() as session:
        if problem is None:
            result = session.execute(
                update(ApprovalRow).where(
                    ApprovalRow.id == row.id, ApprovalRow.org == principal.org,
                    ApprovalRow.status == "pending", ApprovalRow.expires_at > now,
                ).values(
                    status="approved" if approve else "rejected", decided_at=now,
                    decided_by=principal.subject, decided_by_email=getattr(principal, "email", None),
                    decision_channel=channel, decision_reason=reason,
                    expires_at=now + USE_WINDOW_SECONDS if approve else row.expires_at,
                )
            )
            if result.rowcount == 1:
                _event(session, row, "approved" if approve else "rejected", actor, channel, detail)
                _pg_notify(session, row.id)
            else:
                problem = ApprovalConflict(f"approval {row.id} was decided or expired before this decision")
        if problem is not None:
            _event(session, row, "refused", actor, channel, problem.message)
    if problem is not None:
        raise problem
    if notify is not None:
        notify(row.id)
    return get(db, principal.org, row.id)


def consume(db: Any, approval_id: str, principal: Any, call_hash: str, *, rule: str | None = None) -> ApprovalRow:
    """Use an approval once, for exactly the call it names. For the credential broker.

    `rule`: the approval must have been asked under this rule (a session a detection holds is
    released call by call only by approvals of the hold, never by one granted before it).
    Raises ApprovalNotFound (unknown, or another organisation's), ApprovalForbidden (not the
    requester's), ApprovalConflict (not approved, already used, expired, or a different call).
    """
    row = get(db, principal.org, approval_id)
    now = time.time()
    problem: ApprovalError | None = None
    if row.requester != principal.subject:
        problem = ApprovalForbidden("this approval was requested by someone else")
    elif rule is not None and row.rule != rule:
        problem = ApprovalConflict(f"approval {row.id} was asked under rule {row.rule}; this call needs one "
                                   f"under {rule}")
    elif row.call_hash != call_hash:
        problem = ApprovalConflict("this approval is for a different command (call hash mismatch)")
    elif row.status != "approved":
        problem = ApprovalConflict(f"approval {row.id} is {row.status}, not approved")
    elif row.consumed_at is not None:
        problem = ApprovalConflict(f"approval {row.id} was already used; approvals are single-use")
    elif row.expires_at <= now:
        problem = ApprovalConflict(f"approval {row.id} was approved but not used in time; request again")
    with db.session() as session:
        if problem is None:
            result = session.execute(
                update(ApprovalRow).where(
                    ApprovalRow.id == row.id, ApprovalRow.org == principal.org,
                    ApprovalRow.status == "approved", ApprovalRow.consumed_at.is_(None),
                    ApprovalRow.call_hash == call_hash, ApprovalRow.requester == principal.subject,
                    ApprovalRow.expires_at > now,
                ).values(consumed_at=now)
            )
            if result.rowcount == 1:
                _event(session, row, "consumed", _actor(principal), None, None)
            else:
                problem = ApprovalConflict(f"approval {row.id} was already used; approvals are single-use")
        if problem is not None:
            _event(session, row, "refused", _actor(principal), "credentials", problem.message)
    if problem is not None:
        raise problem
    return get(db, principal.org, row.id)


def set_slack_message(db: Any, approval_id: str, channel: str, ts: str) -> None:
    with db.session() as session:
        session.execute(update(ApprovalRow).where(ApprovalRow.id == approval_id)
                        .values(slack_channel=channel[:64], slack_ts=ts[:64]))


def consume_matching(db: Any, principal: Any, call_hash: str, *, rule: str | None = None) -> ApprovalRow | None:
    """For the gateway: use the requester's approved, unused, unexpired approval of exactly this
    call, if there is one (the same request sent again after approval goes through once).
    `rule`: only an approval asked under this rule counts (see consume)."""
    now = time.time()
    with db.session() as session:
        stmt = select(ApprovalRow.id).where(
            ApprovalRow.org == principal.org, ApprovalRow.requester == principal.subject,
            ApprovalRow.call_hash == call_hash, ApprovalRow.status == "approved",
            ApprovalRow.consumed_at.is_(None), ApprovalRow.expires_at > now)
        if rule is not None:
            stmt = stmt.where(ApprovalRow.rule == rule)
        ids = session.execute(stmt.order_by(ApprovalRow.decided_at).limit(1)).scalars().all()
    for approval_id in ids:
        try:
            return consume(db, approval_id, principal, call_hash, rule=rule)
        except ApprovalConflict:   # a concurrent retry used it first
            return None
    return None
