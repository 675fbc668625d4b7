"""The ledger's write side: append records to an organisation's Merkle log, sign checkpoints,
and read proofs back from storage.

Appends for one organisation are serialized by a write on its `ledger_logs` head row at the very
start of the transaction (a row lock on PostgreSQL; SQLite's single write lock, taken before any
read so no transaction can upgrade from a stale snapshot). Within that lock: duplicate check,
leaf hashing, frontier update, node inserts, summaries, and (when due) a signed checkpoint.

Two kinds of record reach the log: the client-reported command records (command.start and
command.result, joined by command_id; uploaded through POST /records) and the server-observed
api.call records (one per AWS request through the hoop gateway; appended by the server itself as
GATEWAY_SUBJECT, never accepted from a client). An api.call is one complete command of its session
in the summaries, keyed by its own record id, and belongs to the user the gateway authenticated
(its `user` field), not to the gateway's uploader identity.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, cast

from sqlalchemy import Table, bindparam, case, func, select, tuple_, update
from sqlalchemy.orm import Session

from hoopcli.canonical import canonical_json
from hoopcli.errors import HoopError
from hoopcli.server.ledger import checkpoints as cp
from hoopcli.server.store.ledger import (
    LedgerCheckpoint,
    LedgerCommand,
    LedgerCommandAction,
    LedgerLog,
    LedgerNode,
    LedgerRecord,
    LedgerSession,
)
from hoopcli.transcript import merkle
from hoopcli.transcript.checkpoints import body_bytes, checkpoint_hash, parse_body


class LedgerCorrupt(HoopError):
    """Storage does not hold a node the log says it has."""


@dataclass
class Uploader:
    subject: str
    email: str | None = None


# The uploader the server's gateway appends its api.call records as (`Uploader(GATEWAY_SUBJECT)`).
GATEWAY_SUBJECT = "hoop-gateway"
API_CALL = "api.call"


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


def command_key(rec: dict[str, Any]) -> str:
    """The command a record belongs to: its command_id, or for an api.call (one record that is
    a whole command) its own id."""
    return normalize_id(rec["id"] if rec.get("type") == API_CALL else rec["command_id"])


def call_failed(rec: dict[str, Any]) -> bool:
    """An api.call failed: AWS (or the gateway) answered >= 400, or no answer came and an error
    code says why."""
    status = rec.get("http_status")
    if isinstance(status, int) and not isinstance(status, bool):
        return status >= 400
    return bool(rec.get("error_code"))


def _session_owner(rec: dict[str, Any], uploader: Uploader) -> tuple[str | None, str | None]:
    """(owner subject, email) a record's session belongs to. A command record: its authenticated
    uploader. An api.call: the user the gateway authenticated (its `user`), else the gateway.
    The owner is None when the record cannot be stored (an api.call not from the gateway)."""
    if rec.get("type") != API_CALL:
        return uploader.subject, uploader.email
    if uploader.subject != GATEWAY_SUBJECT:
        return None, None
    user = rec.get("user")
    if isinstance(user, str) and user:
        email = rec.get("user_email")
        return user, email[:320] if isinstance(email, str) else None
    return uploader.subject, uploader.email


def _dialect_insert(session: Session) -> Callable[[Any], Any]:
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert
        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert
    return sqlite_insert


# The mapped classes' tables, for Core statements (a declarative class's __table__ is a Table).
LOGS = cast(Table, LedgerLog.__table__)
RECORDS = cast(Table, LedgerRecord.__table__)
NODES = cast(Table, LedgerNode.__table__)
SESSIONS = cast(Table, LedgerSession.__table__)
COMMANDS = cast(Table, LedgerCommand.__table__)
ACTIONS = cast(Table, LedgerCommandAction.__table__)
# built once: a statement object made per append is built and keyed for the compiled cache again
_RECORDS_INSERT, _NODES_INSERT = RECORDS.insert(), NODES.insert()
_SESSIONS_INSERT, _COMMANDS_INSERT = SESSIONS.insert(), COMMANDS.insert()


def lock_head(session: Session, org: str) -> LedgerLog:
    """Create the org's head row if needed and take its lock for the rest of the transaction."""
    ins = _dialect_insert(session)
    session.execute(ins(LedgerLog).values(org=org, size=0, frontier=[]).on_conflict_do_nothing())
    session.execute(update(LedgerLog).where(LedgerLog.org == org).values(size=LedgerLog.size))
    head = session.execute(select(LedgerLog).where(LedgerLog.org == org)
                           .execution_options(populate_existing=True)).scalar_one()
    return head


