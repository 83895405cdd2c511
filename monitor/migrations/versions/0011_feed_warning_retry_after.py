"""Feeds remember their last warning (a malformed document, items skipped) and how long the
server asked them to wait (Retry-After), so pages show the one and manual polls honour the other.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("feed") as batch:
        batch.add_column(sa.Column("last_warning", sa.Text(), nullable=True))
        batch.add_column(sa.Column("retry_after_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feed") as batch:
        batch.drop_column("retry_after_until")
        batch.drop_column("last_warning")
