"""Sliding windows over events, per rule and scope (a session, or a user across sessions).

`Engine(rules, memory).feed(event) -> [Trigger]`. Deterministic: the same events in the same
order give the same triggers, which is what makes a finding raised once across replicas (every
replica feeds the ledger in log order) and after a restart (the detector replays the ledger).

A window holds the events of the last `window` seconds (times of the events, not of the
machine). A rule fires when its threshold is met, then rests for one window in that scope: at
most one trigger per rule, scope and window. first_seen rules keep no window: they ask a Memory
(the server's is a table) whether this user read this secret in the last `days`.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

from hoopcli.detect.events import Event
from hoopcli.detect.rules import Rule

MAX_ITEMS = 10_000          # events kept per window (a flood beyond this is counted approximately)
MAX_RECORDS = 100           # record ids a trigger carries
MAX_VALUES = 50
SWEEP_EVERY = 4096


class Memory(Protocol):
    def claim(self, user: str, key: str, when: float, horizon: float) -> bool:
        """True when `user` has not read `key` within `horizon` seconds before `when`; records
        the read either way."""

    def baseline(self, user: str, when: float) -> float:
        """When `user` was first seen reading secrets (recorded now if never)."""


class InMemory:
    """A Memory for tests and `hoop policy test`."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], float] = {}
        self.first: dict[str, float] = {}

    def claim(self, user: str, key: str, when: float, horizon: float) -> bool:
        last = self.seen.get((user, key))
        self.seen[(user, key)] = max(last or when, when)
        return last is None or last < when - horizon

    def baseline(self, user: str, when: float) -> float:
        return self.first.setdefault(user, when)


@dataclass
class Trigger:
    rule: Rule
    scope_key: str                  # "session:<id>" | "user:<subject>"
    event: Event                    # the event that met the threshold
    count: int
    total: int = 0                  # ratio rules: calls in the window
    values: list[str] = field(default_factory=list)
    records: list[str] = field(default_factory=list)

    @property
    def window_key(self) -> str:
        """What makes this trigger unique within (rule, scope): the record that met the threshold
        (the same on every replica, and after a replay), plus the secret for first_seen."""
        if self.rule.kind == "first_seen":
            return f"{self.event.record}:{self.values[0]}"[:200] if self.values else self.event.record
        return self.event.record

    def summary(self) -> str:
        r = self.rule
        span = duration(r.window)
        if r.kind == "first_seen":
            return f"first read of {self.values[0] if self.values else 'a secret'} by this user in {r.days} days"
        if r.kind == "ratio":
            pct = round(100 * self.count / self.total) if self.total else 0
            return f"{self.count} of {self.total} calls failed in {span} ({pct}%; threshold {r.count} and {r.ratio:.0%})"
        shown = ", ".join(self.values[:5]) + (", …" if len(self.values) > 5 else "")
        return f"{r.noun}: {self.count} in {span} (threshold {r.count}): {shown}"


def duration(seconds: float) -> str:
    s = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size and s % size == 0:
            return f"{s // size}{unit}"
    return f"{s}s"


def _time_of(item: tuple[float, str, str]) -> float:
    return item[0]


class _Window:
    __slots__ = ("items", "counts", "errors", "last_fire", "newest")

    def __init__(self) -> None:
        self.items: deque[tuple[float, str, str]] = deque()     # (time, value, record)
        self.counts: dict[str, int] = {}
        self.errors = 0
        self.last_fire: float | None = None
        self.newest = float("-inf")

    def _drop(self, item: tuple[float, str, str]) -> None:
        n = self.counts[item[1]] - 1
        if n:
            self.counts[item[1]] = n
        else:
            del self.counts[item[1]]
        if item[1] == "error":
            self.errors -= 1

    def add(self, when: float, value: str, record: str, window: float) -> bool:
        """Add one value; False when it is older than the window (it cannot count)."""
        now = max(self.newest, when)
        if when < now - window:
            return False
        item = (when, value, record)
        if when >= self.newest:
            self.items.append(item)
        else:   # out of order: a late client record, or gateway calls finishing in another order
            self.items.insert(bisect.bisect_right(self.items, when, key=_time_of), item)
        self.newest = now
        self.counts[value] = self.counts.get(value, 0) + 1
        if value == "error":
            self.errors += 1
        horizon = now - window
        while self.items and (self.items[0][0] < horizon or len(self.items) > MAX_ITEMS):
            self._drop(self.items.popleft())
        return True


