"""Passkeys registered in the console (WebAuthn public keys), for a requester's self-approval.

Revision ID: passkeys_0001
Revises: 0001_base
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "passkeys_0001"
down_revision = "0001_base"
branch_labels = ("passkeys",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_passkeys",
        sa.Column("credential_id", sa.String(512), primary_key=True),
        sa.Column("org", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("public_key", sa.LargeBinary, nullable=False),
        sa.Column("sign_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("name", sa.String(64), nullable=False, server_default="passkey"),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_used_at", sa.Float, nullable=True),
    )
    op.create_index("ix_console_passkeys_org", "console_passkeys", ["org"])
    op.create_index("ix_console_passkeys_subject", "console_passkeys", ["subject"])


def downgrade() -> None:
    op.drop_table("console_passkeys")
