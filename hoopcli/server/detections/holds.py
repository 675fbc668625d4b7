"""Held sessions: a finding whose action is `hold` (or `revoke`) holds its session, and every
further call of that session needs an approver, whatever the policy says, until an approver
releases it.

The gateway's decide step, the vend path (POST /credentials) and approval requests all ask
`held_decision`: a held session turns allow and review into review under the rule
`detection:<rule>` (approvers: the approver role; the session's own user cannot approve), with
one line saying why. Deny stays deny. An approval of one held call lets exactly that call
through once (approvals are bound to the call and single-use).
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

from sqlalchemy import select, update

from hoopcli.policy.model import Decision, ReviewSpec
from hoopcli.server.errors import Forbidden, NotFound
from hoopcli.server.identity.security import Principal
from hoopcli.server.nonblocking import may_block, waiting_allowed
from hoopcli.server.singleflight import SingleFlight
from hoopcli.server.store.db import Database
from hoopcli.server.store.detections import Hold

RULE_PREFIX = "detection:"
SESSION_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")      # the transcript's session ids
HELD_REVIEW = ReviewSpec(approvers=("role:approver",), channels=("cli", "slack", "web"), expiry=1800, wait=600,
                         require_justification=False)
CACHE_SECONDS = 0.5         # a hold another replica raised is seen within this
WAIT_FOR_DETECTOR = 0.25    # how long a decision waits for this server's detector to catch up
_cache: dict[tuple[int, str, str], tuple[float, tuple[str, str] | None]] = {}
# Bumped by every hold placed or released here: a read that started before one must not put its
# older answer in the cache over the newer one (a hold placed mid-read would be forgotten).
_generations: dict[tuple[int, str, str], int] = {}
_lock = threading.Lock()
_reads: SingleFlight[tuple[str, str] | None] = SingleFlight()


def _remember(db: Database, org: str, session_id: str, value: tuple[str, str] | None) -> None:
    """A hold placed or released by this server: cached at once."""
    key = (id(db), org, session_id)
    with _lock:
        if len(_cache) > 50_000:
            _cache.clear()
            _generations.clear()
        _generations[key] = _generations.get(key, 0) + 1
        _cache[key] = (time.monotonic() + CACHE_SECONDS, value)


def _read(db: Database, org: str, session_id: str, generation: int) -> tuple[str, str] | None:
    key = (id(db), org, session_id)
    with db.session() as s:
        row = s.execute(select(Hold.rule, Hold.reason).where(
            Hold.org == org, Hold.session_id == session_id, Hold.released_at.is_(None))).first()
    value = (row[0], row[1]) if row is not None else None
    with _lock:
        if _generations.get(key, 0) == generation:
            _cache[key] = (time.monotonic() + CACHE_SECONDS, value)
            return value
        newer = _cache.get(key)       # placed or released while this read ran: that one counts
    return newer[1] if newer is not None else value


def dialect_insert(s: Any) -> Any:
    """INSERT with ON CONFLICT for the session's database (SQLite or PostgreSQL)."""
    if s.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert
        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert
    return sqlite_insert


def inserted(s: Any, stmt: Any, key: Any) -> bool:
    """Did this INSERT ... ON CONFLICT write a row? (RETURNING: psycopg reports no rowcount here)."""
    return s.execute(stmt.returning(key)).first() is not None


def hold_session(s: Any, db: Database, org: str, session_id: str, user: str, finding_id: str, rule: str,
                 reason: str) -> bool:
    """Hold a session inside the finding's transaction -> False when it was held already (a
    released hold is taken up again; racing replicas hold it once)."""
    fresh = {"finding_id": finding_id, "rule": rule, "reason": reason, "held_at": time.time(),
             "released_at": None, "released_by": None, "release_reason": None}
    ins = dialect_insert(s)(Hold).values(org=org, session_id=session_id, user=user, **fresh)
    ins = ins.on_conflict_do_update(index_elements=["org", "session_id"], set_=fresh,
                                    where=Hold.__table__.c.released_at.isnot(None))
    held = inserted(s, ins, Hold.session_id)
    if held:
        _remember(db, org, session_id, (rule, reason))
    return bool(held)


