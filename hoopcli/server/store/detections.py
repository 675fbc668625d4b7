"""Detection tables: findings (with the records that raised them), session holds, and the
memory of who read which secret when (first-secret-access).

    detection_findings  one row per finding; unique per (org, rule, scope_key, window_key), so a
                        finding several replicas (or a replay after a restart) raise is stored once
    detection_holds     one row per held session: every further call needs an approver until an
                        approver releases it (released_at set)
    detection_seen      (org, user, key) -> first and last time the user read that secret; key "*"
                        is when the user was first seen reading any

Times are epoch seconds (Float), as in the approvals tables.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hoopcli.server.store.db import Base


class Finding(Base):
    __tablename__ = "detection_findings"
    __table_args__ = (
        UniqueConstraint("org", "rule", "scope_key", "window_key", name="uq_detection_findings_once"),
        Index("ix_detection_findings_org_raised", "org", "raised_at"),
        Index("ix_detection_findings_session", "org", "session_id"),
        Index("ix_detection_findings_episode", "org", "rule", "scope_key", "at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)          # fnd_ + 16 hex
    org: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str] = mapped_column(String(160))
    title: Mapped[str] = mapped_column(String(255))
    severity: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(16))                        # alert | hold | revoke
    scope: Mapped[str] = mapped_column(String(16))                         # session | user
    scope_key: Mapped[str] = mapped_column(String(400))
    window_key: Mapped[str] = mapped_column(String(200))
    session_id: Mapped[str] = mapped_column(String(128))
    user: Mapped[str] = mapped_column(String(255))
    user_email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    agent: Mapped[str | None] = mapped_column(String(128), nullable=True)
    at: Mapped[float] = mapped_column(Float)                # time of the record that met the threshold
    raised_at: Mapped[float] = mapped_column(Float)         # when the server raised it
    window_seconds: Mapped[int] = mapped_column(Integer)
    threshold: Mapped[int] = mapped_column(Integer)
    count: Mapped[int] = mapped_column(Integer)
    summary: Mapped[str] = mapped_column(Text)
    trigger_record: Mapped[str] = mapped_column(String(36))
    records: Mapped[list[Any]] = mapped_column(JSON, default=list)         # record ids, newest first
    values: Mapped[list[Any]] = mapped_column(JSON, default=list)          # secrets, services, calls
    outcome: Mapped[str | None] = mapped_column(Text, nullable=True)       # what the action did
    slack_channel: Mapped[str | None] = mapped_column(String(64), nullable=True)
    slack_ts: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Hold(Base):
    __tablename__ = "detection_holds"

    org: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    user: Mapped[str] = mapped_column(String(255))
    finding_id: Mapped[str] = mapped_column(String(40))
    rule: Mapped[str] = mapped_column(String(160))
    reason: Mapped[str] = mapped_column(Text)
    held_at: Mapped[float] = mapped_column(Float)
    released_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    released_by: Mapped[str | None] = mapped_column(String(320), nullable=True)
    release_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class Seen(Base):
    __tablename__ = "detection_seen"

    org: Mapped[str] = mapped_column(String(64), primary_key=True)
    user: Mapped[str] = mapped_column(String(255), primary_key=True)
    key: Mapped[str] = mapped_column(String(512), primary_key=True)
    first_at: Mapped[float] = mapped_column(Float)
    last_at: Mapped[float] = mapped_column(Float)
