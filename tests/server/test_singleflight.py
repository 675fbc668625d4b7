"""The gateway's short-lived caches under concurrency (hoopcli/server/singleflight.py): requests in
flight that find the same entry expired share one database read, a failed read is not shared,
and a hold placed or a policy pushed while a read runs is not overwritten by that read's older
answer. Real SQLite databases; the database read is slowed down so that the callers overlap."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from hoopcli.server.detections import holds
from hoopcli.server.policy import service as policy_service
from hoopcli.server.sessions.credentials import Lookup
from hoopcli.server.singleflight import SingleFlight
from hoopcli.server.store.db import Database
from hoopcli.server.store.models import SessionCredential

CALLERS = 8


def together(fn: Callable[[], Any], n: int = CALLERS) -> list[Any]:
    """fn() from n threads released at once -> their results (or exceptions)."""
    barrier = threading.Barrier(n)
    out: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = fn()
        except Exception as exc:
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return out


def test_callers_that_overlap_share_one_read() -> None:
    flight: SingleFlight[int] = SingleFlight()
    reads: list[int] = []

    def read() -> int:
        reads.append(1)
        time.sleep(0.3)
        return 42

    assert together(lambda: flight.do("k", read)) == [42] * CALLERS
    assert len(reads) == 1
    assert flight.do("k", lambda: 7) == 7          # a later caller reads again


def test_a_failed_read_is_not_handed_to_the_others() -> None:
    flight: SingleFlight[str] = SingleFlight()
    calls: list[str] = []
    lock = threading.Lock()

    def read() -> str:
        with lock:
            calls.append("read")
            first = len(calls) == 1
        time.sleep(0.3 if first else 0)
        if first:
            raise RuntimeError("hunter2: the first read's own failure")
        return "fresh"

    out = together(lambda: flight.do("k", read))
    errors = [o for o in out if isinstance(o, Exception)]
    assert len(errors) == 1 and "hunter2" in str(errors[0])
    assert out.count("fresh") == CALLERS - 1      # the others read for themselves


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'hoop.db'}")
    database.migrate()
    yield database
    database.dispose()


def slow_reads_of(db: Database, table: str, delay: float = 0.3) -> list[str]:
    """Every SELECT on `table` is counted and takes `delay` longer."""
    seen: list[str] = []

    @event.listens_for(db.engine, "before_cursor_execute")
    def slow(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and table in statement:
            seen.append(statement)
            time.sleep(delay)

    return seen


def test_a_credential_expired_for_many_requests_is_read_once(db: Database) -> None:
    now = datetime.now(timezone.utc)
    with db.session() as s:
        s.add(SessionCredential(access_key_id="HOOPAAAAAAAAAAAAAAAA", session_id="s1", user="alice",
                                connection="default", created_at=now, expires_at=now + timedelta(hours=1)))
    lookup = Lookup(db, settings=None, ttl=0.2)  # type: ignore[arg-type]
    reads = slow_reads_of(db, "session_credentials")
    assert lookup.state("HOOPAAAAAAAAAAAAAAAA")[0] == "live"
    time.sleep(0.25)                                # the entry expires
    out = together(lambda: lookup.state("HOOPAAAAAAAAAAAAAAAA")[0])
    assert out == ["live"] * CALLERS
    assert len(reads) == 2                          # the first fill, then one read for all eight


def test_the_policy_head_is_read_once_for_many_requests(db: Database) -> None:
    reads = slow_reads_of(db, "policy_versions")
    out = together(lambda: policy_service._latest_head(db, "default"))
    assert out == [None] * CALLERS
    assert len(reads) == 1


def test_a_sessions_hold_is_read_once_for_many_requests(db: Database) -> None:
    reads = slow_reads_of(db, "detection_holds")
    out = together(lambda: holds.active_hold(db, "default", "sess-many"))
    assert out == [None] * CALLERS
    assert len(reads) == 1


def paused_read_of(db: Database, table: str) -> tuple[threading.Event, threading.Event]:
    """The first SELECT on `table` stops once its snapshot is taken -> (reading: set when it has
    stopped, go_on: set it to let the read finish)."""
    reading, go_on = threading.Event(), threading.Event()

    @event.listens_for(db.engine, "after_cursor_execute")
    def pause(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and table in statement and not go_on.is_set():
            reading.set()
            go_on.wait(10)

    return reading, go_on


def test_a_hold_placed_while_a_read_runs_is_not_forgotten(db: Database) -> None:
    """A read that began before the hold must not cache its "not held" over it: before the fix
    the session's next calls went through unheld for CACHE_SECONDS."""
    reading, placed = paused_read_of(db, "detection_holds")

    def place() -> None:
        reading.wait(10)
        with db.session() as s:
            holds.hold_session(s, db, "default", "sess-race", "alice", "f1", "burst", "too many deletes")
        placed.set()                                # committed while the read was stopped

    placer = threading.Thread(target=place)
    placer.start()
    holds.active_hold(db, "default", "sess-race")   # its read saw no hold
    placer.join(10)
    assert holds.active_hold(db, "default", "sess-race") == ("burst", "too many deletes")


def test_a_push_during_a_head_read_is_not_overwritten(db: Database) -> None:
    """A policy pushed here takes effect at once, even while an older read is in flight."""
    reading, pushed = paused_read_of(db, "policy_versions")
    old = threading.Thread(target=policy_service._latest_head, args=(db, "default"))
    old.start()
    reading.wait(10)
    policy_service.forget_head(db, "default")        # what a push does once its version is stored
    pushed.set()
    old.join(10)
    assert (id(db), "default") not in policy_service._heads   # the old read cached nothing
