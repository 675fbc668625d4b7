"""Dev IdP: refresh-token families, so a replayed (rotated-away) token revokes its whole login.

Revision ID: idp_0002
Revises: idp_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "idp_0002"
down_revision = "idp_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("idp_refresh_tokens") as batch:
        # existing rows: each token its own family (its hash), so old logins keep working
        batch.add_column(sa.Column("family", sa.String(64), nullable=False, server_default=""))
    op.execute("UPDATE idp_refresh_tokens SET family = substr(token_hash, 1, 32) WHERE family = ''")
    op.create_index("ix_idp_refresh_tokens_family", "idp_refresh_tokens", ["family"])


def downgrade() -> None:
    op.drop_index("ix_idp_refresh_tokens_family", "idp_refresh_tokens")
    with op.batch_alter_table("idp_refresh_tokens") as batch:
        batch.drop_column("family")
