"""Base schema: users seen, agent sessions, credential grants.

Every area branches from this revision (versions/<area>_0001.py, down_revision "0001_base").
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_base"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("org", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("groups", sa.JSON, nullable=False),
        sa.Column("roles", sa.JSON, nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("org", "subject", name="uq_users_org_subject"),
    )
    op.create_index("ix_users_subject", "users", ["subject"])
    op.create_table(
        "agent_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("org", sa.String(64), nullable=False),
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("user_email", sa.String(320), nullable=True),
        sa.Column("agent", sa.String(128), nullable=True),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("cwd", sa.Text, nullable=True),
        sa.Column("connection", sa.String(64), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_agent_sessions_user", "agent_sessions", ["user"])
    op.create_index("ix_agent_sessions_created_at", "agent_sessions", ["created_at"])
    op.create_table(
        "credential_grants",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("org", sa.String(64), nullable=False),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("connection", sa.String(64), nullable=False),
        sa.Column("assumed_role_arn", sa.Text, nullable=False),
        sa.Column("sts_session_name", sa.String(64), nullable=False),
        sa.Column("actions", sa.JSON, nullable=False),
        sa.Column("decision", sa.JSON, nullable=False),
        sa.Column("approval_id", sa.String(64), nullable=True),
        sa.Column("expiration", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_credential_grants_session_id", "credential_grants", ["session_id"])
    op.create_index("ix_credential_grants_user", "credential_grants", ["user"])
    op.create_index("ix_credential_grants_created_at", "credential_grants", ["created_at"])


def downgrade() -> None:
    op.drop_table("credential_grants")
    op.drop_table("agent_sessions")
    op.drop_table("users")
