"""The session page's timeline: the commands (client-reported), the gateway's calls and the events
the server observed itself (session start and end, credentials issued or vended, approvals and
decisions: ledger.query.observed), in one list by time."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from hoopcli.server.ledger import query as ledger_query


def observed(db: Any, org: str, session_id: str) -> list[dict[str, Any]]:
    """The session's server-observed events. Call it only for a session the console user may see
    (ledger.service.console_session checked that)."""
    with db.session() as s:
        return ledger_query.observed(s, org, session_id)


def _when(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp()


def _time_of(entry: dict[str, Any]) -> float | None:
    rec = entry.get("call") or entry.get("start") or entry.get("result") or {}
    return _when(rec.get("time"))


def interleave(commands: list[dict[str, Any]], events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Commands and gateway calls in their order, each observed event (as `{"kind": "observed",
    "event": e}`) before the first entry that happened after it; events without a time last."""
    later = float("inf")
    pending = sorted(events, key=lambda e: _when(e.get("time")) or later)
    out: list[dict[str, Any]] = []
    i = 0
    for c in commands:
        at = _time_of(c)
        while i < len(pending) and at is not None and (_when(pending[i].get("time")) or later) <= at:
            out.append({"kind": "observed", "event": pending[i]})
            i += 1
        out.append(c)
    out += [{"kind": "observed", "event": e} for e in pending[i:]]
    return out
