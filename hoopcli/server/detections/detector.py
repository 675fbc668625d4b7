"""The detector: one thread per database that feeds every record of the ledger, in log order, to
the detection engine, and raises what it triggers.

Why tail the ledger instead of evaluating each request's records where they arrive: log order is
the one order every replica agrees on. Each replica's detector reads the whole log (its own
appends at once: the ledger writer wakes it after each commit; other replicas' within `poll`
seconds), so every replica computes the same windows and the same triggers, and the unique key
on findings stores each once. After a restart the detector replays the last two longest windows
of the log (found by binary search on the append time): the first window only warms the state,
the second is evaluated for real (what was raised already is not raised again). A policy push
that changes the rules rebuilds the engine the same way.

Nothing here can lose or delay a record: the writer only sets a flag; a failure here is logged
and the records stay in the log (the detector retries from where it stopped).
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import bindparam, select

from hoopcli.detect.engine import Engine
from hoopcli.detect.events import events_of, parse_time
from hoopcli.detect.rules import build
from hoopcli.server.detections import registry
from hoopcli.server.detections.holds import dialect_insert
from hoopcli.server.ledger import writer as ledger_writer
from hoopcli.server.settings import Settings
from hoopcli.server.store.db import Database
from hoopcli.server.store.detections import Seen
from hoopcli.server.store.ledger import LedgerLog, LedgerRecord

log = logging.getLogger("hoopcli.server.detections")
BATCH = 1000
MAX_IDLE = 8.0
HANDED_CHARS = 8 * 1024 * 1024   # leaves held for the detector between two of its passes           # seconds between polls once nothing has changed for a while


class DbMemory:
    """first-secret-access's memory, in detection_seen. Reads ask the table (no write on the
    record's path); what was read is written in one transaction per batch of records (flush).
    Raised once still holds: a finding is unique per (rule, user, record and secret), so two
    replicas, or a replay after a crash before a flush, store the same finding once."""

    def __init__(self, db: Database, org: str) -> None:
        self.db, self.org = db, org
        self._last: dict[tuple[str, str], float] = {}
        self._first: dict[str, float] = {}
        self._pending: dict[tuple[str, str], float] = {}        # (user, key) -> newest read
        self._new_users: dict[str, float] = {}

    def claim(self, user: str, key: str, when: float, horizon: float) -> bool:
        key = key[:512]
        last = self._last.get((user, key))
        if last is None:
            with self.db.session() as s:
                last = s.scalar(select(Seen.last_at).where(Seen.org == self.org, Seen.user == user, Seen.key == key))
        first = last is None or last < when - horizon
        newest = max(last or when, when)
        if len(self._last) > 100_000:
            self._last.clear()
        self._last[(user, key)] = newest
        self._pending[(user, key)] = max(self._pending.get((user, key), newest), newest)
        return first

    def baseline(self, user: str, when: float) -> float:
        first = self._first.get(user)
        if first is None:
            with self.db.session() as s:
                first = s.scalar(select(Seen.first_at).where(Seen.org == self.org, Seen.user == user, Seen.key == "*"))
            if first is None:
                first = self._new_users[user] = when
            self._first[user] = first
        return first

    def flush(self) -> None:
        """Write what was read since the last flush (one transaction; newest time wins)."""
        if not self._pending and not self._new_users:
            return
        pending, users = self._pending, self._new_users
        self._pending, self._new_users = {}, {}
        T = Seen.__table__.c
        with self.db.session() as s:
            ins = dialect_insert(s)(Seen)
            for user, when in users.items():
                s.execute(ins.values(org=self.org, user=user, key="*", first_at=when, last_at=when)
                          .on_conflict_do_nothing())
            for (user, key), when in pending.items():
                stmt = ins.values(org=self.org, user=user, key=key, first_at=when, last_at=when)
                s.execute(stmt.on_conflict_do_update(index_elements=["org", "user", "key"], set_={"last_at": when},
                                                     where=T.last_at < when))


@dataclass
class OrgState:
    engine: Engine
    memory: DbMemory
    etag: str
    next: int            # the next leaf to read
    live_from: int       # leaves before this one only warm the windows


def _owner(record: dict[str, Any], receipt: dict[str, Any]) -> tuple[str, str]:
    if record.get("type") == "api.call" and isinstance(record.get("user"), str) and record["user"]:
        email = record.get("user_email")
        return record["user"], email if isinstance(email, str) and email else record["user"]
    uploader = str(receipt.get("uploader") or "")
    email = receipt.get("uploader_email")
    return uploader, email if isinstance(email, str) and email else uploader


_RECORDS = LedgerRecord.__table__.c
_LEAVES = select(_RECORDS.leaf_index, _RECORDS.leaf).where(
    _RECORDS.org == bindparam("org"), _RECORDS.leaf_index >= bindparam("next")).order_by(
    _RECORDS.leaf_index).limit(BATCH)


class Detector:
    def __init__(self, db: Database, settings: Settings, poll: float = 1.0) -> None:
        self.db, self.settings, self.poll = db, settings, poll
        self._cond = threading.Condition()
        self._dirty: set[str] = set()
        self._appended: dict[str, int] = {}     # org -> log size after this server's last commit
        self._handed: dict[str, list[tuple[int, str]]] = {}   # org -> leaves the writer handed over
        self._handed_chars: dict[str, int] = {}
        self._done: dict[str, int] = {}         # org -> leaves evaluated
        self._orgs: dict[str, OrgState] = {}
        self._stopped = False
        self._lagging = False
        self.raised = 0
        self.thread = threading.Thread(target=self._run, name="hoop-detector", daemon=True)
        self.thread.start()

    # -- the writer's side: never blocks -----------------------------------------------------------
    def notify(self, org: str, size: int, leaves: list[tuple[int, str]] | None = None) -> None:
        """The writer committed `leaves` (index, text) to `org`'s log, now `size` long: they are
        evaluated from memory; anything else (another replica's) is read from the database."""
        with self._cond:
            self._appended[org] = max(self._appended.get(org, 0), size)
            if leaves:
                # bounded in count and size; what does not fit is read back from the log
                handed = self._handed.setdefault(org, [])
                size = self._handed_chars.get(org, 0)
                for leaf in leaves:
                    if len(handed) >= BATCH or size + len(leaf[1]) > HANDED_CHARS:
                        break
                    handed.append(leaf)
                    size += len(leaf[1])
                self._handed_chars[org] = size
            self._dirty.add(org)
            self._cond.notify_all()

    def wait_caught_up(self, org: str, timeout: float, *, wait: bool = True) -> bool | None:
        """Wait until every record this server appended to `org` is evaluated (at most `timeout`;
        not at all while the detector is behind, so a stuck detector never slows calls). With
        `wait=False`: None where it would wait (the check and the answer under one lock)."""
        with self._cond:
            target = self._appended.get(org, 0)
            if self._done.get(org, 0) >= target:
                self._lagging = False
                return True
            if self._lagging:
                return False
            if not wait:
                return None
            ok = self._cond.wait_for(lambda: self._done.get(org, 0) >= target or self._stopped, timeout)
            self._lagging = not ok
            return ok

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    # -- the thread ---------------------------------------------------------------------------------
    def _warm(self) -> None:
        """Load the action index and the rules before the first record needs them (~1 s cold)."""
        from hoopcli.detect.events import classify

        classify("s3", "ListBuckets")
        build(None)

    def _run(self) -> None:
        try:
            self._warm()
        except Exception as exc:
            log.warning("detector warm-up failed: %s", type(exc).__name__)
        idle = self.poll
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._dirty) or self._stopped, idle)
                if self._stopped:
                    return
                orgs = set(self._dirty)
                self._dirty.clear()
            try:
                if not orgs:     # a poll: what other replicas appended (backs off while nothing does)
                    orgs = self._grown_orgs()
                    idle = self.poll if orgs else min(idle * 2, MAX_IDLE)
                for org in sorted(orgs):
                    self._process(org)
            except Exception as exc:          # never let the thread die; the log keeps the records
                log.error("detector: %s: %s", type(exc).__name__, str(exc)[:300])
                idle = min(idle * 2, MAX_IDLE)

    def _grown_orgs(self) -> set[str]:
        with self.db.session() as s:
            rows = s.execute(select(LedgerLog.org, LedgerLog.size)).all()
        return {org for org, size in rows if size > self._done.get(org, -1)}

    def _leaf_at(self, s: Any, org: str, since: float, size: int) -> int:
        """The first leaf appended at or after `since` (append times follow log order)."""
        lo, hi = 0, size
        when = datetime.fromtimestamp(since, timezone.utc)
        while lo < hi:
            mid = (lo + hi) // 2
            got = s.scalar(select(LedgerRecord.received_at).where(LedgerRecord.org == org,
                                                                 LedgerRecord.leaf_index == mid))
            if got is not None and got.tzinfo is None:
                got = got.replace(tzinfo=timezone.utc)
            if got is None or got < when:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def _state(self, org: str) -> OrgState:
        from hoopcli.server.policy.service import current_policy

        policy = current_policy(self.db, self.settings, org)
        etag = str(policy.etag or policy.version)
        st = self._orgs.get(org)
        if st is not None and st.etag == etag:
            return st
        rules = build(policy.data.get("detections"))
        longest = max((r.window for r in rules), default=0.0)
        now = time.time()
        with self.db.session() as s:
            size = int(s.scalar(select(LedgerLog.size).where(LedgerLog.org == org)) or 0)
            start = self._leaf_at(s, org, now - 2 * longest, size) if longest else size
            live = st.next if st is not None else (self._leaf_at(s, org, now - longest, size) if longest else size)
        memory = st.memory if st is not None else DbMemory(self.db, org)     # its cache survives a push
        state = OrgState(Engine(rules, memory), memory, etag, min(start, live), live)
        self._orgs[org] = state
        log.info("detector: org %s: %d rules; replaying leaves %d..%d", org, len(rules), state.next, size)
        return state

    def _process(self, org: str) -> None:
        state = self._state(org)
        while not self._stopped:
            with self._cond:
                handed = self._handed.pop(org, [])
                self._handed_chars.pop(org, None)
            if handed and handed[0][0] == state.next and \
                    all(b[0] == a[0] + 1 for a, b in itertools.pairwise(handed)):
                rows: list[tuple[int, str | None]] = list(handed)      # contiguous: no read needed
            else:
                with self.db.session() as s:
                    rows = [(int(i), leaf) for i, leaf in s.execute(_LEAVES, {"org": org, "next": state.next})]
            if not rows:
                break
            for index, leaf in rows:
                if index < state.next:
                    continue
                if leaf is not None:
                    self._evaluate(org, state, int(index), leaf)
                state.next = int(index) + 1
            state.memory.flush()
            with self._cond:
                self._done[org] = state.next
                self._cond.notify_all()
                caught_up = state.next >= self._appended.get(org, 0) and org not in self._handed
            if caught_up and len(rows) < BATCH:
                break
        with self._cond:
            self._done[org] = max(self._done.get(org, 0), state.next)
            self._cond.notify_all()

    def _evaluate(self, org: str, state: OrgState, index: int, leaf: str) -> None:
        from hoopcli.server.detections.service import prior_episode, raise_finding

        try:
            data = json.loads(leaf)
            record, receipt = data["record"], data.get("receipt") or {}
            owner, label = _owner(record, receipt)
            events = events_of(record, owner, label, parse_time(receipt.get("received_at")))
        except (ValueError, KeyError, TypeError, AttributeError):
            return                        # not a record the engine can read: nothing to detect
        for ev in events:
            for trigger in state.engine.feed(ev):
                if index < state.live_from:
                    continue              # warming up after a restart: raised before, if at all
                rule = trigger.rule
                try:
                    if rule.kind != "first_seen":
                        prior = prior_episode(self.db, org, rule.id, trigger.scope_key, ev.time, rule.window)
                        if prior is not None:
                            state.engine.rest(rule.id, trigger.scope_key, prior)
                            continue
                    if raise_finding(self.db, self.settings, org, trigger) is not None:
                        self.raised += 1
                except Exception as exc:   # one lost finding, said loudly; the next records go on
                    log.error("detector: finding %s for session %s (record %s) not raised: %s: %s", rule.id,
                              ev.session, ev.record, type(exc).__name__, str(exc)[:300])


def start_detector(db: Database, settings: Settings) -> Detector:
    """The database's detector (one per Database object), woken by its ledger writer."""
    with registry.lock:
        det: Detector | None = registry.detector_of(db)
        if det is None or det._stopped:
            det = Detector(db, settings)
            registry.register(db, det)
            ledger_writer.on_commit(db, det.notify)
        return det
