"""The language detected from each article's text, beside the one its feed declared.

Articles already stored are detected here too (title and feed text, as new ones are), so that
``lang:`` means the same on the whole archive; a few thousand a second, with a progress line
on standard error for an archive of more than 20,000 articles. One whose text is too short to
tell keeps "", and ``lang:`` tests its declared language, as before.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from __future__ import annotations

import sys

import sqlalchemy as sa
from alembic import op

from monitor.ingest.language import detect_language

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

BATCH = 2000
# Above this many articles the upgrade says how far it is.
PROGRESS_FROM = 20_000


def upgrade() -> None:
    with op.batch_alter_table("article") as batch:
        batch.add_column(
            sa.Column("detected_language", sa.String(length=35), nullable=False, server_default="")
        )
    _detect_stored()


def _detect_stored() -> None:
    """Detect the language of every stored article, a batch at a time, by id."""
    connection = op.get_bind()
    article = sa.table(
        "article",
        sa.column("id", sa.Integer),
        sa.column("title", sa.Text),
        sa.column("summary", sa.Text),
        sa.column("content", sa.Text),
        sa.column("language", sa.String),
        sa.column("detected_language", sa.String),
    )
    total = connection.execute(sa.select(sa.func.count()).select_from(article)).scalar_one()
    done, last_id = 0, 0
    while True:
        rows = connection.execute(
            sa.select(
                article.c.id, article.c.title, article.c.summary, article.c.content,
                article.c.language,
            )
            .where(article.c.id > last_id)
            .order_by(article.c.id)
            .limit(BATCH)
        ).all()  # fmt: skip
        if not rows:
            break
        updates = []
        for id_, title, summary, content, declared in rows:
            found = detect_language(
                title or "", f"{summary or ''}\n{content or ''}", declared or ""
            )
            if found:
                updates.append({"b_id": id_, "b_language": found})
        if updates:
            connection.execute(
                article.update()
                .where(article.c.id == sa.bindparam("b_id"))
                .values(detected_language=sa.bindparam("b_language")),
                updates,
            )
        last_id = rows[-1][0]
        done += len(rows)
        if total > PROGRESS_FROM:
            print(f"languages: {done:,} of {total:,} articles detected", file=sys.stderr)


def downgrade() -> None:
    with op.batch_alter_table("article") as batch:
        batch.drop_column("detected_language")
