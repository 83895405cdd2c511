"""Web app: admin users, login throttling, per-topic feed tokens.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admin_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=150), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username"),
    )
    op.create_table(
        "login_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=150), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("login_attempt") as batch:
        batch.create_index("ix_login_attempt_username", ["username"], unique=False)
        batch.create_index("ix_login_attempt_address", ["address"], unique=False)
        batch.create_index("ix_login_attempt_attempted_at", ["attempted_at"], unique=False)
    with op.batch_alter_table("topic") as batch:
        batch.add_column(sa.Column("feed_token", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column("private", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.create_index("ix_topic_feed_token", ["feed_token"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("topic") as batch:
        batch.drop_index("ix_topic_feed_token")
        batch.drop_column("private")
        batch.drop_column("feed_token")
    op.drop_table("login_attempt")
    op.drop_table("admin_user")
