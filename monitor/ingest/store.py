"""Store parsed entries as articles; only what is new comes back out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import literal
from sqlmodel import Session, SQLModel, col, select

from monitor.db import dialect_insert
from monitor.ingest.canonical import article_keys
from monitor.models import Article, Match, Topic, UTCDateTime
from monitor.sources.parse import ParsedEntry

ARTICLES = SQLModel.metadata.tables["article"]
SIGHTINGS = SQLModel.metadata.tables["sighting"]
# Keys per sighting upsert: far below the bound-parameter limits of SQLite and PostgreSQL.
KEYS_PER_STATEMENT = 5000


def entries_to_rows(
    entries: Sequence[ParsedEntry], *, feed_id: int, now: datetime
) -> list[dict[str, Any]]:
    """Article rows for ``entries``, keyed, without repeats of one key within the batch."""
    rows: dict[str, dict[str, Any]] = {}
    for entry, key in zip(entries, article_keys(entries, feed_id=feed_id), strict=True):
        if key.key_hash in rows:
            continue
        rows[key.key_hash] = {
            "key_hash": key.key_hash,
            "canonical_url": key.canonical_url,
            "guid": entry.guid,
            "url": entry.link or "",
            "feed_id": feed_id,
            "title": entry.title,
            "summary": entry.summary,
            "content": entry.content,
            "author": entry.author,
            "language": entry.language[:35],
            "published_at": entry.published_at,
            "first_seen_at": now,
            "content_hash": key.content_hash,
        }
    return list(rows.values())


def save_new_articles(
    session: Session, *, feed_id: int, entries: Sequence[ParsedEntry], now: datetime
) -> list[Article]:
    """Insert the entries not stored yet and record the sightings; return only the new articles."""
    rows = entries_to_rows(entries, feed_id=feed_id, now=now)
    if not rows:
        return []
    # One statement executed with many parameter sets, on the Core table: SQLAlchemy compiles
    # it once and caches it, where a fresh multi-row VALUES was compiled on every call.
    insert_articles = (
        dialect_insert(session, ARTICLES)
        .on_conflict_do_nothing(index_elements=["key_hash"])
        .returning(ARTICLES.c.id)
    )
    new_ids = list(session.execute(insert_articles, rows).scalars())
    _record_sightings(session, feed_id=feed_id, key_hashes=[r["key_hash"] for r in rows], now=now)
    if not new_ids:
        return []
    articles = session.exec(select(Article).where(col(Article.id).in_(new_ids))).all()
    return sorted(articles, key=lambda article: article.id or 0)


def _record_sightings(
    session: Session, *, feed_id: int, key_hashes: list[str], now: datetime
) -> None:
    for start in range(0, len(key_hashes), KEYS_PER_STATEMENT):
        seen = select(
            ARTICLES.c.id,
            literal(feed_id).label("feed_id"),
            literal(now, UTCDateTime()).label("first_seen_at"),
            literal(now, UTCDateTime()).label("last_seen_at"),
        ).where(ARTICLES.c.key_hash.in_(key_hashes[start : start + KEYS_PER_STATEMENT]))
        statement = dialect_insert(session, SIGHTINGS).from_select(
            ["article_id", "feed_id", "first_seen_at", "last_seen_at"], seen
        )
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["article_id", "feed_id"],
                set_={"last_seen_at": statement.excluded.last_seen_at},
            )
        )


def list_articles(
    session: Session,
    *,
    since: datetime | None = None,
    topic_id: int | None = None,
    limit: int = 50,
) -> list[tuple[Article, list[str]]]:
    """The newest articles first seen since ``since`` (of one topic, if given), with topic slugs."""
    statement = select(Article)
    if since is not None:
        statement = statement.where(col(Article.first_seen_at) >= since)
    if topic_id is not None:
        statement = statement.join(Match, col(Match.article_id) == Article.id).where(
            Match.topic_id == topic_id
        )
    articles = session.exec(
        statement.order_by(col(Article.first_seen_at).desc(), col(Article.id).desc()).limit(limit)
    ).all()
    ids = [article.id for article in articles]
    slugs: dict[int, list[str]] = {}
    for article_id, slug in session.exec(
        select(Match.article_id, Topic.slug)
        .join(Topic, col(Topic.id) == Match.topic_id)
        .where(col(Match.article_id).in_(ids))
        .order_by(col(Topic.slug))
    ):
        slugs.setdefault(article_id, []).append(slug)
    return [(article, slugs.get(article.id or 0, [])) for article in articles]
