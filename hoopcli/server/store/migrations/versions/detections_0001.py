"""Detections: findings, session holds, and who read which secret when.

Revision ID: detections_0001
Revises: 0001_base
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "detections_0001"
down_revision = "0001_base"
branch_labels = ("detections",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "detection_findings",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("org", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(160), nullable=False),
        sa.Column("title", sa.String(255), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("scope_key", sa.String(400), nullable=False),
        sa.Column("window_key", sa.String(200), nullable=False),
        sa.Column("session_id", sa.String(128), nullable=False),
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("user_email", sa.String(320), nullable=True),
        sa.Column("agent", sa.String(128), nullable=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("raised_at", sa.Float, nullable=False),
        sa.Column("window_seconds", sa.Integer, nullable=False),
        sa.Column("threshold", sa.Integer, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("trigger_record", sa.String(36), nullable=False),
        sa.Column("records", sa.JSON, nullable=False),
        sa.Column("values", sa.JSON, nullable=False),
        sa.Column("outcome", sa.Text, nullable=True),
        sa.Column("slack_channel", sa.String(64), nullable=True),
        sa.Column("slack_ts", sa.String(64), nullable=True),
        sa.UniqueConstraint("org", "rule", "scope_key", "window_key", name="uq_detection_findings_once"),
    )
    op.create_index("ix_detection_findings_org_raised", "detection_findings", ["org", "raised_at"])
    op.create_index("ix_detection_findings_session", "detection_findings", ["org", "session_id"])
    op.create_index("ix_detection_findings_episode", "detection_findings", ["org", "rule", "scope_key", "at"])
    op.create_table(
        "detection_holds",
        sa.Column("org", sa.String(64), primary_key=True),
        sa.Column("session_id", sa.String(128), primary_key=True),
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("finding_id", sa.String(40), nullable=False),
        sa.Column("rule", sa.String(160), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("held_at", sa.Float, nullable=False),
        sa.Column("released_at", sa.Float, nullable=True),
        sa.Column("released_by", sa.String(320), nullable=True),
        sa.Column("release_reason", sa.Text, nullable=True),
    )
    op.create_table(
        "detection_seen",
        sa.Column("org", sa.String(64), primary_key=True),
        sa.Column("user", sa.String(255), primary_key=True),
        sa.Column("key", sa.String(512), primary_key=True),
        sa.Column("first_at", sa.Float, nullable=False),
        sa.Column("last_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("detection_seen")
    op.drop_table("detection_holds")
    for name in ("episode", "session", "org_raised"):
        op.drop_index(f"ix_detection_findings_{name}", table_name="detection_findings")
    op.drop_table("detection_findings")