def _lock_head_core(session: Session, org: str) -> tuple[int, list[str]]:
    """The hot-path lock: one UPDATE ... RETURNING (the row lock / SQLite write lock)."""
    stmt = update(LOGS).where(LOGS.c.org == org).values(size=LOGS.c.size).returning(
        LOGS.c.size, LOGS.c.frontier)
    row = session.execute(stmt).first()
    if row is None:
        session.execute(_dialect_insert(session)(LOGS).values(org=org, size=0, frontier=[])
                        .on_conflict_do_nothing())
        row = session.execute(stmt).first()
    assert row is not None
    return int(row[0]), list(row[1] or [])


Batch = Sequence[tuple[int, dict[str, Any], list[str]]]


class StaleHead(Exception):
    """The log's head moved since this process last appended (another replica did): the append
    is rolled back and done again the careful way."""


class Memo:
    """What one writer knows about the logs it appends to, so that the gateway's lone records do
    not pay reads: the head (size and frontier) after its last commit, and sessions' owners
    (immutable once stored). Updated only after a commit (`remember`); the head is re-checked by
    the append's first statement (UPDATE ... WHERE size = the remembered size), so a stale memo
    costs a retry, never a wrong log."""

    MAX_OWNERS = 100_000

    def __init__(self) -> None:
        self.heads: dict[str, tuple[int, list[str]]] = {}
        self.owners: dict[str, dict[str, str]] = {}

    def remember(self, pending: dict[str, Any] | None) -> None:
        if not pending:
            return
        org = pending["org"]
        self.heads[org] = pending["head"]
        owners = self.owners.setdefault(org, {})
        if len(owners) > self.MAX_OWNERS:
            owners.clear()
        owners.update(pending["owners"])

    def forget(self, org: str) -> None:
        self.heads.pop(org, None)


def _trusted(requests: Sequence[tuple[Uploader, Batch]]) -> bool:
    """Only gateway api.call records: ids the server minted (uuid4), each its own fresh command.
    A clash would break a unique key and roll the append back, never pass silently."""
    return all(u.subject == GATEWAY_SUBJECT and all(r.get("type") == API_CALL for _, r, _ in batch)
               for u, batch in requests)


_HEAD_MOVE = update(LOGS).where(LOGS.c.org == bindparam("b_org"), LOGS.c.size == bindparam("b_size")).values(
    size=bindparam("n_size"), frontier=bindparam("n_frontier"), updated_at=bindparam("n_at"))


def append(session: Session, org: str, uploader: Uploader, records: Batch, *,
           now: datetime | None = None, key: cp.SigningKey | None = None,
           checkpoint_interval: float = cp.CHECKPOINT_INTERVAL_SECONDS) -> AppendResult:
    """Append validated, capped records [(index in request, record, truncation marks)]."""
    return append_many(session, org, [(uploader, records)], now=now, key=key,
                       checkpoint_interval=checkpoint_interval)[0]


