"""Ledger: Merkle log of transcript records, checkpoints, tombstones, session/command summaries.

Revision ID: ledger_0001
Revises: 0001_base
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "ledger_0001"
down_revision = "0001_base"
branch_labels = ("ledger",)
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ledger_logs",
        sa.Column("org", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("frontier", sa.JSON, nullable=False),
        sa.Column("updated_at", TZ, nullable=True),
    )
    op.create_table(
        "ledger_records",
        sa.Column("org", sa.String(64), primary_key=True),
        sa.Column("leaf_index", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("session_id", sa.String(128), nullable=False),
        sa.Column("command_id", sa.String(36), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("time", TZ, nullable=False),
        sa.Column("received_at", TZ, nullable=False),
        sa.Column("leaf", sa.Text, nullable=True),
        sa.UniqueConstraint("org", "id", name="uq_ledger_records_org_id"),
    )
    op.create_index("ix_ledger_records_session", "ledger_records", ["org", "session_id", "leaf_index"])
    op.create_table(
        "ledger_nodes",
        sa.Column("org", sa.String(64), primary_key=True),
        sa.Column("level", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
    )
    for name in ("ledger_checkpoints", "ledger_tombstones"):
        cols: list[sa.Column[Any]] = [
            sa.Column("org", sa.String(64), primary_key=True),
            sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        ]
        if name == "ledger_checkpoints":
            cols += [sa.Column("size", sa.BigInteger, nullable=False),
                     sa.Column("root", sa.String(64), nullable=False)]
        cols += [
            sa.Column("time", TZ, nullable=False),
            sa.Column("body", sa.Text, nullable=False),
            sa.Column("signature", sa.String(128), nullable=False),
            sa.Column("key_id", sa.String(64), nullable=False),
        ]
        op.create_table(name, *cols)
    op.create_table(
        "ledger_sessions",
        sa.Column("org", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("user_email", sa.String(320), nullable=True),
        sa.Column("agent", sa.String(128), nullable=True),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("connection", sa.String(128), nullable=True),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("last_at", TZ, nullable=False),
        sa.Column("commands", sa.Integer, nullable=False),
        sa.Column("incomplete", sa.Integer, nullable=False),
        sa.Column("failed", sa.Integer, nullable=False),
        sa.Column("denied", sa.Integer, nullable=False),
        sa.Column("reviewed", sa.Integer, nullable=False),
    )
    op.create_index("ix_ledger_sessions_time", "ledger_sessions", ["org", "started_at", "id"])
    op.create_index("ix_ledger_sessions_user_time", "ledger_sessions", ["org", "user", "started_at", "id"])
    op.create_index("ix_ledger_sessions_agent_time", "ledger_sessions", ["org", "agent", "started_at", "id"])
    op.create_table(
        "ledger_commands",
        sa.Column("org", sa.String(64), primary_key=True),
        sa.Column("command_id", sa.String(36), primary_key=True),
        sa.Column("session_id", sa.String(128), nullable=False),
        sa.Column("started_at", TZ, nullable=True),
        sa.Column("effect", sa.String(16), nullable=True),
        sa.Column("exit_code", sa.Integer, nullable=True),
        sa.Column("has_start", sa.Integer, nullable=False),
        sa.Column("has_result", sa.Integer, nullable=False),
        sa.Column("summary", sa.Text, nullable=True),
    )
    op.create_index("ix_ledger_commands_session", "ledger_commands", ["org", "session_id", "started_at"])
    op.create_table(
        "ledger_command_actions",
        sa.Column("org", sa.String(64), primary_key=True),
        sa.Column("command_id", sa.String(36), primary_key=True),
        sa.Column("action", sa.String(255), primary_key=True),
        sa.Column("session_id", sa.String(128), nullable=False),
    )
    op.create_index("ix_ledger_command_actions_action", "ledger_command_actions",
                    ["org", "action", "session_id"])
    op.create_index("ix_ledger_command_actions_session", "ledger_command_actions",
                    ["org", "session_id", "action"])


def downgrade() -> None:
    for name in ("ledger_command_actions", "ledger_commands", "ledger_sessions", "ledger_tombstones",
                 "ledger_checkpoints", "ledger_nodes", "ledger_records", "ledger_logs"):
        op.drop_table(name)
