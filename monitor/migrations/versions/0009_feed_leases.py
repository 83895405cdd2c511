"""Feed leases: several workers share the due feeds, each claimed by one until its lease ends.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("feed") as batch:
        batch.add_column(sa.Column("lease_owner", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        # The claim filters and sorts on both; the old one-column index is a prefix of this one.
        batch.drop_index("ix_feed_next_check_at")
        batch.create_index(
            "ix_feed_next_check_at_lease_until", ["next_check_at", "lease_until"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("feed") as batch:
        batch.drop_index("ix_feed_next_check_at_lease_until")
        batch.create_index("ix_feed_next_check_at", ["next_check_at"], unique=False)
        batch.drop_column("lease_until")
        batch.drop_column("lease_owner")
