"""API routers. Each module named here exposes `router` (a FastAPI APIRouter); app.py includes
them in this order. Names without a dot are modules of this package; dotted names are absolute
(e.g. "hoopcli.server.idp.routes"). Append one line per area."""

from __future__ import annotations

ROUTERS: list[str] = [
    "config",
    "sessions",
    "credentials",
    "policy",
    "approvals",
    "slack",
    "whoami",
    "records",
    "audit",
    "hoopcli.server.idp.routes",
    "hoopcli.server.web.auth",
    "hoopcli.server.web.pages",
]
