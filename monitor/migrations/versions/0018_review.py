"""Review: the alerts inbox's state per (article, topic), and the history of its changes.

``review`` holds the current state, note, who changed it and when; ``review_event`` one row per
change. Keyed by article and topic rather than by match, so a retag keeps them.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review",
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("topic_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(length=150), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changes", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["article.id"]),
        sa.ForeignKeyConstraint(["topic_id"], ["topic.id"]),
        sa.PrimaryKeyConstraint("article_id", "topic_id"),
    )
    with op.batch_alter_table("review") as batch:
        batch.create_index(batch.f("ix_review_topic_id"), ["topic_id"], unique=False)
    op.create_table(
        "review_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("topic_id", sa.Integer(), nullable=False),
        sa.Column("previous_state", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("previous_note", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("changed_by", sa.String(length=150), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["article.id"]),
        sa.ForeignKeyConstraint(["topic_id"], ["topic.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("review_event") as batch:
        batch.create_index(
            "ix_review_event_article_id_topic_id", ["article_id", "topic_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("review_event") as batch:
        batch.drop_index("ix_review_event_article_id_topic_id")
    op.drop_table("review_event")
    with op.batch_alter_table("review") as batch:
        batch.drop_index(batch.f("ix_review_topic_id"))
    op.drop_table("review")
