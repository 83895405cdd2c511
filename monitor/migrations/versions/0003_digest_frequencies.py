"""Digests at any frequency: weekly day, unsubscribe tombstones, opt-in empty notices, leases.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscriber") as batch:
        batch.add_column(
            sa.Column("notify_empty", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("subscription") as batch:
        batch.add_column(sa.Column("weekday", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("unsubscribed_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("delivery") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("delivery") as batch:
        batch.drop_column("claimed_until")
        batch.drop_column("claimed_by")
    with op.batch_alter_table("subscription") as batch:
        batch.drop_column("unsubscribed_at")
        batch.drop_column("weekday")
    with op.batch_alter_table("subscriber") as batch:
        batch.drop_column("notify_empty")
