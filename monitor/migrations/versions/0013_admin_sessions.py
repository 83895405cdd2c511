"""Web sign-ins kept server-side: a session row per sign-in, deleted on sign-out or a new password.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admin_session",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["admin_user.id"]),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    with op.batch_alter_table("admin_session") as batch:
        batch.create_index("ix_admin_session_user_id", ["user_id"], unique=False)
        batch.create_index("ix_admin_session_last_seen_at", ["last_seen_at"], unique=False)


def downgrade() -> None:
    op.drop_table("admin_session")
