"""Channels: webhooks and Apprise targets beside e-mail, delivered from the same outbox.

A ``channel`` row per target; ``delivery.channel_id`` and ``deliveryitem.channel_id`` say that a
delivery (and its articles) goes to a channel, unique per channel and period, and per channel
and article. A channel's items carry no subscriber, so ``deliveryitem.subscriber_id`` may now
be empty.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "channel",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("url_hash", sa.String(length=64), nullable=False),
        sa.Column("shown_url", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("topic_ids", sa.JSON(), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("frequency", sa.String(length=16), nullable=False),
        sa.Column("send_time", sa.String(length=5), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("template", sa.String(length=100), nullable=False),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscriber.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subscriber_id", "url_hash"),
    )
    with op.batch_alter_table("channel") as batch:
        batch.create_index(batch.f("ix_channel_subscriber_id"), ["subscriber_id"], unique=False)
    with op.batch_alter_table("delivery") as batch:
        batch.add_column(sa.Column("channel_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_delivery_channel_id", "channel", ["channel_id"], ["id"])
        batch.create_unique_constraint(
            "uq_delivery_channel_id_period_key", ["channel_id", "period_key"]
        )
    with op.batch_alter_table("deliveryitem") as batch:
        batch.add_column(sa.Column("channel_id", sa.Integer(), nullable=True))
        batch.alter_column("subscriber_id", existing_type=sa.Integer(), nullable=True)
        batch.create_foreign_key("fk_deliveryitem_channel_id", "channel", ["channel_id"], ["id"])
        batch.create_unique_constraint(
            "uq_deliveryitem_channel_id_article_id", ["channel_id", "article_id"]
        )


def downgrade() -> None:
    op.execute("DELETE FROM deliveryitem WHERE channel_id IS NOT NULL")
    op.execute("DELETE FROM delivery WHERE channel_id IS NOT NULL")
    with op.batch_alter_table("deliveryitem") as batch:
        batch.drop_constraint("uq_deliveryitem_channel_id_article_id", type_="unique")
        batch.drop_constraint("fk_deliveryitem_channel_id", type_="foreignkey")
        batch.alter_column("subscriber_id", existing_type=sa.Integer(), nullable=False)
        batch.drop_column("channel_id")
    with op.batch_alter_table("delivery") as batch:
        batch.drop_constraint("uq_delivery_channel_id_period_key", type_="unique")
        batch.drop_constraint("fk_delivery_channel_id", type_="foreignkey")
        batch.drop_column("channel_id")
    with op.batch_alter_table("channel") as batch:
        batch.drop_index(batch.f("ix_channel_subscriber_id"))
    op.drop_table("channel")
