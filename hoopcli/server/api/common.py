"""Helpers shared by the core routers."""

from __future__ import annotations

from fastapi import HTTPException
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..security import Principal
from ..settings import Connection, Settings
from ..store.models import User, utcnow


def check_connection(settings: Settings, name: str) -> Connection:
    connection = settings.connection(name)
    if connection is None:
        allowed = ", ".join(sorted(settings.connections)) or "(none configured)"
        raise HTTPException(404, f"unknown connection {name[:64]!r}; allowed connections: {allowed}")
    return connection


def remember_user(session: Session, principal: Principal) -> None:
    """Upsert the users-seen row for this principal (last_seen, email, groups, roles)."""
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
