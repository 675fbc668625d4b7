"""Who the callers are: the connections they may name and the users the server has seen."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hoopcli.server.errors import NotFound
from hoopcli.server.identity.security import Principal
from hoopcli.server.settings import Connection, Settings
from hoopcli.server.store.db import Database
from hoopcli.server.store.models import User, utcnow

# last_seen is refreshed at most this often per (user, claims); a change of claims writes at once
REMEMBER_EVERY = 300.0
_recent: dict[tuple[Any, ...], float] = {}


def check_connection(settings: Settings, name: str) -> Connection:
    connection = settings.connection(name)
    if connection is None:
        allowed = ", ".join(sorted(settings.connections)) or "(none configured)"
        raise NotFound(f"unknown connection {name[:64]!r}; allowed connections: {allowed}")
    return connection


def remember_user(db: Database | Session, principal: Principal) -> None:
    """Upsert the users-seen row for this principal.

    Given the Database, it runs in its own transaction, and a concurrent first request of the
    same user that loses the insert race updates instead. Given a Session, it joins that unit of
    work (the caller's transaction; a lost race then fails the caller's commit)."""
    if isinstance(db, Session):
        _upsert_user(db, principal)
        return
    key = (id(db), principal.org, principal.subject, principal.email, principal.name, principal.groups)
    now = time.monotonic()
    if now - _recent.get(key, -REMEMBER_EVERY) < REMEMBER_EVERY:
        return  # seen moments ago with the same claims: spare the hot path a write
    for attempt in (1, 2):
        try:
            with db.session() as session:
                _upsert_user(session, principal)
            if len(_recent) > 10_000:
                _recent.clear()
            _recent[key] = now
            return
        except IntegrityError:
            if attempt == 2:
                raise


def _upsert_user(session: Session, principal: Principal) -> None:
    user = session.scalars(
        select(User).where(User.org == principal.org, User.subject == principal.subject)
    ).first()
    now = utcnow()
    if user is None:
        user = User(org=principal.org, subject=principal.subject, first_seen=now)
        session.add(user)
    user.email = principal.email
    user.name = principal.name
    user.groups = list(principal.groups)
    user.roles = sorted(principal.roles)
    user.last_seen = now


def users_with_email(db: Database, org: str, limit: int = 1000) -> list[User]:
    """The organisation's users seen with an email, most recently seen first."""
    with db.session() as s:
        return list(s.execute(select(User).where(User.org == org, User.email.is_not(None))
                              .order_by(User.last_seen.desc()).limit(limit)).scalars().all())
