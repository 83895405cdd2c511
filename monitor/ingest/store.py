"""Store parsed entries as articles; only what is new comes back out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from monitor.db import dialect_insert
from monitor.ingest.canonical import article_key
from monitor.models import Article, Match, Sighting, Topic
from monitor.sources.parse import ParsedEntry

# Rows per INSERT: SQLite allows 32,766 bound parameters; 14 columns x 200 stays well below.
BATCH_SIZE = 200


def entries_to_rows(
    entries: Sequence[ParsedEntry], *, feed_id: int, now: datetime
) -> list[dict[str, Any]]:
    """Article rows for ``entries``, keyed, without repeats of one key within the batch."""
    rows: dict[str, dict[str, Any]] = {}
    for entry in entries:
        key = article_key(entry, feed_id=feed_id)
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
    new_ids: list[int] = []
    for start in range(0, len(rows), BATCH_SIZE):
        statement = (
            dialect_insert(session, Article)
            .values(rows[start : start + BATCH_SIZE])
            .on_conflict_do_nothing(index_elements=["key_hash"])
            .returning(col(Article.id))
        )
        new_ids.extend(session.execute(statement).scalars())
    _record_sightings(session, feed_id=feed_id, key_hashes=[r["key_hash"] for r in rows], now=now)
    if not new_ids:
        return []
    articles = session.exec(select(Article).where(col(Article.id).in_(new_ids))).all()
    return sorted(articles, key=lambda article: article.id or 0)


def _record_sightings(
    session: Session, *, feed_id: int, key_hashes: list[str], now: datetime
) -> None:
    for start in range(0, len(key_hashes), BATCH_SIZE):
        ids = session.exec(
            select(Article.id).where(
                col(Article.key_hash).in_(key_hashes[start : start + BATCH_SIZE])
            )
        ).all()
        rows = [
            {
                "article_id": article_id,
                "feed_id": feed_id,
                "first_seen_at": now,
                "last_seen_at": now,
            }
            for article_id in ids
        ]
        if not rows:
            continue
        statement = dialect_insert(session, Sighting).values(rows)
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
