"""Approval requests and their event trail.

Revision ID: approvals_0001
Revises: 0001_base
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "approvals_0001"
down_revision = "0001_base"
branch_labels = ("approvals",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "approvals",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("org", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requester", sa.String(255), nullable=False),
        sa.Column("requester_email", sa.String(320), nullable=True),
        sa.Column("agent", sa.String(128), nullable=True),
        sa.Column("session_id", sa.String(64), nullable=True),
        sa.Column("connection", sa.String(64), nullable=False),
        sa.Column("region", sa.String(32), nullable=True),
        sa.Column("command", sa.Text, nullable=False),
        sa.Column("service", sa.String(64), nullable=True),
        sa.Column("operation", sa.String(128), nullable=True),
        sa.Column("access_level", sa.String(32), nullable=True),
        sa.Column("actions", sa.JSON, nullable=False),
        sa.Column("resources", sa.JSON, nullable=False),
        sa.Column("call_hash", sa.String(64), nullable=False),
        sa.Column("justification", sa.Text, nullable=True),
        sa.Column("rule", sa.String(255), nullable=True),
        sa.Column("approvers", sa.JSON, nullable=False),
        sa.Column("channels", sa.JSON, nullable=False),
        sa.Column("requested_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("decided_at", sa.Float, nullable=True),
        sa.Column("decided_by", sa.String(255), nullable=True),
        sa.Column("decided_by_email", sa.String(320), nullable=True),
        sa.Column("decision_channel", sa.String(16), nullable=True),
        sa.Column("decision_reason", sa.Text, nullable=True),
        sa.Column("consumed_at", sa.Float, nullable=True),
        sa.Column("slack_channel", sa.String(64), nullable=True),
        sa.Column("slack_ts", sa.String(64), nullable=True),
    )
    op.create_index("ix_approvals_org", "approvals", ["org"])
    op.create_index("ix_approvals_status", "approvals", ["status"])
    op.create_index("ix_approvals_requester", "approvals", ["requester"])
    op.create_index("ix_approvals_call_hash", "approvals", ["call_hash"])
    op.create_index("ix_approvals_expires_at", "approvals", ["expires_at"])
    op.create_table(
        "approval_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("approval_id", sa.String(40), nullable=False),
        sa.Column("org", sa.String(64), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("actor", sa.String(320), nullable=True),
        sa.Column("channel", sa.String(16), nullable=True),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
    )
    op.create_index("ix_approval_events_approval_id", "approval_events", ["approval_id"])


def downgrade() -> None:
    op.drop_index("ix_approval_events_approval_id", table_name="approval_events")
    op.drop_table("approval_events")
    for name in ("expires_at", "call_hash", "requester", "status", "org"):
        op.drop_index(f"ix_approvals_{name}", table_name="approvals")
    op.drop_table("approvals")
