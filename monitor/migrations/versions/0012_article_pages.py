"""Article pages: the page queue, each article's extracted body, per-feed fetch_pages, and the
text each match was made on.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("feed") as batch:
        batch.add_column(
            sa.Column("fetch_pages", sa.String(length=8), nullable=False, server_default="auto")
        )
    with op.batch_alter_table("article") as batch:
        batch.add_column(sa.Column("body", sa.Text(), nullable=False, server_default=""))
        batch.add_column(
            sa.Column("body_method", sa.String(length=32), nullable=False, server_default="")
        )
    with op.batch_alter_table("match") as batch:
        batch.add_column(
            sa.Column("text_source", sa.String(length=8), nullable=False, server_default="feed")
        )
    op.create_table(
        "article_page",
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("final_url", sa.Text(), nullable=True),
        sa.Column("canonical_url", sa.Text(), nullable=True),
        sa.Column("canonical_hash", sa.String(length=64), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("language", sa.String(length=35), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("bytes", sa.Integer(), nullable=True),
        sa.Column("lease_owner", sa.String(length=100), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["article.id"]),
        sa.PrimaryKeyConstraint("article_id"),
    )
    op.create_index(
        "ix_article_page_status_next_attempt_at", "article_page", ["status", "next_attempt_at"]
    )
    op.create_index(
        "ix_article_page_host_last_attempt_at", "article_page", ["host", "last_attempt_at"]
    )
    op.create_index("ix_article_page_canonical_hash", "article_page", ["canonical_hash"])


def downgrade() -> None:
    op.drop_table("article_page")
    with op.batch_alter_table("match") as batch:
        batch.drop_column("text_source")
    with op.batch_alter_table("article") as batch:
        batch.drop_column("body_method")
        batch.drop_column("body")
    with op.batch_alter_table("feed") as batch:
        batch.drop_column("fetch_pages")
