"""Gateway session credentials (no secret column: secrets are derived from the gateway key).

Revision ID: sessions_0002
Revises: sessions_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "sessions_0002"
down_revision = "sessions_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "session_credentials",
        sa.Column("access_key_id", sa.String(32), primary_key=True),
        sa.Column("org", sa.String(64), nullable=False),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("user_email", sa.String(320), nullable=True),
        sa.Column("groups", sa.JSON, nullable=False),
        sa.Column("roles", sa.JSON, nullable=False),
        sa.Column("agent", sa.String(128), nullable=True),
        sa.Column("connection", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_session_credentials_session_id", "session_credentials", ["session_id"])


def downgrade() -> None:
    op.drop_index("ix_session_credentials_session_id", "session_credentials")
    op.drop_table("session_credentials")
