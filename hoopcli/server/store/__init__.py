"""Storage: the Database, and every area's models (one import line each, so Alembic and
SQLAlchemy see all tables)."""

from __future__ import annotations

from .db import Base, Database  # noqa: F401
from . import models  # noqa: F401
from . import ledger  # noqa: F401
from . import policy  # noqa: F401
from . import approvals  # noqa: F401
from . import idp  # noqa: F401
