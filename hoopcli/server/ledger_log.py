"""The ledger's write side: append records to an organisation's Merkle log, sign checkpoints,
and read proofs back from storage.

Appends for one organisation are serialized by a write on its `ledger_logs` head row at the very
start of the transaction (a row lock on PostgreSQL; SQLite's single write lock, taken before any
read so no transaction can upgrade from a stale snapshot). Within that lock: duplicate check,
leaf hashing, frontier update, node inserts, summaries, and (when due) a signed checkpoint.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, insert, select, tuple_, update
from sqlalchemy.orm import Session

from ..errors import HoopError
from ..transcript import canonical_json
from . import checkpoints as cp
from . import merkle
from .store.ledger import (LedgerCheckpoint, LedgerCommand, LedgerCommandAction, LedgerLog,
                           LedgerNode, LedgerRecord, LedgerSession)


class LedgerCorrupt(HoopError):
    """Storage does not hold a node the log says it has."""


@dataclass
class Uploader:
    subject: str
    email: str | None = None


@dataclass
class AppendResult:
    accepted: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    size: int = 0


_FRACTION = re.compile(r"(\.\d{1,6})\d*")


def parse_time(value: str) -> datetime:
    text = _FRACTION.sub(r"\1", value.strip().replace("t", "T").replace(" ", "T"))
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def normalize_id(value: str) -> str:
    return value.replace("-", "").lower()


def _dialect_insert(session: Session) -> Callable[[Any], Any]:
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert
        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert
    return sqlite_insert


def lock_head(session: Session, org: str) -> LedgerLog:
    """Create the org's head row if needed and take its lock for the rest of the transaction."""
    ins = _dialect_insert(session)
    session.execute(ins(LedgerLog).values(org=org, size=0, frontier=[]).on_conflict_do_nothing())
    session.execute(update(LedgerLog).where(LedgerLog.org == org).values(size=LedgerLog.size))
    head = session.execute(select(LedgerLog).where(LedgerLog.org == org)
                           .execution_options(populate_existing=True)).scalar_one()
    return head


def append(session: Session, org: str, uploader: Uploader,
           records: Sequence[tuple[int, dict[str, Any], list[str]]], *,
           now: datetime | None = None, key: cp.SigningKey | None = None,
           checkpoint_interval: float = cp.CHECKPOINT_INTERVAL_SECONDS) -> AppendResult:
    """Append validated, capped records [(index in request, record, truncation marks)]."""
    now = now or datetime.now(timezone.utc)
    out = AppendResult()
    head = lock_head(session, org)
    wanted = {normalize_id(r["id"]) for _, r, _ in records}
    existing = set(session.scalars(select(LedgerRecord.id).where(
        LedgerRecord.org == org, LedgerRecord.id.in_(wanted)))) if wanted else set()
    sessions = _load_sessions(session, org, {r["session_id"] for _, r, _ in records})
    frontier = merkle.Frontier(head.size, [bytes.fromhex(h) for h in head.frontier])
    rows: list[dict[str, Any]] = []
    nodes: list[dict[str, Any]] = []
    appended: list[tuple[dict[str, Any], datetime]] = []
    for index, rec, marks in records:
        rid = normalize_id(rec["id"])
        if rid in existing:
            out.duplicates.append(rec["id"])
            continue
        owner = sessions.get(rec["session_id"])
        if owner is not None and owner.user != uploader.subject:
            out.rejected.append({"index": index, "id": rec["id"],
                                 "errors": ["$.session_id: belongs to another user"]})
            continue
        try:
            rtime = parse_time(rec["time"])
        except ValueError:
            out.rejected.append({"index": index, "id": rec["id"], "errors": ["$.time: not a valid time"]})
            continue
        existing.add(rid)
        receipt = {"received_at": cp.utc_iso(now), "org": org, "uploader": uploader.subject,
                   "uploader_email": uploader.email, "truncated": marks}
        leaf_text = canonical_json({"record": rec, "receipt": receipt}).decode("utf-8")
        leaf_index = frontier.size
        for level, idx, h in frontier.append(merkle.leaf_hash(leaf_text.encode("utf-8"))):
            nodes.append({"org": org, "level": level, "idx": idx, "hash": h})
        rows.append({"org": org, "leaf_index": leaf_index, "id": rid,
                     "session_id": rec["session_id"], "command_id": normalize_id(rec["command_id"]),
                     "type": rec["type"], "time": rtime, "received_at": now, "leaf": leaf_text})
        appended.append((rec, rtime))
        out.accepted.append(rec["id"])
        if owner is None:
            sessions[rec["session_id"]] = _new_session(session, org, uploader, rec, rtime)
    if rows:
        session.execute(insert(LedgerRecord), rows)
        session.execute(insert(LedgerNode), nodes)
        _summarize(session, org, sessions, appended)
        head.size = frontier.size
        head.frontier = [h.hex() for h in frontier.nodes]
        head.updated_at = now
    out.size = head.size
    if key is not None:
        maybe_checkpoint(session, org, head, key, now, interval=checkpoint_interval)
    return out


def _load_sessions(session: Session, org: str, ids: set[str]) -> dict[str, LedgerSession]:
    if not ids:
        return {}
    rows = session.scalars(select(LedgerSession).where(LedgerSession.org == org,
                                                       LedgerSession.id.in_(ids)))
    return {row.id: row for row in rows}


def _new_session(session: Session, org: str, uploader: Uploader, rec: dict[str, Any],
                 rtime: datetime) -> LedgerSession:
    row = LedgerSession(org=org, id=rec["session_id"], user=uploader.subject,
                        user_email=uploader.email, agent=_short(rec.get("agent"), 128),
                        host=_short(rec.get("host"), 255),
                        connection=_short(rec.get("connection"), 128),
                        started_at=rtime, last_at=rtime, commands=0, incomplete=0, failed=0,
                        denied=0, reviewed=0)
    session.add(row)
    return row


