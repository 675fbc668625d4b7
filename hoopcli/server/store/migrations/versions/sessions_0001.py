"""Agent sessions can be closed: when `hoop run` ends, with the agent's exit status.

Revision ID: sessions_0001
Revises: 0001_base
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "sessions_0001"
down_revision = "0001_base"
branch_labels = ("sessions",)
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agent_sessions") as batch:
        batch.add_column(sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("exit_code", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agent_sessions") as batch:
        batch.drop_column("exit_code")
        batch.drop_column("closed_at")