class Engine:
    def __init__(self, rules: list[Rule], memory: Memory | None = None) -> None:
        self.rules = rules
        self.memory: Memory = memory or InMemory()
        self.windows: dict[tuple[int, str], _Window] = {}
        self.gateway_sessions: dict[str, float] = {}     # sessions the gateway observes
        self._any = [i for i, r in enumerate(rules) if r.prefixes is None]
        self._by_prefix: dict[str, list[int]] = {}
        for i, r in enumerate(rules):
            for p in r.prefixes or ():
                self._by_prefix.setdefault(p, []).append(i)
        self._memo: dict[frozenset[str], list[int]] = {}
        self._fed = 0
        self.newest = float("-inf")

    def _candidates(self, ev: Event) -> list[int]:
        prefixes = frozenset([ev.service.lower(), *(a.split(":", 1)[0].lower() for a in ev.actions)])
        found = self._memo.get(prefixes)
        if found is None:
            idx = set(self._any)
            for p in prefixes:
                idx.update(self._by_prefix.get(p, ()))
            found = sorted(idx)
            if len(self._memo) < 4096:
                self._memo[prefixes] = found
        return found

    def feed(self, ev: Event) -> list[Trigger]:
        """Evaluate one event against every rule; the triggers it fires."""
        if ev.source == "gateway":
            self.gateway_sessions[ev.session] = ev.time
        elif ev.kind == "call" and ev.session in self.gateway_sessions:
            return []        # the gateway saw this call already: the client's report would count it twice
        self.newest = max(self.newest, ev.time)
        self._fed += 1
        if self._fed % SWEEP_EVERY == 0:
            self.sweep()
        out: list[Trigger] = []
        for i in self._candidates(ev):
            rule = self.rules[i]
            values = rule.values(ev)
            if values is None:
                continue
            scope_key = f"session:{ev.session}" if rule.scope == "session" else f"user:{ev.user}"
            trigger = self._first_seen(rule, scope_key, ev, values) if rule.kind == "first_seen" else \
                self._windowed(i, rule, scope_key, ev, values)
            if trigger is not None:
                out.append(trigger)
        return out

    def _first_seen(self, rule: Rule, scope_key: str, ev: Event, values: tuple[str, ...]) -> Trigger | None:
        since = self.memory.baseline(ev.user, ev.time)
        fresh = [v for v in values if self.memory.claim(ev.user, v, ev.time, rule.days * 86400.0)]
        if not fresh or ev.time - since < rule.learning:
            return None
        return Trigger(rule, scope_key, ev, len(fresh), values=fresh[:MAX_VALUES], records=[ev.record])

    def _windowed(self, i: int, rule: Rule, scope_key: str, ev: Event, values: tuple[str, ...]) -> Trigger | None:
        w = self.windows.get((i, scope_key))
        if w is None:
            w = self.windows[(i, scope_key)] = _Window()
        added = False
        for v in values:
            added = w.add(ev.time, v, ev.record, rule.window) or added
        if not added:
            return None
        if rule.kind == "distinct":
            count, total = len(w.counts), 0
        elif rule.kind == "ratio":
            count, total = w.errors, len(w.items)
            if total == 0 or count / total < rule.ratio:
                return None
        else:
            count, total = len(w.items), 0
        if count < rule.count:
            return None
        if w.last_fire is not None and ev.time - w.last_fire < rule.window:
            return None                                   # resting: this episode already fired
        w.last_fire = ev.time
        records = list(dict.fromkeys(r for _t, v, r in reversed(w.items) if rule.kind != "ratio" or v == "error"))
        values_seen = list(w.counts) if rule.kind == "distinct" else \
            list(dict.fromkeys(v for _t, v, _r in reversed(w.items)))
        return Trigger(rule, scope_key, ev, count, total, values_seen[:MAX_VALUES], records[:MAX_RECORDS])

    def rest(self, rule_id: str, scope_key: str, when: float) -> None:
        """An earlier finding (another replica's, or one raised before a restart) covers this
        scope from `when`: the rule rests until one window after it."""
        for i, rule in enumerate(self.rules):
            if rule.id == rule_id and (i, scope_key) in self.windows:
                w = self.windows[(i, scope_key)]
                w.last_fire = max(w.last_fire or when, when)

    def sweep(self) -> None:
        """Forget windows and sessions with nothing left in them (memory stays bounded)."""
        for key, w in list(self.windows.items()):
            rule = self.rules[key[0]]
            if w.newest < self.newest - rule.window and (w.last_fire is None or w.last_fire < self.newest - rule.window):
                del self.windows[key]
        cutoff = self.newest - 6 * 3600
        for sid, when in list(self.gateway_sessions.items()):
            if when < cutoff:
                del self.gateway_sessions[sid]

    def stats(self) -> dict[str, Any]:
        return {"rules": len(self.rules), "windows": len(self.windows), "gateway_sessions": len(self.gateway_sessions)}
