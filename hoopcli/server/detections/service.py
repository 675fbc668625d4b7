"""Findings: raise one from a trigger (stored once, then its action: alert, hold or revoke, and a
Slack message), and what the API, the CLI and the console ask of them.

Raised once: a finding is unique per (org, rule, scope, window key), and a trigger whose rule
already has a finding in the same scope within one window (another replica's, or one raised
before a restart) is the same episode and raises nothing.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import func, select

from hoopcli.detect.engine import Trigger, duration
from hoopcli.errors import UsageError
from hoopcli.server.detections.holds import SESSION_ID, dialect_insert, hold_session, holds_of, inserted
from hoopcli.server.errors import BadRequest, NotFound
from hoopcli.server.identity.security import Principal
from hoopcli.server.settings import Settings
from hoopcli.server.store.db import Database
from hoopcli.server.store.detections import Finding
from hoopcli.server.store.ledger import LedgerRecord

log = logging.getLogger("hoopcli.server.detections")
FINDING_ID = re.compile(r"^fnd_[0-9a-f]{16}$")
SEES_ALL = frozenset({"approver", "auditor", "admin"})
MAX_LIMIT = 500


def prior_episode(db: Database, org: str, rule: str, scope_key: str, when: float, window: float) -> float | None:
    """The time of a finding of this rule and scope within one window of `when`, if any."""
    with db.session() as s:
        return s.scalar(select(Finding.at).where(
            Finding.org == org, Finding.rule == rule, Finding.scope_key == scope_key,
            Finding.at > when - window, Finding.at < when + window).order_by(Finding.at.desc()).limit(1))


def raise_finding(db: Database, settings: Settings, org: str, trigger: Trigger) -> Finding | None:
    """Store the finding and take its action. None: it was raised already (same window key)."""
    rule, ev = trigger.rule, trigger.event
    summary = trigger.summary()
    fid = "fnd_" + secrets.token_hex(8)
    values = {"id": fid, "org": org, "rule": rule.id, "title": rule.title, "severity": rule.severity,
              "action": rule.action, "scope": rule.scope, "scope_key": trigger.scope_key[:400],
              "window_key": trigger.window_key[:200], "session_id": ev.session[:128], "user": ev.user[:255],
              "user_email": ev.label[:320] if "@" in ev.label else None, "agent": (ev.agent or None) and ev.agent[:128],
              "at": ev.time, "raised_at": time.time(), "window_seconds": int(rule.window),
              "threshold": rule.count, "count": trigger.count, "summary": summary,
              "trigger_record": ev.record[:36], "records": trigger.records, "values": trigger.values}
    with db.session() as s:              # one transaction: the finding, its hold, what was done
        ins = dialect_insert(s)(Finding).values(**values).on_conflict_do_nothing(
            index_elements=["org", "rule", "scope_key", "window_key"])
        if not inserted(s, ins, Finding.id):
            return None
        outcome = "alert"
        if rule.action in ("hold", "revoke"):
            reason = (f"hoop: session held by finding {fid} ({rule.id}: {summary}); every call needs an "
                      f"approver until one releases it (`hoop findings release {ev.session}`)")
            held = hold_session(s, db, org, ev.session, ev.user, fid, rule.id, reason[:2000])
            outcome = "session held" if held else "session already held"
        row = s.get(Finding, fid)
        assert row is not None
        row.outcome = outcome
    if rule.action == "revoke":
        from hoopcli.server.sessions.service import revoke_session

        n = revoke_session(db, ev.session)
        with db.session() as s:
            stored = s.get(Finding, fid)
            assert stored is not None
            stored.outcome = row.outcome = f"{outcome}; {n} session credential{'s' if n != 1 else ''} revoked"
    log.warning("finding %s %s (%s, %s) session=%s user=%s: %s", fid, rule.id, rule.severity, row.outcome,
                ev.session, ev.user, summary)
    if settings.slack is not None:
        from hoopcli.server.detections.notify import post_finding

        threading.Thread(target=post_finding, args=(db, settings, fid, to_json(row, None, settings.public_url)),
                         daemon=True, name="hoop-finding-slack").start()
    return row


# -- reading --------------------------------------------------------------------------------------

def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def to_json(row: Finding, hold: dict[str, Any] | None = None, public_url: str = "") -> dict[str, Any]:
    return {"id": row.id, "rule": row.rule, "title": row.title, "severity": row.severity, "action": row.action,
            "outcome": row.outcome, "summary": row.summary, "session_id": row.session_id, "user": row.user,
            "user_email": row.user_email, "agent": row.agent, "scope": row.scope, "at": _iso(row.at),
            "raised_at": _iso(row.raised_at), "window": duration(row.window_seconds) if row.window_seconds else None,
            "threshold": row.threshold, "count": row.count, "values": list(row.values or []),
            "records": list(row.records or []), "trigger_record": row.trigger_record,
            "held": bool(hold and hold.get("held") and hold.get("finding") == row.id),
            "url": f"{public_url.rstrip('/')}/findings/{row.id}"}


def _visible(principal: Principal) -> Any:
    return None if principal.roles & SEES_ALL else principal.subject


def list_findings(db: Database, settings: Settings, principal: Principal, *, session_id: str | None = None,
                  since: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Newest first. Approvers, auditors and admins see the organisation's; others their own."""
    from hoopcli.server.ledger.query import parse_when

    try:
        after = parse_when(since, "since")
    except UsageError as exc:
        raise BadRequest(exc.message) from None
    if session_id is not None and not SESSION_ID.match(session_id):
        raise BadRequest("session_id: letters, digits and . _ : - only (at most 128)")
    stmt = select(Finding).where(Finding.org == principal.org)
    owner = _visible(principal)
    if owner is not None:
        stmt = stmt.where(Finding.user == owner)
    if session_id:
        stmt = stmt.where(Finding.session_id == session_id[:128])
    if after is not None:
        stmt = stmt.where(Finding.raised_at >= after.timestamp())
    stmt = stmt.order_by(Finding.raised_at.desc(), Finding.id).limit(max(1, min(limit, MAX_LIMIT)))
    with db.session() as s:
        rows = list(s.scalars(stmt))
    holds = holds_of(db, principal.org, sorted({r.session_id for r in rows}))
    return [to_json(r, holds.get(r.session_id), settings.public_url) for r in rows]


