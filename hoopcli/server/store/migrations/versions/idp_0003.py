"""Dev IdP: auth_time (when the person actually signed in) on device grants, auth codes and
refresh tokens, so ID tokens report it and a refreshed token keeps the original login's time.

Revision ID: idp_0003
Revises: idp_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "idp_0003"
down_revision = "idp_0002"
branch_labels = None
depends_on = None

TABLES = ("idp_device_grants", "idp_auth_codes", "idp_refresh_tokens")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("auth_time", sa.Float, nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("auth_time")
