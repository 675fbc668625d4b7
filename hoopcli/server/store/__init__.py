"""Storage: the Database, and every area's models (one import line each, so Alembic and
SQLAlchemy see all tables)."""

from __future__ import annotations

from hoopcli.server.store import (
    approvals,  # noqa: F401
    detections,  # noqa: F401
    idp,  # noqa: F401
    ledger,  # noqa: F401
    models,  # noqa: F401
    passkeys,  # noqa: F401
    policy,  # noqa: F401
)
from hoopcli.server.store.db import Base, Database  # noqa: F401