def get_finding(db: Database, settings: Settings, principal: Principal, finding_id: str) -> dict[str, Any]:
    """One finding with its hold and the records that raised it (ledger entries, newest first)."""
    from hoopcli.server.ledger.query import leaf_entry

    if not FINDING_ID.match(finding_id):
        raise NotFound(f"no finding {finding_id[:40]!r}")
    with db.session() as s:
        row = s.get(Finding, finding_id)
        owner = _visible(principal)
        if row is None or row.org != principal.org or (owner is not None and row.user != owner):
            raise NotFound(f"no finding {finding_id[:40]!r}")
        ids = [str(r) for r in (row.records or [])][:100]
        leaves = dict(s.execute(select(LedgerRecord.id, LedgerRecord.leaf).where(
            LedgerRecord.org == row.org, LedgerRecord.id.in_(ids))).all()) if ids else {}
        index = dict(s.execute(select(LedgerRecord.id, LedgerRecord.leaf_index).where(
            LedgerRecord.org == row.org, LedgerRecord.id.in_(ids))).all()) if ids else {}
    hold = holds_of(db, principal.org, [row.session_id]).get(row.session_id)
    out = to_json(row, hold, settings.public_url)
    out["hold"] = hold
    out["record_entries"] = [leaf_entry(int(index[i]), leaves[i]) for i in ids if i in leaves]
    return out


def session_findings(db: Database, org: str, session_id: str) -> list[dict[str, Any]]:
    """A session's findings, oldest first (its timeline)."""
    if not SESSION_ID.match(session_id):
        return []
    with db.session() as s:
        rows = list(s.scalars(select(Finding).where(Finding.org == org, Finding.session_id == session_id[:128])
                              .order_by(Finding.at, Finding.id).limit(200)))
    holds = holds_of(db, org, [session_id[:128]])
    return [to_json(r, holds.get(r.session_id)) for r in rows]


def count_findings(db: Database, org: str) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(Finding).where(Finding.org == org)) or 0)
