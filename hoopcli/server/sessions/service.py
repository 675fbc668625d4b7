"""Agent sessions: opened by `hoop run` (or minted by the shim and claimed when it first asks
for credentials), closed once by their owner with the agent's exit status."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from hoopcli.server.errors import Conflict, Forbidden, NotFound, Unprocessable
from hoopcli.server.identity.security import Principal
from hoopcli.server.identity.service import check_connection, remember_user
from hoopcli.server.settings import Settings
from hoopcli.server.store.db import Database
from hoopcli.server.store.models import AgentSession, SessionCredential

SESSION_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def open_session(db: Database, settings: Settings, principal: Principal, *, agent: str | None,
                 host: str | None, cwd: str | None, connection: str | None) -> dict[str, Any]:
    if connection is not None:
        check_connection(settings, connection)
    for value in (agent, host, cwd):
        if value is not None and "\x00" in value:
            raise Unprocessable("NUL characters are not allowed")
    remember_user(db, principal)
    with db.session() as s:
        row = AgentSession(
            id=uuid.uuid4().hex,
            org=principal.org,
            user=principal.subject,
            user_email=principal.email,
            agent=agent,
            host=host,
            cwd=cwd,
            connection=connection,
            source="api",
        )
        s.add(row)
        s.flush()
        return row.to_dict()


def close_session(db: Database, principal: Principal, session_id: str, exit_code: int | None) -> dict[str, Any]:
    """Only the session's owner (or an admin) closes it, once; a second close is a 409."""
    if len(session_id) > 64:
        raise NotFound("no such session")
    with db.session() as s:
        row = s.get(AgentSession, session_id)
        if row is None or row.org != principal.org or (row.user != principal.subject and not principal.has("admin")):
            raise NotFound("no such session")
        if row.closed_at is not None:
            raise Conflict("the session is already closed")
        row.closed_at = datetime.now(timezone.utc)
        row.exit_code = exit_code
        s.flush()
        out = row.to_dict()
    # Ending a session ends what its agent holds: its gateway credentials stop at once.
    out["revoked_credentials"] = revoke_session(db, session_id)
    return out


def claim(db: Database, principal: Principal, session_id: str, connection: str) -> None:
    """The session must be the caller's; a session the shim minted locally is created here."""
    with db.session() as s:
        row = s.get(AgentSession, session_id)
        if row is not None:
            if row.user != principal.subject or row.org != principal.org:
                raise Forbidden("this session belongs to another user")
            return
    try:
        with db.session() as s:
            s.add(AgentSession(
                id=session_id, org=principal.org, user=principal.subject, user_email=principal.email,
                connection=connection, source="credentials",
            ))
    except IntegrityError:
        with db.session() as s:  # created concurrently (records upload or another shim)
            row = s.get(AgentSession, session_id)
            if row is None or row.user != principal.subject or row.org != principal.org:
                raise Forbidden("this session belongs to another user") from None


def revoke_session(db: Database, session_id: str) -> int:
    """Revoke every live credential of a session -> how many."""
    with db.session() as s:
        result = s.execute(update(SessionCredential).where(
            SessionCredential.session_id == session_id, SessionCredential.revoked_at.is_(None),
        ).values(revoked_at=datetime.now(timezone.utc)))
        return int(getattr(result, "rowcount", 0) or 0)