def append_many(session: Session, org: str, requests: Sequence[tuple[Uploader, Batch]], *,
                now: datetime | None = None, key: cp.SigningKey | None = None,
                checkpoint_interval: float = cp.CHECKPOINT_INTERVAL_SECONDS,
                memo: Memo | None = None) -> list[AppendResult]:
    """Append several requests' records in one transaction under one lock (group commit):
    the same statements whether 1 or 50 uploaders are waiting. One result per request.

    With a `memo` (the writer's) and only gateway records of known sessions, nothing is read:
    the first statement moves the head from the remembered size (StaleHead if it moved).
    `session.info["ledger_memo"]` holds what a Memo may remember once the transaction commits."""
    now = now or datetime.now(timezone.utc)
    results = [AppendResult() for _ in requests]
    sids = {r["session_id"] for _, batch in requests for _, r, _ in batch}
    head = memo.heads.get(org) if memo is not None else None
    known_owners = memo.owners.get(org, {}) if memo is not None else {}
    fast = head is not None and _trusted(requests) and all(sid in known_owners for sid in sids)
    existing: set[str]
    if fast:
        assert head is not None
        size, front = head
        existing = set()
        owners = {sid: known_owners[sid] for sid in sids}
    else:
        size, front = _lock_head_core(session, org)
        wanted = {normalize_id(r["id"]) for _, batch in requests for _, r, _ in batch}
        existing = set(session.scalars(select(RECORDS.c.id).where(
            RECORDS.c.org == org, RECORDS.c.id.in_(wanted)))) if wanted else set()
        owners = dict(session.execute(select(SESSIONS.c.id, SESSIONS.c.user).where(
            SESSIONS.c.org == org, SESSIONS.c.id.in_(sids))).all()) if sids else {}
    frontier = merkle.Frontier(size, [bytes.fromhex(h) for h in front])
    rows: list[dict[str, Any]] = []
    nodes: list[dict[str, Any]] = []
    appended: list[tuple[dict[str, Any], datetime]] = []
    new_sessions: dict[str, dict[str, Any]] = {}
    received = cp.utc_iso(now)
    for out, (uploader, records) in zip(results, requests, strict=True):
        for index, rec, marks in records:
            rid = normalize_id(rec["id"])
            if rid in existing:
                out.duplicates.append(rec["id"])
                continue
            sid = rec["session_id"]
            who, who_email = _session_owner(rec, uploader)
            if who is None:
                out.rejected.append({"index": index, "id": rec["id"], "errors": [
                    f"$.type: {API_CALL} records are written only by the hoop gateway"]})
                continue
            if len(who) > 255:
                out.rejected.append({"index": index, "id": rec["id"],
                                     "errors": ["$.user: longer than 255 characters"]})
                continue
            owner = owners.get(sid)
            if owner is not None and owner != who:
                out.rejected.append({"index": index, "id": rec["id"],
                                     "errors": ["$.session_id: belongs to another user"]})
                continue
            try:
                rtime = parse_time(rec["time"])
            except ValueError:
                out.rejected.append({"index": index, "id": rec["id"], "errors": ["$.time: not a valid time"]})
                continue
            existing.add(rid)
            receipt = {"received_at": received, "org": org, "uploader": uploader.subject,
                       "uploader_email": uploader.email, "truncated": marks}
            leaf_text = canonical_json({"record": rec, "receipt": receipt}).decode("utf-8")
            leaf_index = frontier.size
            for level, idx, h in frontier.append(merkle.leaf_hash(leaf_text.encode("utf-8"))):
                nodes.append({"org": org, "level": level, "idx": idx, "hash": h})
            rows.append({"org": org, "leaf_index": leaf_index, "id": rid, "session_id": sid,
                         "command_id": command_key(rec), "type": rec["type"],
                         "time": rtime, "received_at": now, "leaf": leaf_text})
            appended.append((rec, rtime))
            out.accepted.append(rec["id"])
            if owner is None:
                owners[sid] = who
                new_sessions[sid] = {
                    "org": org, "id": sid, "user": who, "user_email": who_email,
                    "agent": None, "host": None, "connection": None, "started_at": rtime,
                    "last_at": rtime, "commands": 0, "incomplete": 0, "failed": 0, "denied": 0,
                    "reviewed": 0}
    new_front = [h.hex() for h in frontier.nodes]
    conn = session.connection()
    if rows:
        # the head first: under the lock already (slow path), or taking it now and checking that
        # nobody appended since this process's last commit (fast path)
        moved = conn.execute(_HEAD_MOVE, {"b_org": org, "b_size": size, "n_size": frontier.size,
                                          "n_frontier": new_front, "n_at": now})
        if moved.rowcount != 1:
            raise StaleHead(org)
        conn.execute(_RECORDS_INSERT, rows)
        conn.execute(_NODES_INSERT, nodes)
        _summarize(session, org, new_sessions, appended, fresh=fast)
    for out in results:
        out.size = frontier.size
    session.info["ledger_memo"] = {"org": org, "head": (frontier.size, new_front), "owners": owners,
                                   "leaves": [(r["leaf_index"], r["leaf"]) for r in rows]}
    if key is not None:
        _checkpoint_if_due(session, org, frontier, key, now, checkpoint_interval)
    return results


