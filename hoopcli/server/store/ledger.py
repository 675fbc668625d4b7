"""Ledger tables: the per-organisation Merkle log of transcript records, its signed checkpoints
and retention tombstones, plus the session/command summaries that make auditor queries fast.

Append-only by construction: the API has no route that updates or deletes a row of
`ledger_records`, `ledger_nodes` or `ledger_checkpoints`. Retention (an admin command) clears
the *content* of old records but keeps their leaf hashes, and signs a tombstone saying so.

    ledger_logs       one head row per org: size + frontier (the compact range); the row lock
                      that serializes appends
    ledger_records    one row per leaf: the record id (unique per org), the canonical leaf text
    ledger_nodes      every complete perfect subtree hash (level 0 = leaf hashes)
    ledger_checkpoints signed {org, seq, size, root, time, previous}
    ledger_tombstones signed retention markers
    ledger_sessions   per-session summary (keyset-paginated list)
    ledger_commands   per-command summary (start joined with result; a gateway api.call is one
                      whole command, keyed by its own record id)
    ledger_command_actions one row per (command, IAM action) for action-glob filters
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from hoopcli.server.store.db import Base


class LedgerLog(Base):
    __tablename__ = "ledger_logs"

    org: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    frontier: Mapped[list[Any]] = mapped_column(JSON, default=list)   # hex hashes, largest first
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class LedgerRecord(Base):
    __tablename__ = "ledger_records"
    __table_args__ = (
        UniqueConstraint("org", "id", name="uq_ledger_records_org_id"),
        Index("ix_ledger_records_session", "org", "session_id", "leaf_index"),
    )

    org: Mapped[str] = mapped_column(String(64), primary_key=True)
    leaf_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    id: Mapped[str] = mapped_column(String(36))
    session_id: Mapped[str] = mapped_column(String(128))
    command_id: Mapped[str] = mapped_column(String(36))   # an api.call's: its own id
    type: Mapped[str] = mapped_column(String(32))
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    leaf: Mapped[str | None] = mapped_column(Text, nullable=True)     # None after retention


class LedgerNode(Base):
    __tablename__ = "ledger_nodes"

    org: Mapped[str] = mapped_column(String(64), primary_key=True)
    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LedgerCheckpoint(Base):
    __tablename__ = "ledger_checkpoints"

    org: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger)
    root: Mapped[str] = mapped_column(String(64))
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    body: Mapped[str] = mapped_column(Text)            # the canonical JSON that was signed
    signature: Mapped[str] = mapped_column(String(128))  # base64 Ed25519
    key_id: Mapped[str] = mapped_column(String(64))


class LedgerTombstone(Base):
    __tablename__ = "ledger_tombstones"

    org: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    body: Mapped[str] = mapped_column(Text)
    signature: Mapped[str] = mapped_column(String(128))
    key_id: Mapped[str] = mapped_column(String(64))


class LedgerSession(Base):
    __tablename__ = "ledger_sessions"
    __table_args__ = (
        Index("ix_ledger_sessions_time", "org", "started_at", "id"),
        Index("ix_ledger_sessions_user_time", "org", "user", "started_at", "id"),
        Index("ix_ledger_sessions_agent_time", "org", "agent", "started_at", "id"),
    )

    org: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    user: Mapped[str] = mapped_column(String(255))             # authenticated uploader subject
    user_email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    agent: Mapped[str | None] = mapped_column(String(128), nullable=True)
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    connection: Mapped[str | None] = mapped_column(String(128), nullable=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    commands: Mapped[int] = mapped_column(Integer, default=0)
    incomplete: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    denied: Mapped[int] = mapped_column(Integer, default=0)
    reviewed: Mapped[int] = mapped_column(Integer, default=0)


class LedgerCommand(Base):
    __tablename__ = "ledger_commands"
    __table_args__ = (Index("ix_ledger_commands_session", "org", "session_id", "started_at"),)

    org: Mapped[str] = mapped_column(String(64), primary_key=True)
    command_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    effect: Mapped[str | None] = mapped_column(String(16), nullable=True)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    has_start: Mapped[int] = mapped_column(Integer, default=0)
    has_result: Mapped[int] = mapped_column(Integer, default=0)
    summary: Mapped[str | None] = mapped_column(Text, nullable=True)   # "s3 ls" (masked argv)


class LedgerCommandAction(Base):
    __tablename__ = "ledger_command_actions"
    __table_args__ = (
        Index("ix_ledger_command_actions_action", "org", "action", "session_id"),
        # the correlated EXISTS of the action filter probes by session: keep it an index seek
        Index("ix_ledger_command_actions_session", "org", "session_id", "action"),
    )

    org: Mapped[str] = mapped_column(String(64), primary_key=True)
    command_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    action: Mapped[str] = mapped_column(String(255), primary_key=True)   # lower-case
    session_id: Mapped[str] = mapped_column(String(128))
