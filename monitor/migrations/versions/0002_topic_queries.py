"""Topics as queries: query, priority, retag and sync bookkeeping; match spans and snippets.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _keywords_query(keywords: list[str]) -> str:
    # A frozen copy of the conversion of the day: migrations must not follow later code.
    return " OR ".join(f'"{k}"' if " " in k.strip() else k for k in keywords)


def upgrade() -> None:
    with op.batch_alter_table("topic") as batch:
        batch.add_column(sa.Column("query", sa.Text(), nullable=False, server_default=""))
        batch.add_column(
            sa.Column("priority", sa.String(length=16), nullable=False, server_default="normal")
        )
        batch.add_column(
            sa.Column("tagged_version", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("source_hash", sa.String(length=64), nullable=True))
    topic = sa.table(
        "topic", sa.column("id", sa.Integer()), sa.column("keywords", sa.JSON()),
        sa.column("query", sa.Text()), sa.column("version", sa.Integer()),
        sa.column("tagged_version", sa.Integer()),
    )  # fmt: skip
    connection = op.get_bind()
    for row in connection.execute(sa.select(topic.c.id, topic.c.keywords, topic.c.version)):
        keywords = row.keywords if isinstance(row.keywords, list) else json.loads(row.keywords)
        connection.execute(
            topic.update()
            .where(topic.c.id == row.id)
            # Stored matches came from these keywords: nothing to retag.
            .values(query=_keywords_query(keywords), tagged_version=row.version)
        )
    with op.batch_alter_table("topic") as batch:
        batch.drop_column("keywords")
        batch.alter_column("query", server_default=None)
        batch.alter_column("priority", server_default=None)
        batch.alter_column("tagged_version", server_default=None)
    with op.batch_alter_table("match") as batch:
        batch.add_column(sa.Column("spans", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("snippet", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("snippet_spans", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("match") as batch:
        for column in ("spans", "snippet", "snippet_spans"):
            batch.alter_column(column, server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("match") as batch:
        for column in ("snippet_spans", "snippet", "spans"):
            batch.drop_column(column)
    with op.batch_alter_table("topic") as batch:
        batch.add_column(sa.Column("keywords", sa.JSON(), nullable=False, server_default="[]"))
        for column in ("source_hash", "tagged_version", "priority", "query"):
            batch.drop_column(column)
