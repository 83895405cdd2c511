"""The language detected from each article's text, beside the one its feed declared.

Articles stored before have none ("") and are tested by ``lang:`` on the declared language, as
before.

Revision ID: 0016
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("article") as batch:
        batch.add_column(
            sa.Column("detected_language", sa.String(length=35), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("article") as batch:
        batch.drop_column("detected_language")
