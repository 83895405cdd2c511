"""Story index keyed by band, then time: window lookups read only the window's rows.

On SQLite the table becomes WITHOUT ROWID, one B-tree instead of a rowid table and an index.
Its foreign keys go: two checks for each of an article's rows were most of the cost of
inserting them on PostgreSQL, and prune deletes the rows before their article and story.
The rows kept are still found: signatures and the opening's first ten bands are unchanged.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


_FOREIGN_KEYS = {"article_id": "article", "story_id": "story"}


def upgrade() -> None:
    _rebuild(["band", "first_seen_at", "article_id"], with_rowid=False, foreign_keys=False)


def downgrade() -> None:
    _rebuild(["band", "article_id"], with_rowid=True, foreign_keys=True)


def _rebuild(key: list[str], *, with_rowid: bool, foreign_keys: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint("story_band_pkey", "story_band", type_="primary")
        op.create_primary_key("story_band_pkey", "story_band", key)
        for column, table in _FOREIGN_KEYS.items():
            name = f"story_band_{column}_fkey"
            if foreign_keys:
                op.create_foreign_key(name, "story_band", table, [column], ["id"])
            else:
                op.drop_constraint(name, "story_band", type_="foreignkey")
        return
    # SQLite changes neither a primary key nor WITHOUT ROWID in place: copy into a new table.
    op.create_table(
        "story_band_new",
        sa.Column("band", sa.BigInteger(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("story_id", sa.Integer(), nullable=False),
        *(
            sa.ForeignKeyConstraint([column], [f"{table}.id"])
            for column, table in _FOREIGN_KEYS.items()
            if foreign_keys
        ),
        sa.PrimaryKeyConstraint(*key),
        sqlite_with_rowid=with_rowid,
    )
    op.execute(
        "INSERT INTO story_band_new (band, first_seen_at, article_id, story_id) "
        "SELECT band, first_seen_at, article_id, story_id FROM story_band"
    )
    op.drop_table("story_band")
    op.rename_table("story_band_new", "story_band")
