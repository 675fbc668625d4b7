"""The ledger's read side: keyset-paginated session lists with filters, session timelines, and
record iteration for export and verification.

Lists are ordered newest first by (started_at, id) and paginated by keyset (an opaque cursor
holding the last row's (started_at, id)), never by offset, so page N costs what page 1 costs;
the indexes ix_ledger_sessions_* cover the order with and without a user/agent filter.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session

from hoopcli.errors import UsageError
from hoopcli.server.ledger.checkpoints import utc_iso
from hoopcli.server.ledger.log import API_CALL, call_failed, parse_time
from hoopcli.server.store.ledger import (
    LedgerCommand,
    LedgerCommandAction,
    LedgerRecord,
    LedgerSession,
)

MAX_LIMIT = 500
STATUSES = ("ok", "failed", "incomplete")
EFFECTS = ("allow", "review", "deny")


@dataclass
class Filters:
    user: str | None = None
    agent: str | None = None
    connection: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    action: str | None = None          # glob, e.g. "s3:Get*"
    decision: str | None = None        # allow | review | deny
    status: str | None = None          # ok | failed | incomplete
    exit_code: int | None = None
    session_id: str | None = None


def parse_when(value: str | None, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        return parse_time(value)
    except ValueError:
        raise UsageError(f"{name}: not an RFC 3339 time: {value[:40]!r}") from None


def glob_to_like(pattern: str) -> str:
    out = []
    for ch in pattern.lower():
        if ch in "\\%_":
            out.append("\\" + ch)
        elif ch == "*":
            out.append("%")
        elif ch == "?":
            out.append("_")
        else:
            out.append(ch)
    return "".join(out)


def encode_cursor(when: datetime, ident: str) -> str:
    raw = json.dumps([utc_iso(when), ident], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        when, ident = json.loads(raw)
        if not isinstance(ident, str):
            raise ValueError
        return parse_time(when), ident
    except (ValueError, TypeError, UnicodeDecodeError):
        raise UsageError("invalid cursor") from None


def _session_conditions(org: str, owner: str | None, f: Filters) -> list[Any]:
    S = LedgerSession
    cond: list[Any] = [S.org == org]
    if owner is not None:
        cond.append(S.user == owner)
    if f.user:
        cond.append(or_(S.user == f.user, S.user_email == f.user))
    if f.agent:
        cond.append(S.agent == f.agent)
    if f.connection:
        cond.append(S.connection == f.connection)
    if f.session_id:
        cond.append(S.id == f.session_id)
    if f.since:
        cond.append(S.started_at >= f.since)
    if f.until:
        cond.append(S.started_at < f.until)
    if f.status == "incomplete":
        cond.append(S.incomplete > 0)
    elif f.status == "failed":
        cond.append(S.failed > 0)
    elif f.status == "ok":
        cond.append(and_(S.failed == 0, S.incomplete == 0))
    elif f.status is not None:
        raise UsageError(f"status must be one of {', '.join(STATUSES)}")
    if f.action:
        A = LedgerCommandAction
        cond.append(exists().where(A.org == org, A.session_id == S.id,
                                   A.action.like(glob_to_like(f.action), escape="\\")))
    C = LedgerCommand
    if f.decision:
        if f.decision not in EFFECTS:
            raise UsageError(f"decision must be one of {', '.join(EFFECTS)}")
        cond.append(exists().where(C.org == org, C.session_id == S.id, C.effect == f.decision))
    if f.exit_code is not None:
        cond.append(exists().where(C.org == org, C.session_id == S.id, C.exit_code == f.exit_code))
    return cond


def session_dict(row: LedgerSession) -> dict[str, Any]:
    status = "incomplete" if row.incomplete else "failed" if row.failed else "ok"
    return {"id": row.id, "user": row.user, "user_email": row.user_email, "agent": row.agent,
            "host": row.host, "connection": row.connection,
            "started_at": utc_iso(row.started_at), "last_at": utc_iso(row.last_at),
            "commands": row.commands, "incomplete": row.incomplete, "failed": row.failed,
            "denied": row.denied, "reviewed": row.reviewed, "status": status}


def list_sessions(s: Session, org: str, owner: str | None, f: Filters, limit: int = 50,
                  cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    limit = max(1, min(int(limit), MAX_LIMIT))
    S = LedgerSession
    cond = _session_conditions(org, owner, f)
    if cursor:
        when, ident = decode_cursor(cursor)
        cond.append(or_(S.started_at < when, and_(S.started_at == when, S.id < ident)))
    rows = list(s.scalars(select(S).where(*cond).order_by(S.started_at.desc(), S.id.desc())
                          .limit(limit + 1)))
    found = [(_aware(r.started_at), r.id, session_dict(r)) for r in rows]
    found += _granted_only(s, org, owner, f, cursor, limit + 1)
    found.sort(key=lambda t: (t[0], t[1]), reverse=True)
    more = len(found) > limit
    found = found[:limit]
    nxt = encode_cursor(found[-1][0], found[-1][1]) if more and found else None
    return [d for _w, _i, d in found], nxt


def _granted_only(s: Session, org: str, owner: str | None, f: Filters, cursor: str | None,
                  limit: int) -> list[tuple[datetime, str, dict[str, Any]]]:
    """Sessions the server vended STS keys for (vend mode) whose client put nothing in the log:
    listed all the same, from the server's own rows (a client that suppresses its records does
    not hide that it got keys). Only filters such a session can meet apply; any other hides it."""
    from hoopcli.server.store.models import AgentSession, CredentialGrant

    if f.action or f.decision or f.status or f.exit_code is not None:
        return []
    A, S = AgentSession, LedgerSession
    cond: list[Any] = [A.org == org, exists().where(CredentialGrant.org == org, CredentialGrant.session_id == A.id),
                       ~exists().where(S.org == org, S.id == A.id)]
    if owner is not None:
        cond.append(A.user == owner)
    if f.user:
        cond.append(or_(A.user == f.user, A.user_email == f.user))
    if f.agent:
        cond.append(A.agent == f.agent)
    if f.connection:
        cond.append(A.connection == f.connection)
    if f.session_id:
        cond.append(A.id == f.session_id)
    if f.since:
        cond.append(A.created_at >= f.since)
    if f.until:
        cond.append(A.created_at < f.until)
    if cursor:
        when, ident = decode_cursor(cursor)
        cond.append(or_(A.created_at < when, and_(A.created_at == when, A.id < ident)))
    out = []
    for row in s.scalars(select(A).where(*cond).order_by(A.created_at.desc(), A.id.desc()).limit(limit)):
        summary = observed_session(s, org, owner, row.id)
        if summary is not None:
            out.append((_aware(row.created_at), row.id, summary))
    return out


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def get_session(s: Session, org: str, owner: str | None, session_id: str) -> LedgerSession | None:
    row = s.get(LedgerSession, (org, session_id))
    if row is None or (owner is not None and row.user != owner):
        return None
    return row


def session_records(s: Session, org: str, session_id: str, after: int = -1,
                    limit: int = 2000) -> list[dict[str, Any]]:
    rows = s.execute(select(LedgerRecord.leaf_index, LedgerRecord.leaf).where(
        LedgerRecord.org == org, LedgerRecord.session_id == session_id,
        LedgerRecord.leaf_index > after).order_by(LedgerRecord.leaf_index).limit(limit))
    return [leaf_entry(i, leaf) for i, leaf in rows]


def leaf_entry(index: int, leaf: str | None) -> dict[str, Any]:
    if leaf is None:
        return {"index": index, "record": None, "receipt": None, "redacted": True}
    try:
        data = json.loads(leaf)
        return {"index": index, "record": data.get("record"), "receipt": data.get("receipt")}
    except (ValueError, AttributeError):
        return {"index": index, "record": None, "receipt": None, "unreadable": True}


def call_status(rec: dict[str, Any]) -> str:
    """A gateway call's status: denied (policy said no), failed (>= 400, or no answer) or ok."""
    if (rec.get("decision") or {}).get("effect") == "deny":
        return "denied"
    return "failed" if call_failed(rec) else "ok"