def _short(value: Any, n: int) -> str | None:
    return value[:n] if isinstance(value, str) else None


_SESSION_DELTAS = ("commands", "incomplete", "failed", "denied", "reviewed")


_SESSION_META = ("agent", "host", "connection")
# one statement for every session's summary update: counters added, first/last widened, metadata
# kept once set (a NULL parameter leaves a column as it is)
_SESSION_MOVE = update(SESSIONS).where(
    SESSIONS.c.org == bindparam("b_org"), SESSIONS.c.id == bindparam("b_id")).values(
    **{k: getattr(SESSIONS.c, k) + bindparam(f"d_{k}") for k in _SESSION_DELTAS},
    last_at=case((SESSIONS.c.last_at < bindparam("d_last"), bindparam("d_last")), else_=SESSIONS.c.last_at),
    started_at=case((SESSIONS.c.started_at > bindparam("d_first"), bindparam("d_first")),
                    else_=SESSIONS.c.started_at),
    **{k: func.coalesce(getattr(SESSIONS.c, k), bindparam(f"m_{k}")) for k in _SESSION_META})


_COMMAND_COLS = ("has_start", "has_result", "started_at", "exit_code", "effect", "summary")
_COMMAND_MOVE = update(COMMANDS).where(COMMANDS.c.org == bindparam("b_org"),
                                       COMMANDS.c.command_id == bindparam("b_cid")).values(
    **{k: bindparam(f"v_{k}") for k in _COMMAND_COLS})
_ACTIONS_INSERT: dict[str, Any] = {}


