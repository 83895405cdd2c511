"""Adaptive polling: each feed's interval reason, publishing rate, hints, last full fetch.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("feed") as batch:
        batch.add_column(sa.Column("interval_reason", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("items_per_day", sa.Float(), nullable=True))
        batch.add_column(sa.Column("hint_seconds", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("hint_source", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("last_full_fetch_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feed") as batch:
        batch.drop_column("last_full_fetch_at")
        batch.drop_column("hint_source")
        batch.drop_column("hint_seconds")
        batch.drop_column("items_per_day")
        batch.drop_column("interval_reason")
