"""Feed settings an admin sets from the web or the CLI: a fixed interval that replaces the
adaptive one, and a title the feed's own no longer replaces. (A deleted feed whose articles are
kept is ``state = 'removed'``: a new value of a text column, no schema change.)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("feed") as batch:
        batch.add_column(sa.Column("fixed_interval_seconds", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("title_locked", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("feed") as batch:
        batch.drop_column("title_locked")
        batch.drop_column("fixed_interval_seconds")
