"""Approvals: the rule's `presence` (what a self-approval must prove; NULL is the default, fresh).

Revision ID: approvals_0002
Revises: approvals_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "approvals_0002"
down_revision = "approvals_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("approvals") as batch:
        batch.add_column(sa.Column("presence", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("approvals") as batch:
        batch.drop_column("presence")
