"""Article identity and backlog: shared links, richer texts kept, canonical keys recomputed.

* ``shared_link``: links that several different items share (a home page, a landing page),
  remembered so that they are never an article's key.
* ``article.backlog``: articles published well before they were first seen. Existing rows are
  judged by the same rule as new ones, as far as the stored dates tell: published more than
  two days (the default ``ingest.backlog_after``) before first seen. Otherwise the backlog a
  past poll stored would still be counted in every topic's usual level for weeks.
* ``article.source_hash``: set only while an article shows another feed's richer text.
* Canonical URLs now keep non-UTF-8 escapes byte for byte, remove dot segments and drop more
  tracking parameters: an article keyed by its link gets the key its link has now, so the
  next poll that lists it finds it instead of storing it again. Its old key is kept when the
  new one is already taken (an article already stored under it, or a pruned one's tombstone).
  The new form is the running version's ``canonical_url``: a later change to it brings its own
  migration, as this one does.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qsl, urlsplit

import sqlalchemy as sa
from alembic import op

from monitor.ingest.canonical import canonical_url_or_none

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

BATCH = 2000
_BACKLOG_DAYS = 2
# What the old canonical form made of a query escape that was not UTF-8.
_REPLACED = "%EF%BF%BD"

_ARTICLE = sa.table(
    "article",
    sa.column("id", sa.Integer()),
    sa.column("key_hash", sa.String()),
    sa.column("canonical_url", sa.Text()),
    sa.column("url", sa.Text()),
)
_TOMBSTONE = sa.table("tombstone", sa.column("key_hash", sa.String()))


def upgrade() -> None:
    op.create_table(
        "shared_link",
        sa.Column("link_hash", sa.String(length=64), nullable=False),
        sa.Column("feed_id", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("link_hash"),
    )
    with op.batch_alter_table("article") as batch:
        batch.add_column(
            sa.Column("backlog", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("source_hash", sa.String(length=64), nullable=True))
    _mark_backlog()
    _rekey_links(op.get_bind())


def downgrade() -> None:
    with op.batch_alter_table("article") as batch:
        batch.drop_column("source_hash")
        batch.drop_column("backlog")
    op.drop_table("shared_link")


def _mark_backlog() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # Times are stored naive UTC as "YYYY-MM-DD HH:MM:SS[.ffffff]", which julianday reads.
        older = f"julianday(published_at) < julianday(first_seen_at) - {_BACKLOG_DAYS}"
    else:
        older = f"published_at < first_seen_at - interval '{_BACKLOG_DAYS} days'"
    op.execute(f"UPDATE article SET backlog = true WHERE published_at IS NOT NULL AND {older}")


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _rekey_links(connection: sa.Connection) -> None:
    """Give each link-keyed article the key of its link's canonical form now."""
    last: int | None = None
    while True:
        batch = (
            sa.select(_ARTICLE.c.id, _ARTICLE.c.key_hash, _ARTICLE.c.canonical_url, _ARTICLE.c.url)
            .where(_ARTICLE.c.canonical_url.is_not(None))
            .order_by(_ARTICLE.c.id)
            .limit(BATCH)
        )
        if last is not None:
            batch = batch.where(_ARTICLE.c.id > last)
        rows = connection.execute(batch).all()
        if not rows:
            return
        last = rows[-1].id
        changes = [change for row in rows if (change := _new_key(*row)) is not None]
        _apply(connection, changes)


def _new_key(
    article_id: int, key_hash: str, canonical: str, url: str
) -> tuple[int, str, str, str] | None:
    """(id, old key, new key, new canonical URL) of an article whose link key changed."""
    fragment = urlsplit(url).fragment if url else ""
    if key_hash == _hash(f"url:{canonical}"):
        suffix = ""
    elif fragment and key_hash == _hash(f"url:{canonical}#{fragment}"):
        suffix = f"#{fragment}"
    else:
        return None  # keyed by its GUID or content: no link in its key
    new = canonical_url_or_none(canonical)
    if _REPLACED in canonical and url:
        # The old form lost these bytes; the link as given still has them. The tracking
        # parameters the settings name were dropped from the old form: drop them again.
        names = {name.lower() for name, _ in parse_qsl(urlsplit(canonical).query)}
        again = canonical_url_or_none(url)
        if again is not None:
            query = parse_qsl(urlsplit(again).query, keep_blank_values=True, encoding="latin-1")
            dropped = frozenset(name for name, _ in query if name.lower() not in names)
            new = canonical_url_or_none(url, tracking=dropped)
    if new is None or new == canonical:
        return None
    return article_id, key_hash, _hash(f"url:{new}{suffix}"), new


def _apply(connection: sa.Connection, changes: list[tuple[int, str, str, str]]) -> None:
    if not changes:
        return
    wanted = [new for _, _, new, _ in changes]
    taken = set(
        connection.execute(
            sa.select(_ARTICLE.c.key_hash).where(_ARTICLE.c.key_hash.in_(wanted))
        ).scalars()
    )
    taken |= set(
        connection.execute(
            sa.select(_TOMBSTONE.c.key_hash).where(_TOMBSTONE.c.key_hash.in_(wanted))
        ).scalars()
    )
    for article_id, _old, new, canonical in changes:
        if new in taken:
            continue
        taken.add(new)
        connection.execute(
            sa.update(_ARTICLE)
            .where(_ARTICLE.c.id == article_id)
            .values(key_hash=new, canonical_url=canonical)
        )
