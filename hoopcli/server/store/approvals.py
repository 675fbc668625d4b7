"""Approval requests and their event trail.

Times are epoch seconds (Float): exact, comparable in SQL on SQLite and PostgreSQL alike.
An approval row never holds the raw command: `command` is the display form with secret-looking
values masked, and the call itself is bound by `call_hash` (SHA-256 of the canonical call form).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hoopcli.server.store.db import Base


class ApprovalRow(Base):
    __tablename__ = "approvals"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)   # pending|approved|rejected|expired
    requester: Mapped[str] = mapped_column(String(255), index=True)  # token subject
    requester_email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    agent: Mapped[str | None] = mapped_column(String(128), nullable=True)
    session_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    connection: Mapped[str] = mapped_column(String(64))
    region: Mapped[str | None] = mapped_column(String(32), nullable=True)
    command: Mapped[str] = mapped_column(Text)                     # masked display form
    service: Mapped[str | None] = mapped_column(String(64), nullable=True)
    operation: Mapped[str | None] = mapped_column(String(128), nullable=True)
    access_level: Mapped[str | None] = mapped_column(String(32), nullable=True)
    actions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    resources: Mapped[list[Any]] = mapped_column(JSON, default=list)
    call_hash: Mapped[str] = mapped_column(String(64), index=True)
    justification: Mapped[str | None] = mapped_column(Text, nullable=True)
    rule: Mapped[str | None] = mapped_column(String(255), nullable=True)
    approvers: Mapped[list[Any]] = mapped_column(JSON, default=list)  # "self" and/or group names
    channels: Mapped[list[Any]] = mapped_column(JSON, default=list)   # empty: every channel
    presence: Mapped[str | None] = mapped_column(String(16), nullable=True)  # None: "fresh" (default)
    requested_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
    decided_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    decided_by_email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    decision_channel: Mapped[str | None] = mapped_column(String(16), nullable=True)
    decision_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    consumed_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    slack_channel: Mapped[str | None] = mapped_column(String(64), nullable=True)
    slack_ts: Mapped[str | None] = mapped_column(String(64), nullable=True)


class ApprovalEvent(Base):
    """Every request, decision, refusal and use of an approval: who, when, channel, what."""

    __tablename__ = "approval_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    approval_id: Mapped[str] = mapped_column(String(40), index=True)
    org: Mapped[str] = mapped_column(String(64))
    at: Mapped[float] = mapped_column(Float)
    actor: Mapped[str | None] = mapped_column(String(320), nullable=True)
    channel: Mapped[str | None] = mapped_column(String(16), nullable=True)
    event: Mapped[str] = mapped_column(String(16))   # requested|approved|rejected|refused|consumed|expired
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
