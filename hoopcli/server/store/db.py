"""The database: one SQLAlchemy 2 engine, sessions, and Alembic migrations.

SQLite (the embedded default) and PostgreSQL (psycopg 3) are both first-class: every storage
test runs against both. The schema is owned by Alembic: `0001_base` plus one branch per area
(`versions/<area>_0001.py` with down_revision "0001_base"); `migrate()` upgrades to "heads" and
refuses a database stamped with a revision this code does not know (written by a newer hoop).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from hoopcli.errors import ConfigError, Unavailable
from hoopcli.server.settings import normalize_database_url

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
MIGRATION_LOCK_KEY = 0x686F6F70  # "hoop"


class Base(DeclarativeBase):
    pass


class DatabaseTooNew(ConfigError):
    """The database was migrated by a newer hoop than this one."""


class Database:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = normalize_database_url(url)
        parsed = make_url(self.url)
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database
            if database and database != ":memory:" and not database.startswith("file:"):
                Path(database).expanduser().parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs.update(pool_pre_ping=True, pool_size=5, max_overflow=10, pool_recycle=1800)
            kwargs["connect_args"] = {"connect_timeout": 10}
        try:
            self.engine: Engine = create_engine(self.url, **kwargs)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise ConfigError(f"database_url: cannot use {self.safe_url}: {exc}") from exc
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name if hasattr(self, "engine") else make_url(self.url).get_backend_name()

    @property
    def safe_url(self) -> str:
        """The URL with any password hidden, for messages and logs."""
        try:
            return make_url(self.url).render_as_string(hide_password=True)
        except Exception:  # never echo an unparsable URL that may hold a secret
            return "<database url>"

    def __repr__(self) -> str:
        return f"Database({self.safe_url!r})"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits when the block succeeds, rolls back when it raises."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def bound_session(self, connection: Any) -> Session:
        """A session (this database's factory, its events) on a connection the caller holds;
        the caller commits. Closing it rolls back what was not committed, not the connection."""
        return self._sessions(bind=connection)

    # -- migrations -------------------------------------------------------------------------
    def _alembic_config(self, connection: Any = None) -> Any:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        # `%` is interpolation syntax in ConfigParser; the URL is passed via attributes instead.
        cfg.attributes["connection"] = connection
        return cfg

    def known_revisions(self) -> set[str]:
        from alembic.script import ScriptDirectory

        script = ScriptDirectory.from_config(self._alembic_config())
        return {rev.revision for rev in script.walk_revisions()}

    def current_revisions(self) -> set[str]:
        try:
            with self.engine.connect() as conn:
                if not inspect(conn).has_table("alembic_version"):
                    return set()
                return {row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))}
        except SQLAlchemyError as exc:
            raise Unavailable(f"cannot reach the database {self.safe_url}: {_short(exc)}") from exc

    def check_not_newer(self) -> None:
        unknown = self.current_revisions() - self.known_revisions()
        if unknown:
            raise DatabaseTooNew(
                f"the database {self.safe_url} is at schema revision {', '.join(sorted(unknown))}, "
                "which this hoop version does not know: it was migrated by a newer hoop",
                hint="upgrade hoop (pip install -U hoopcli) or point --database-url at another database",
            )

    def migrate(self) -> None:
        """Upgrade to every head; refuse a database written by a newer hoop."""
        with self._migration_lock():
            self._migrate_locked()

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        """SQLite: an flock beside the database file (pysqlite runs DDL outside transactions, so
        two servers starting together would both try to create the tables). PostgreSQL uses an
        advisory lock inside the migration transaction instead."""
        database = make_url(self.url).database if self.dialect == "sqlite" else None
        if not database or database == ":memory:" or database.startswith("file:"):
            yield
            return
        import fcntl

        lock_path = Path(database).expanduser().with_name(Path(database).name + ".migrate-lock")
        with open(lock_path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _migrate_locked(self) -> None:
        from alembic import command
        from alembic.util.exc import CommandError

        self.check_not_newer()
        try:
            with self.engine.begin() as conn:
                if self.dialect == "postgresql":
                    # several servers starting together on one database migrate one at a time
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
                command.upgrade(self._alembic_config(conn), "heads")
        except CommandError as exc:
            raise DatabaseTooNew(f"cannot migrate {self.safe_url}: {exc}") from exc
        except SQLAlchemyError as exc:
            raise Unavailable(f"cannot migrate the database {self.safe_url}: {_short(exc)}") from exc

    def dispose(self) -> None:
        self.engine.dispose()


def _short(exc: BaseException) -> str:
    text_ = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text_[0][:300] if text_ else type(exc).__name__


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    try:
        cur.execute("PRAGMA journal_mode=WAL")
    except Exception:  # in-memory databases refuse WAL; harmless
        pass
    cur.close()
