"""The ledger writer's fast path for the gateway's records (ledger.log.Memo): it reads nothing,
so it must stay right when another replica appends in between, and must never report a record
stored whose transaction did not commit. SQLite and PostgreSQL, two Database objects on one
database standing for two server replicas."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import event, select

from hoopcli.server.ledger import log as ledger_log
from hoopcli.server.ledger.calls import append_api_calls, gateway_record
from hoopcli.server.ledger.checkpoints import SigningKey
from hoopcli.server.ledger.ingest import check_records
from hoopcli.server.ledger.writer import writer_for
from hoopcli.server.store.db import Database
from hoopcli.server.store.ledger import LedgerNode, LedgerRecord, LedgerSession
from hoopcli.transcript import merkle
from tests.ledger.ledger_factory import command

ORG = "default"


@pytest.fixture
def replicas(database_url: str, tmp_path: Any):
    dbs = [Database(database_url) for _ in range(2)]
    dbs[0].migrate()
    key = SigningKey.load_or_create(tmp_path)
    yield dbs, key
    for db in dbs:
        db.dispose()


def call(session_id: str, user: str = "alice", n: int = 0) -> dict[str, Any]:
    return gateway_record(session_id=session_id, service="s3", operation="GetObject", user=user,
                          decision={"effect": "allow", "rule": "r", "reason": None},
                          actions=["s3:GetObject"], http_status=200, params={"Key": f"k{n}"})


def gateway_append(db: Database, key: SigningKey, records: list[dict[str, Any]]) -> ledger_log.AppendResult:
    result = append_api_calls(db, key, ORG, records).result(timeout=30)
    assert not result.rejected, result.rejected
    return result


def client_append(db: Database, key: SigningKey, user: str, records: list[dict[str, Any]]) -> None:
    good, rejected = check_records(records)
    assert not rejected
    result = writer_for(db, key).submit(ORG, ledger_log.Uploader(user, None), good).result(timeout=30)
    assert len(result.accepted) == len(records)


def check_log(db: Database) -> tuple[int, list[str]]:
    """The stored log is whole: leaves 0..n-1, every stored node equals the one recomputed from
    the leaves, the head's size and frontier match. -> (size, record ids in log order)."""
    with db.session() as s:
        rows = s.execute(select(LedgerRecord.leaf_index, LedgerRecord.id, LedgerRecord.leaf)
                         .where(LedgerRecord.org == ORG).order_by(LedgerRecord.leaf_index)).all()
        nodes = {(lvl, idx): bytes(h) for lvl, idx, h in s.execute(
            select(LedgerNode.level, LedgerNode.idx, LedgerNode.hash).where(LedgerNode.org == ORG))}
        head = s.get(ledger_log.LedgerLog, ORG)
        assert head is not None
        size, front = head.size, list(head.frontier)
    assert [r[0] for r in rows] == list(range(len(rows)))
    frontier = merkle.Frontier(0, [])
    expected: dict[tuple[int, int], bytes] = {}
    for _, _, leaf in rows:
        for level, idx, h in frontier.append(merkle.leaf_hash(leaf.encode("utf-8"))):
            expected[(level, idx)] = h
    assert nodes == expected
    assert (size, front) == (frontier.size, [h.hex() for h in frontier.nodes])
    return size, [r[1] for r in rows]


def test_interleaved_replicas_keep_one_whole_log(replicas) -> None:
    (a, b), key = replicas
    sid_a, sid_b = uuid.uuid4().hex, uuid.uuid4().hex
    ids: list[str] = []
    for round_ in range(6):
        # replica A twice (the second append takes the fast path), then B behind A's back, then
        # a client upload through A's writer: A's memo is stale for the next round
        for db, sid in ((a, sid_a), (a, sid_a), (b, sid_b), (b, sid_a)):
            rec = call(sid, n=round_)
            gateway_append(db, key, [rec])
            ids.append(rec["id"])
        cmd = command(sid_b, round_ * 2, t=round_)
        for r in cmd:
            r["user"] = "alice"
        client_append(b, key, "alice", cmd)
        ids.extend(r["id"] for r in cmd)
    size, stored = check_log(a)
    assert size == len(ids) == 6 * 6
    assert stored == [ledger_log.normalize_id(i) for i in ids]
    with a.session() as s:
        summary = {row.id: row for row in s.scalars(select(LedgerSession).where(LedgerSession.org == ORG))}
    assert summary[sid_a].commands == 6 * 3 and summary[sid_a].incomplete == 0
    assert summary[sid_b].commands == 6 + 6        # six calls, six client commands
    assert summary[sid_b].incomplete == 0


def test_the_fast_path_takes_no_read(replicas) -> None:
    """After the first append, a gateway record of a known session is stored without a SELECT."""
    (a, _b), key = replicas
    sid = uuid.uuid4().hex
    gateway_append(a, key, [call(sid)])
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement.split()[0].upper())

    event.listen(a.engine, "before_cursor_execute", seen)
    try:
        gateway_append(a, key, [call(sid, n=1)])
    finally:
        event.remove(a.engine, "before_cursor_execute", seen)
    assert "SELECT" not in statements, statements
    assert statements[0] == "UPDATE"               # the head, first: it takes the lock
    assert check_log(a)[0] == 2


def test_a_record_is_never_reported_stored_when_its_commit_failed(replicas) -> None:
    (a, _b), key = replicas
    sid = uuid.uuid4().hex
    gateway_append(a, key, [call(sid)])

    def fail(_session: Any) -> None:
        raise RuntimeError("the disk is full")

    factory = a._sessions
    event.listen(factory, "before_commit", fail)
    try:
        future = append_api_calls(a, key, ORG, [call(sid, n=1)])
        with pytest.raises(RuntimeError):
            future.result(timeout=30)
    finally:
        event.remove(factory, "before_commit", fail)
    # the writer forgot what it had prepared: the next record lands right after the first
    gateway_append(a, key, [call(sid, n=2)])
    assert check_log(a)[0] == 2


def test_the_writer_gets_a_new_connection_when_the_one_it_holds_breaks(replicas) -> None:
    """The writer keeps one connection while records keep coming; a connection that broke under it
    (a database restart, a killed backend) costs the next record one retry, never the record."""
    (a, _b), key = replicas
    sid = uuid.uuid4().hex
    gateway_append(a, key, [call(sid)])
    writer = writer_for(a, key)
    held = writer._conn
    assert held is not None
    held.connection.dbapi_connection.close()     # gone under it, as after a database restart
    gateway_append(a, key, [call(sid, n=1)])
    assert writer._conn is not None and writer._conn is not held
    assert check_log(a)[0] == 2


def test_an_idle_writer_gives_its_connection_back(replicas, monkeypatch: pytest.MonkeyPatch) -> None:
    from hoopcli.server.ledger import writer as writer_mod

    (a, _b), key = replicas
    monkeypatch.setattr(writer_mod, "IDLE_RELEASE", 0.2)
    writer = writer_for(a, key)
    gateway_append(a, key, [call(uuid.uuid4().hex)])
    gateway_append(a, key, [call(uuid.uuid4().hex)])       # waits with the new IDLE_RELEASE
    import time

    deadline = time.monotonic() + 10
    while writer._conn is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert writer._conn is None
    gateway_append(a, key, [call(uuid.uuid4().hex)])
    assert check_log(a)[0] == 3