def active_hold(db: Database, org: str, session_id: str) -> tuple[str, str] | None:
    """(rule, reason) of the session's hold, or None."""
    if not SESSION_ID.match(session_id):
        return None                   # not a session id a record can carry: never held
    key = (id(db), org, session_id)
    hit = _cache.get(key)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    may_block("session hold read")
    with _lock:
        generation = _generations.get(key, 0)
    # a caller after a hold was placed or released joins no read that began before it
    return _reads.do((key, generation), lambda: _read(db, org, session_id, generation))


def _caught_up(db: Database, org: str) -> None:
    from hoopcli.server.detections.registry import detector_of

    detector = detector_of(db)
    if detector is not None and detector.wait_caught_up(org, WAIT_FOR_DETECTOR, wait=waiting_allowed()) is None:
        may_block("detector catching up")


def held_decision(db: Database, org: str, session_id: str | None, decision: Decision) -> Decision:
    """The decision for a call of `session_id`: unchanged unless a finding holds the session."""
    if not session_id or decision.effect == "deny":
        return decision
    _caught_up(db, org)       # the records this server just appended are evaluated first
    hold = active_hold(db, org, session_id)
    if hold is None:
        return decision
    return Decision("review", RULE_PREFIX + hold[0], hold[1], HELD_REVIEW, decision.access_level,
                    decision.actions, decision.resources, decision.calls)


def held_view(db: Database, org: str, session_id: str | None, view: dict[str, Any]) -> dict[str, Any]:
    """held_decision for the vend path's decision dict {effect, rule, reason, review, access_level}."""
    if not session_id or view.get("effect") == "deny":
        return view
    _caught_up(db, org)
    hold = active_hold(db, org, session_id)
    if hold is None:
        return view
    return {**view, "effect": "review", "rule": RULE_PREFIX + hold[0], "reason": hold[1],
            "review": HELD_REVIEW.to_dict()}


def held_rule(rule: str | None) -> str | None:
    """The rule an approval must carry to release a held call (None: any approval of the call)."""
    return rule if rule and rule.startswith(RULE_PREFIX) else None


def hold_json(row: Hold) -> dict[str, Any]:
    return {"session_id": row.session_id, "user": row.user, "finding": row.finding_id, "rule": row.rule,
            "reason": row.reason, "held_at": row.held_at, "released_at": row.released_at,
            "released_by": row.released_by, "release_reason": row.release_reason,
            "held": row.released_at is None}


def release(db: Database, principal: Principal, session_id: str, reason: str | None) -> dict[str, Any]:
    """End a session's hold (approver role; never the session's own user)."""
    if not principal.has("approver"):
        raise Forbidden("releasing a held session needs the approver role")
    if not SESSION_ID.match(session_id):
        raise NotFound(f"session {session_id[:128]!r} is not held")
    with db.session() as s:
        row = s.get(Hold, (principal.org, session_id[:128]))
        if row is None or row.released_at is not None:
            raise NotFound(f"session {session_id[:128]!r} is not held")
        if row.user == principal.subject:
            raise Forbidden("a held session is released by an approver other than its own user")
        s.execute(update(Hold).where(Hold.org == principal.org, Hold.session_id == row.session_id,
                                     Hold.released_at.is_(None)).values(
            released_at=time.time(), released_by=principal.email or principal.subject,
            release_reason=(reason or "").strip()[:2000] or None))
        s.flush()
        s.refresh(row)
        out = hold_json(row)
    _remember(db, principal.org, session_id, None)
    return out


def holds_of(db: Database, org: str, session_ids: list[str]) -> dict[str, dict[str, Any]]:
    session_ids = [sid for sid in session_ids if "\x00" not in sid]
    if not session_ids:
        return {}
    with db.session() as s:
        rows = s.scalars(select(Hold).where(Hold.org == org, Hold.session_id.in_(session_ids[:1000])))
        return {r.session_id: hold_json(r) for r in rows}