def _summarize(session: Session, org: str, new_sessions: dict[str, dict[str, Any]],
               appended: list[tuple[dict[str, Any], datetime]], *, fresh: bool = False) -> None:
    """Session and command summaries for the appended records (head lock held: no races).
    `fresh`: every record is an api.call whose id the server minted, so no command exists yet."""
    cids = {command_key(r) for r, _ in appended}
    known = {} if fresh else {row.command_id: dict(row._mapping) for row in session.execute(
        select(COMMANDS.c.command_id, COMMANDS.c.has_start, COMMANDS.c.has_result,
               COMMANDS.c.started_at, COMMANDS.c.exit_code, COMMANDS.c.effect, COMMANDS.c.summary)
        .where(COMMANDS.c.org == org, COMMANDS.c.command_id.in_(cids)))}
    created: dict[str, dict[str, Any]] = {}
    changed: dict[str, dict[str, Any]] = {}
    deltas: dict[str, dict[str, Any]] = {}
    actions: list[dict[str, Any]] = []
    for rec, rtime in appended:
        sid = rec["session_id"]
        d = deltas.setdefault(sid, {k: 0 for k in _SESSION_DELTAS} | {"first": rtime, "last": rtime,
                                                                        "meta": {}})
        d["first"] = min(d["first"], rtime)
        d["last"] = max(d["last"], rtime)
        cid = command_key(rec)
        crow = created.get(cid) or changed.get(cid)
        if crow is None and cid in known:
            crow = changed[cid] = known[cid]
        fresh = crow is None
        if crow is None:
            crow = created[cid] = {"org": org, "command_id": cid, "session_id": sid, "started_at": None,
                                   "effect": None, "exit_code": None, "has_start": 0,
                                   "has_result": 0, "summary": None}
            d["commands"] += 1
            d["incomplete"] += 1
        if rec["type"] == API_CALL:
            if not fresh:
                continue                       # its id is already a command's key: counted once
            crow.update(has_start=1, has_result=1, started_at=rtime)
            d["incomplete"] -= 1                # a call is complete in its one record
            for k, n in (("agent", 128), ("connection", 128)):
                if isinstance(rec.get(k), str):
                    d["meta"].setdefault(k, rec[k][:n])
            effect = (rec.get("decision") or {}).get("effect")
            crow["effect"] = effect
            d["denied"] += effect == "deny"
            d["reviewed"] += effect == "review"
            d["failed"] += call_failed(rec)
            crow["summary"] = f"{rec.get('service')}.{rec.get('operation')}"[:300]
            for action in {str(a).lower()[:255] for a in rec.get("actions") or [] if isinstance(a, str)}:
                actions.append({"org": org, "command_id": cid, "action": action, "session_id": sid})
        elif rec["type"] == "command.start" and not crow["has_start"]:
            crow["has_start"] = 1
            crow["started_at"] = rtime
            for k, n in (("agent", 128), ("host", 255), ("connection", 128)):
                if isinstance(rec.get(k), str):
                    d["meta"].setdefault(k, rec[k][:n])
            effect = (rec.get("decision") or {}).get("effect")
            crow["effect"] = effect
            d["denied"] += effect == "deny"
            d["reviewed"] += effect == "review"
            crow["summary"] = " ".join(str(a) for a in rec.get("argv") or [])[:300]
            inv = rec.get("invocation") or {}
            for action in {str(a).lower()[:255] for a in inv.get("actions") or [] if isinstance(a, str)}:
                actions.append({"org": org, "command_id": cid, "action": action, "session_id": sid})
            if crow["has_result"]:
                d["incomplete"] -= 1
        elif rec["type"] == "command.result" and not crow["has_result"]:
            crow["has_result"] = 1
            crow["exit_code"] = rec.get("exit_code")
            d["failed"] += rec.get("exit_code") not in (0, None)
            if crow["started_at"] is None:
                crow["started_at"] = rtime
            if crow["has_start"]:
                d["incomplete"] -= 1
    for sid, row in new_sessions.items():
        d = deltas.pop(sid)
        row.update({k: d[k] for k in _SESSION_DELTAS}, started_at=d["first"], last_at=d["last"], **d["meta"])
    conn = session.connection()
    if new_sessions:
        conn.execute(_SESSIONS_INSERT, list(new_sessions.values()))
    if deltas:
        params = [{"b_org": org, "b_id": sid, **{f"d_{k}": d[k] for k in _SESSION_DELTAS},
                   "d_last": d["last"], "d_first": d["first"],
                   **{f"m_{k}": d["meta"].get(k) for k in _SESSION_META}} for sid, d in deltas.items()]
        moved = conn.execute(_SESSION_MOVE, params[0] if len(params) == 1 else params)
        if (len(params) == 1 or conn.dialect.supports_sane_multi_rowcount) and moved.rowcount != len(params):
            raise StaleHead(org)          # a session the memo knew is not stored: do it again
    if created:
        conn.execute(_COMMANDS_INSERT, list(created.values()))
    if changed:
        conn.execute(_COMMAND_MOVE, [{"b_org": org, "b_cid": cid, **{f"v_{k}": row[k] for k in _COMMAND_COLS}}
                                     for cid, row in changed.items()])
    if actions:
        # executemany of one cached statement (a multi-VALUES insert would recompile every time)
        dialect = conn.dialect.name
        stmt = _ACTIONS_INSERT.get(dialect)
        if stmt is None:
            stmt = _ACTIONS_INSERT[dialect] = _dialect_insert(session)(ACTIONS).on_conflict_do_nothing()
        conn.execute(stmt, actions)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


_last_checkpoint_at: dict[tuple[int, str], float] = {}


def _checkpoint_if_due(session: Session, org: str, frontier: merkle.Frontier, key: cp.SigningKey,
                       now: datetime, interval: float) -> None:
    """Cheap check first (a per-process memo of the last checkpoint time), then the real one."""
    memo = (id(session.get_bind()), org)
    last_seen = _last_checkpoint_at.get(memo)
    if last_seen is not None and now.timestamp() - last_seen < interval:
        return
    head = LedgerLog(org=org, size=frontier.size, frontier=[h.hex() for h in frontier.nodes])
    row = maybe_checkpoint(session, org, head, key, now, interval=interval)
    last = row if row is not None else latest_checkpoint(session, org)
    if last is not None:
        _last_checkpoint_at[memo] = _aware(last.time).timestamp()


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
    previous = checkpoint_hash(parse_body(last.body)) if last is not None else None
    seq = last.seq + 1 if last is not None else 0
    body = cp.make_body(org, seq, head.size, frontier.root().hex(), now, previous, key.key_id)
    row = LedgerCheckpoint(org=org, seq=seq, size=head.size, root=body["root"], time=now,
                           body=body_bytes(body).decode("utf-8"),
                           signature=key.sign(body_bytes(body)), key_id=key.key_id)
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