def _short(value: Any, n: int) -> str | None:
    return value[:n] if isinstance(value, str) else None


def _summarize(session: Session, org: str, sessions: dict[str, LedgerSession],
               appended: list[tuple[dict[str, Any], datetime]]) -> None:
    cids = {normalize_id(r["command_id"]) for r, _ in appended}
    commands = {c.command_id: c for c in session.scalars(select(LedgerCommand).where(
        LedgerCommand.org == org, LedgerCommand.command_id.in_(cids)))}
    actions: list[dict[str, Any]] = []
    for rec, rtime in appended:
        srow = sessions[rec["session_id"]]
        if rtime < _aware(srow.started_at):
            srow.started_at = rtime
        if rtime > _aware(srow.last_at):
            srow.last_at = rtime
        cid = normalize_id(rec["command_id"])
        crow = commands.get(cid)
        if crow is None:
            crow = LedgerCommand(org=org, command_id=cid, session_id=rec["session_id"],
                                 has_start=0, has_result=0)
            session.add(crow)
            commands[cid] = crow
            srow.commands += 1
            srow.incomplete += 1
        if rec["type"] == "command.start" and not crow.has_start:
            crow.has_start = 1
            crow.started_at = rtime
            for k in ("agent", "host", "connection"):
                if getattr(srow, k) is None and isinstance(rec.get(k), str):
                    setattr(srow, k, rec[k][:128])
            effect = (rec.get("decision") or {}).get("effect")
            crow.effect = effect
            srow.denied += effect == "deny"
            srow.reviewed += effect == "review"
            crow.summary = " ".join(str(a) for a in rec.get("argv") or [])[:300]
            inv = rec.get("invocation") or {}
            for action in {str(a).lower()[:255] for a in inv.get("actions") or [] if isinstance(a, str)}:
                actions.append({"org": org, "command_id": cid, "action": action,
                                "session_id": rec["session_id"]})
            if crow.has_result:
                srow.incomplete -= 1
        elif rec["type"] == "command.result" and not crow.has_result:
            crow.has_result = 1
            crow.exit_code = rec.get("exit_code")
            srow.failed += rec.get("exit_code") not in (0, None)
            if crow.started_at is None:
                crow.started_at = rtime
            if crow.has_start:
                srow.incomplete -= 1
    if actions:
        session.execute(_dialect_insert(session)(LedgerCommandAction).values(actions)
                        .on_conflict_do_nothing())


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


# -- checkpoints -----------------------------------------------------------------------------
def latest_checkpoint(session: Session, org: str) -> LedgerCheckpoint | None:
    return session.scalars(select(LedgerCheckpoint).where(LedgerCheckpoint.org == org)
                           .order_by(LedgerCheckpoint.seq.desc()).limit(1)).first()


def maybe_checkpoint(session: Session, org: str, head: LedgerLog, key: cp.SigningKey,
                     now: datetime, *, interval: float = cp.CHECKPOINT_INTERVAL_SECONDS,
                     force: bool = False) -> LedgerCheckpoint | None:
    """Sign a checkpoint when the log grew and the last one is older than `interval` (or force).
    Must run with the head lock held (inside `append`, or after `lock_head`)."""
    last = latest_checkpoint(session, org)
    if last is not None and last.size == head.size:
        return last if force else None
    if last is not None and not force and now - _aware(last.time) < timedelta(seconds=interval):
        return None
    frontier = merkle.Frontier(head.size, [bytes.fromhex(h) for h in head.frontier])
    previous = cp.checkpoint_hash(cp.parse_body(last.body)) if last is not None else None
    seq = last.seq + 1 if last is not None else 0
    body = cp.make_body(org, seq, head.size, frontier.root().hex(), now, previous, key.key_id)
    row = LedgerCheckpoint(org=org, seq=seq, size=head.size, root=body["root"], time=now,
                           body=cp.body_bytes(body).decode("utf-8"),
                           signature=key.sign(cp.body_bytes(body)), key_id=key.key_id)
    session.add(row)
    session.flush()
    return row


def seal(session: Session, org: str, key: cp.SigningKey, now: datetime | None = None) -> LedgerCheckpoint | None:
    """A checkpoint covering everything appended so far (new one only if the log grew)."""
    head = lock_head(session, org)
    return maybe_checkpoint(session, org, head, key, now or datetime.now(timezone.utc), force=True)


# -- proofs from storage ---------------------------------------------------------------------
def with_nodes(session: Session, org: str, build: Callable[[merkle.NodeGetter], Any]) -> Any:
    """Run a merkle computation against stored nodes, fetching all it needs in one query."""
    need = merkle.needed_nodes(build)
    found: dict[tuple[int, int], bytes] = {}
    if need:
        rows = session.execute(select(LedgerNode.level, LedgerNode.idx, LedgerNode.hash).where(
            LedgerNode.org == org, tuple_(LedgerNode.level, LedgerNode.idx).in_(list(need))))
        found = {(lvl, idx): bytes(h) for lvl, idx, h in rows}

    def get(level: int, index: int) -> bytes:
        try:
            return found[(level, index)]
        except KeyError:
            raise LedgerCorrupt(f"ledger node ({level}, {index}) of org {org} is missing") from None

    return build(get)


def log_size(session: Session, org: str) -> int:
    return session.scalar(select(func.coalesce(func.max(LedgerLog.size), 0)).where(LedgerLog.org == org)) or 0
