"""Core tables: users seen, agent sessions, credential grants (no secrets, ever)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hoopcli.server.store.db import Base


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class User(Base):
    """A principal the server has seen a valid token for."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("org", "subject", name="uq_users_org_subject"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org: Mapped[str] = mapped_column(String(64), default="default")
    subject: Mapped[str] = mapped_column(String(255), index=True)
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    groups: Mapped[list[Any]] = mapped_column(JSON, default=list)
    roles: Mapped[list[Any]] = mapped_column(JSON, default=list)
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AgentSession(Base):
    """One agent session: the run of an agent under hoop, grouping its commands."""

    __tablename__ = "agent_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    org: Mapped[str] = mapped_column(String(64), default="default")
    user: Mapped[str] = mapped_column(String(255), index=True)          # token subject
    user_email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    agent: Mapped[str | None] = mapped_column(String(128), nullable=True)
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    cwd: Mapped[str | None] = mapped_column(Text, nullable=True)
    connection: Mapped[str | None] = mapped_column(String(64), nullable=True)
    source: Mapped[str] = mapped_column(String(16), default="api")     # api | records | credentials
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user": self.user,
            "user_email": self.user_email,
            "agent": self.agent,
            "host": self.host,
            "cwd": self.cwd,
            "connection": self.connection,
            "source": self.source,
            "created_at": _iso(self.created_at),
            "closed_at": _iso(self.closed_at) if self.closed_at else None,
            "exit_code": self.exit_code,
        }


class CredentialGrant(Base):
    """A credential vending: who, for which session and actions, which role ARN. Never the secret."""

    __tablename__ = "credential_grants"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org: Mapped[str] = mapped_column(String(64), default="default")
    session_id: Mapped[str] = mapped_column(String(64), index=True)
    user: Mapped[str] = mapped_column(String(255), index=True)
    connection: Mapped[str] = mapped_column(String(64))
    assumed_role_arn: Mapped[str] = mapped_column(Text)
    sts_session_name: Mapped[str] = mapped_column(String(64))
    actions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    decision: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    approval_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    expiration: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite returns naive datetimes; they were stored as UTC
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


class SessionCredential(Base):
    """A gateway session credential: the access key id an agent signs with, bound to one session,
    user, connection and agent. The secret is never stored: it is derived from the server's
    gateway key (hoopcli.server.sessions.credentials), so a copy of the database mints nothing."""

    __tablename__ = "session_credentials"

    access_key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org: Mapped[str] = mapped_column(String(64), default="default")
    session_id: Mapped[str] = mapped_column(String(64), index=True)
    user: Mapped[str] = mapped_column(String(255))
    user_email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    groups: Mapped[list[Any]] = mapped_column(JSON, default=list)
    roles: Mapped[list[Any]] = mapped_column(JSON, default=list)
    agent: Mapped[str | None] = mapped_column(String(128), nullable=True)
    connection: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
