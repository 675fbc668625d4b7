"""Development identity provider tables.

Revision ID: idp_0001
Revises: 0001_base
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "idp_0001"
down_revision = "0001_base"
branch_labels = ("idp",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idp_device_grants",
        sa.Column("device_code_hash", sa.String(64), primary_key=True),
        sa.Column("user_code_hash", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(255), nullable=True),
        sa.Column("poll_interval", sa.Integer, nullable=False),
        sa.Column("last_poll_at", sa.Float, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_idp_device_grants_user_code_hash", "idp_device_grants", ["user_code_hash"], unique=True)
    op.create_index("ix_idp_device_grants_expires_at", "idp_device_grants", ["expires_at"])
    op.create_table(
        "idp_auth_codes",
        sa.Column("code_hash", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("redirect_uri", sa.Text, nullable=False),
        sa.Column("code_challenge", sa.String(128), nullable=False),
        sa.Column("code_challenge_method", sa.String(8), nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("nonce", sa.String(255), nullable=True),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("used_at", sa.Float, nullable=True),
    )
    op.create_table(
        "idp_refresh_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("used_at", sa.Float, nullable=True),
        sa.Column("revoked_at", sa.Float, nullable=True),
    )
    op.create_index("ix_idp_refresh_tokens_subject", "idp_refresh_tokens", ["subject"])


def downgrade() -> None:
    op.drop_table("idp_refresh_tokens")
    op.drop_table("idp_auth_codes")
    op.drop_index("ix_idp_device_grants_expires_at", "idp_device_grants")
    op.drop_index("ix_idp_device_grants_user_code_hash", "idp_device_grants")
    op.drop_table("idp_device_grants")