def _when(entry: dict[str, Any]) -> datetime | None:
    rec = entry.get("call") or entry.get("start") or entry.get("result") or {}
    try:
        return parse_time(str(rec.get("time")))
    except ValueError:
        return None


def timeline(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The session's commands: start and result records joined by command_id, in the client's
    order (seq); and each gateway call (one api.call record) as its own entry, placed by time
    among them. Every entry has `kind` ("command" or "api.call"), `command_id`, `start`,
    `result`, `status`; a call also has `call` (its record) and `source` "gateway"."""
    commands: dict[str, dict[str, Any]] = {}
    calls: list[dict[str, Any]] = []
    for e in entries:
        rec = e.get("record")
        if not isinstance(rec, dict):
            continue
        if rec.get("type") == API_CALL:
            calls.append({"kind": API_CALL, "source": "gateway", "command_id": str(rec.get("id")),
                          "start": None, "result": None, "call": rec, "status": call_status(rec)})
            continue
        cid = str(rec.get("command_id"))
        c = commands.setdefault(cid, {"kind": "command", "command_id": cid, "start": None, "result": None})
        if rec.get("type") == "command.start" and c["start"] is None:
            c["start"] = rec
        elif rec.get("type") == "command.result" and c["result"] is None:
            c["result"] = rec
    ordered = []
    for c in commands.values():
        if c["start"] is None or c["result"] is None:
            c["status"] = "incomplete"
        else:
            c["status"] = "ok" if c["result"].get("exit_code") == 0 else "failed"
        ordered.append(c)
    ordered.sort(key=lambda c: ((c["start"] or c["result"] or {}).get("seq") or 0))
    if not calls:
        return ordered
    return _merge_by_time(ordered, calls)


def _merge_by_time(commands: list[dict[str, Any]], calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge the calls (sorted by time, log order on ties) into the commands (kept in their
    order): a call goes before the first command that started later than it."""
    far = datetime.max.replace(tzinfo=timezone.utc)
    timed = sorted(((_when(c) or far, c) for c in calls), key=lambda wc: wc[0])  # stable on ties
    out: list[dict[str, Any]] = []
    i = 0
    for c in commands:
        when = _when(c)
        while i < len(timed) and when is not None and timed[i][0] < when:
            out.append(timed[i][1])
            i += 1
        out.append(c)
    out.extend(c for _, c in timed[i:])
    return out


def iter_records(db: Any, org: str, owner: str | None, f: Filters,
                 chunk: int = 1000) -> Iterator[tuple[int, str | None]]:
    """(leaf_index, leaf text) of every record of the matching sessions, in log order, read in
    keyset chunks with a fresh DB session each (safe to stream for any size)."""
    R, S = LedgerRecord, LedgerSession
    everything = owner is None and f == Filters()
    after = -1
    while True:
        with db.session() as s:
            q = select(R.leaf_index, R.leaf).where(R.org == org, R.leaf_index > after)
            if not everything:
                q = q.where(R.session_id.in_(select(S.id).where(*_session_conditions(org, owner, f))))
            rows = list(s.execute(q.order_by(R.leaf_index).limit(chunk)))
        if not rows:
            return
        yield from ((int(i), leaf) for i, leaf in rows)
        after = rows[-1][0]


# -- what the server observed outside the log ------------------------------------------------------

def _iso(value: datetime | float | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        value = datetime.fromtimestamp(float(value), timezone.utc)
    return utc_iso(_aware(value))


def observed(s: Session, org: str, session_id: str) -> list[dict[str, Any]]:
    """The session's events the server itself observed and keeps in its own tables, oldest
    first, each `{"kind", "time", "source": "server", ...}`: `session.start` / `session.end`
    (hoop run / hoop env and their close), `session.credential` (a gateway credential issued:
    key id, expiry, revocation), `credential.grant` (an STS key vended in vend mode: role, STS
    session name, actions, decision, approval, expiry), `approval.request` and
    `approval.decision`. None of these is a client's claim: a client that uploads nothing still
    leaves them."""
    from hoopcli.server.store.approvals import ApprovalRow
    from hoopcli.server.store.models import AgentSession, CredentialGrant, SessionCredential

    out: list[dict[str, Any]] = []
    row = s.get(AgentSession, session_id) if len(session_id) <= 64 else None
    if row is not None and row.org == org:
        out.append({"kind": "session.start", "time": _iso(row.created_at), "user": row.user,
                    "user_email": row.user_email, "agent": row.agent, "host": row.host,
                    "connection": row.connection, "opened_by": row.source})
        if row.closed_at is not None:
            out.append({"kind": "session.end", "time": _iso(row.closed_at), "exit_code": row.exit_code})
    for c in s.scalars(select(SessionCredential).where(SessionCredential.org == org,
                                                       SessionCredential.session_id == session_id)):
        out.append({"kind": "session.credential", "time": _iso(c.created_at), "access_key_id": c.access_key_id,
                    "connection": c.connection, "agent": c.agent, "expires_at": _iso(c.expires_at),
                    "revoked_at": _iso(c.revoked_at)})
    for g in s.scalars(select(CredentialGrant).where(CredentialGrant.org == org,
                                                     CredentialGrant.session_id == session_id)):
        out.append({"kind": "credential.grant", "time": _iso(g.created_at), "id": g.id, "user": g.user,
                    "connection": g.connection, "assumed_role_arn": g.assumed_role_arn,
                    "sts_session_name": g.sts_session_name, "actions": list(g.actions or []),
                    "decision": dict(g.decision or {}), "approval_id": g.approval_id,
                    "expiration": _iso(g.expiration)})
    for a in s.scalars(select(ApprovalRow).where(ApprovalRow.org == org, ApprovalRow.session_id == session_id)):
        out.append({"kind": "approval.request", "time": _iso(a.requested_at), "id": a.id,
                    "requester": a.requester_email or a.requester, "command": a.command, "rule": a.rule,
                    "justification": a.justification, "actions": list(a.actions or [])})
        if a.decided_at is not None:
            out.append({"kind": "approval.decision", "time": _iso(a.decided_at), "id": a.id, "status": a.status,
                        "approver": a.decided_by_email or a.decided_by, "channel": a.decision_channel,
                        "reason": a.decision_reason})
    for e in out:
        e["source"] = "server"
    far = datetime.min.replace(tzinfo=timezone.utc)
    out.sort(key=lambda e: parse_time(e["time"]) if e["time"] else far)
    return out


def observed_session(s: Session, org: str, owner: str | None, session_id: str) -> dict[str, Any] | None:
    """A session the server opened (or vended for) but that has no record in the log yet (its
    client uploaded nothing), shaped like `session_dict`; None if unknown or not the owner's."""
    from hoopcli.server.store.models import AgentSession

    row = s.get(AgentSession, session_id) if len(session_id) <= 64 else None
    if row is None or row.org != org or (owner is not None and row.user != owner):
        return None
    when = utc_iso(_aware(row.created_at))
    return {"id": row.id, "user": row.user, "user_email": row.user_email, "agent": row.agent, "host": row.host,
            "connection": row.connection, "started_at": when, "last_at": _iso(row.closed_at) or when,
            "commands": 0, "incomplete": 0, "failed": 0, "denied": 0, "reviewed": 0, "status": "ok"}
