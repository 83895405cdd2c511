"""The search index: FTS5 on SQLite, a tsvector column with a GIN index on PostgreSQL.

Every stored article is indexed here (``monitor.topics.index.rebuild_index``), a batch at a
time, with a progress line on standard error for an archive of more than 20,000 articles. On
PostgreSQL the GIN index is built once the column is filled: faster than growing it row by row.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from __future__ import annotations

import sys

from alembic import op

from monitor.topics.index import (
    FTS_CREATE,
    FTS_TABLE,
    VECTOR_COLUMN,
    VECTOR_INDEX,
    WORDS_CREATE,
    WORDS_TABLE,
    rebuild_index,
)

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

# Above this many articles the upgrade says how far it is.
PROGRESS_FROM = 20_000


def _progress(done: int, total: int) -> None:
    if total > PROGRESS_FROM and (done % 20_000 < 500 or done == total):
        print(f"search index: {done:,} of {total:,} articles indexed", file=sys.stderr)


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        op.execute(f"ALTER TABLE article ADD COLUMN {VECTOR_COLUMN} tsvector")
        rebuild_index(connection, progress=_progress)
        op.execute(f"CREATE INDEX {VECTOR_INDEX} ON article USING gin ({VECTOR_COLUMN})")
        return
    op.execute(FTS_CREATE)
    op.execute(WORDS_CREATE)
    rebuild_index(connection, progress=_progress)


def downgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {VECTOR_INDEX}")
        op.execute(f"ALTER TABLE article DROP COLUMN IF EXISTS {VECTOR_COLUMN}")
        return
    op.execute(f"DROP TABLE IF EXISTS {FTS_TABLE}")
    op.execute(f"DROP TABLE IF EXISTS {WORDS_TABLE}")
