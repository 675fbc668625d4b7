"""Storage core against SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, select, text

from hoopcli.errors import ConfigError
from hoopcli.server.store.db import Database, DatabaseTooNew
from hoopcli.server.store.models import AgentSession


@pytest.fixture
def db(database_url: str):
    database = Database(database_url)
    yield database
    database.dispose()


def test_migrate_creates_every_head_and_is_idempotent(db: Database) -> None:
    db.migrate()
    db.migrate()
    tables = set(inspect(db.engine).get_table_names())
    assert {"users", "agent_sessions", "credential_grants", "alembic_version"} <= tables
    current = db.current_revisions()
    # one row per branch head; every head the code knows is applied
    from alembic.script import ScriptDirectory

    heads = set(ScriptDirectory.from_config(db._alembic_config()).get_heads())
    assert current == heads


def test_refuses_a_database_from_a_newer_hoop(db: Database) -> None:
    db.migrate()
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO alembic_version (version_num) VALUES ('9999_from_the_future')"))
    with pytest.raises(DatabaseTooNew) as info:
        db.migrate()
    assert "9999_from_the_future" in info.value.message
    assert "newer hoop" in info.value.message
    assert isinstance(info.value, ConfigError)


def test_session_commits_and_rolls_back(db: Database) -> None:
    db.migrate()
    with db.session() as s:
        s.add(AgentSession(id="s1", user="alice", source="api"))
    with pytest.raises(RuntimeError), db.session() as s:
        s.add(AgentSession(id="s2", user="alice", source="api"))
        s.flush()
        raise RuntimeError("boom")
    with db.session() as s:
        ids = s.scalars(select(AgentSession.id)).all()
    assert ids == ["s1"]


def test_dialect(db: Database, database_url: str) -> None:
    assert db.dialect == ("sqlite" if database_url.startswith("sqlite") else "postgresql")


def test_password_is_hidden() -> None:
    db = Database("postgresql://hoop:hunter2@127.0.0.1:1/hoop")
    assert "hunter2" not in repr(db) and "hunter2" not in db.safe_url
    assert db.url.startswith("postgresql+psycopg://")


def test_unreachable_postgres_is_a_clear_error() -> None:
    from hoopcli.errors import Unavailable

    db = Database("postgresql://hoop:hunter2@127.0.0.1:1/hoop")
    with pytest.raises(Unavailable) as info:
        db.migrate()
    assert "cannot reach the database" in info.value.message
    assert "hunter2" not in info.value.message


def test_concurrent_migrations_on_one_database(database_url: str) -> None:
    import concurrent.futures

    dbs = [Database(database_url) for _ in range(3)]
    try:
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda d: d.migrate(), dbs))
        assert dbs[0].current_revisions() == dbs[1].current_revisions()
    finally:
        for d in dbs:
            d.dispose()
