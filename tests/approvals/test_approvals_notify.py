"""Waking waiters: in-process publish, the read/park gap, and PostgreSQL LISTEN/NOTIFY between
two independent Notifiers (each with its own engine and LISTEN connection, as two servers)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from approvals_helpers import make_invocation, principal, review

from hoopcli.server.approvals import service as svc
from hoopcli.server.approvals.notify import Notifier
from hoopcli.server.store.db import Database


def test_publish_wakes_a_waiter_in_process(db: Any) -> None:
    notifier = Notifier(db)

    async def scenario() -> tuple[bool, bool]:
        waiter = asyncio.create_task(notifier.wait("apr_0000000000000001", 30))
        await asyncio.sleep(0.1)
        notifier.publish("apr_0000000000000001")
        woken = await waiter
        timed_out = await notifier.wait("apr_0000000000000001", 0.2)   # nobody publishes: False
        return woken, timed_out

    assert asyncio.run(scenario()) == (True, False)
    notifier.stop()


def test_publish_between_read_and_park_is_not_missed(db: Any) -> None:
    notifier = Notifier(db)
    seen = notifier.version("apr_0000000000000002")
    notifier.publish("apr_0000000000000002")           # lands after the caller's read
    assert asyncio.run(notifier.wait("apr_0000000000000002", 30, since=seen)) is True
    notifier.stop()


def test_notify_crosses_engines_on_postgresql(pg_url: str, tmp_path: Any) -> None:
    import psycopg

    schema_url = pg_url   # one database shared by both "servers"
    a, b = Database(schema_url), Database(schema_url)
    a.migrate()
    with psycopg.connect(pg_url, autocommit=True) as conn:   # isolate from other tests' rows
        conn.execute("DELETE FROM approval_events")
        conn.execute("DELETE FROM approvals")
    from hoopcli.server.settings import load_settings

    settings = load_settings(env={}, home=str(tmp_path / "srv"))
    row, _ = svc.create(a, settings, principal("alice"), invocation=make_invocation("notify"),
                        decision=review(), connection="default")
    listener = Notifier(b)                              # "server B": only hears PostgreSQL

    async def scenario() -> tuple[bool, bool]:
        listener.start()
        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(None, listener.listening.wait, 30)
        await asyncio.sleep(0.2)   # the connect-time re-check has run; only a NOTIFY wakes now
        waiter = asyncio.create_task(listener.wait(row.id, 30))
        other = asyncio.create_task(listener.wait("apr_00000000000000ff", 3))
        await asyncio.sleep(0.2)
        # "server A" decides; no in-process publish reaches B, only pg_notify at commit
        await loop.run_in_executor(
            None, lambda: svc.decide(a, principal("alice"), row.id, approve=True, channel="web",
                                     presence=svc.Presence("sign-in", time.time())))
        return await waiter, await other

    try:
        assert asyncio.run(scenario()) == (True, False)   # woken; an unrelated waiter is not
    finally:
        listener.stop()
        a.dispose()
        b.dispose()


@pytest.fixture
def database_url(tmp_path: Any) -> str:   # the in-process tests need only SQLite
    return f"sqlite:///{tmp_path / 'n.db'}"
