"""Stories: near-duplicate clusters of articles, edits kept, tombstones of pruned articles.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "story",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lead_article_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("article_count", sa.Integer(), nullable=False),
        sa.Column("outlet_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("story") as batch:
        batch.create_index(batch.f("ix_story_first_seen_at"), ["first_seen_at"], unique=False)
    with op.batch_alter_table("article") as batch:
        batch.add_column(sa.Column("story_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("previous_title", sa.Text(), nullable=True))
        batch.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("signature", sa.LargeBinary(), nullable=True))
        batch.create_foreign_key("fk_article_story_id_story", "story", ["story_id"], ["id"])
        batch.create_index(batch.f("ix_article_story_id"), ["story_id"], unique=False)
    op.create_table(
        "story_band",
        sa.Column("band", sa.BigInteger(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("story_id", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["article.id"]),
        sa.ForeignKeyConstraint(["story_id"], ["story.id"]),
        sa.PrimaryKeyConstraint("band", "article_id"),
    )
    op.create_table(
        "tombstone",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("pruned_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_hash"),
    )


def downgrade() -> None:
    op.drop_table("tombstone")
    op.drop_table("story_band")
    with op.batch_alter_table("article") as batch:
        batch.drop_index(batch.f("ix_article_story_id"))
        batch.drop_constraint("fk_article_story_id_story", type_="foreignkey")
        batch.drop_column("signature")
        batch.drop_column("updated_at")
        batch.drop_column("previous_title")
        batch.drop_column("story_id")
    with op.batch_alter_table("story") as batch:
        batch.drop_index(batch.f("ix_story_first_seen_at"))
    op.drop_table("story")
