"""Store parsed entries as articles; only what is new comes back out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, literal, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel, col, select

from monitor.db import dialect_insert
from monitor.ingest.canonical import ArticleKey, article_keys
from monitor.ingest.language import detect_entry_language
from monitor.ingest.sketch import Sketch, StoryRules, repeated_paragraphs
from monitor.ingest.stories import (
    assign_stories,
    lock_stories,
    refresh_story_counts,
    retitle_stories,
)
from monitor.models import Article, Match, Tombstone, Topic, UTCDateTime
from monitor.sources.parse import ParsedEntry

ARTICLES = SQLModel.metadata.tables["article"]
SIGHTINGS = SQLModel.metadata.tables["sighting"]
# Keys per sighting upsert: far below the bound-parameter limits of SQLite and PostgreSQL.
KEYS_PER_STATEMENT = 5000
DEFAULT_RULES = StoryRules()


def entries_to_rows(
    entries: Sequence[ParsedEntry],
    *,
    feed_id: int,
    now: datetime,
    tracking: frozenset[str] = frozenset(),
) -> list[dict[str, Any]]:
    """Article rows for ``entries``, keyed, without repeats of one key within the batch."""
    return _keyed_rows(entries, feed_id=feed_id, now=now, tracking=tracking)[0]


def _keyed_rows(
    entries: Sequence[ParsedEntry],
    *,
    feed_id: int,
    now: datetime,
    tracking: frozenset[str],
    keys: Sequence[ArticleKey] | None = None,
    languages: Sequence[str] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """entries_to_rows, and the position in ``entries`` of the entry each key's row came from."""
    rows: dict[str, dict[str, Any]] = {}
    positions: dict[str, int] = {}
    if keys is None:
        keys = article_keys(entries, feed_id=feed_id, tracking=tracking)
    for position, (entry, key) in enumerate(zip(entries, keys, strict=True)):
        if key.key_hash in rows:
            continue
        positions[key.key_hash] = position
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
            "detected_language": (
                languages[position] if languages is not None else detect_entry_language(entry)
            ),
            "published_at": entry.published_at,
            "first_seen_at": now,
            "content_hash": key.content_hash,
        }
    return list(rows.values()), positions


def save_new_articles(
    session: Session,
    *,
    feed_id: int,
    entries: Sequence[ParsedEntry],
    now: datetime,
    rules: StoryRules = DEFAULT_RULES,
    sketches: Sequence[Sketch | None] | None = None,
    keys: Sequence[ArticleKey] | None = None,
    languages: Sequence[str] | None = None,
) -> list[Article]:
    """Store the entries: insert the new, update the edited, record sightings, assign stories.

    Returns only the new articles. An edited article (same key, other title or text) is updated
    in place, its previous title kept, and is not returned: an edit is not news. A key whose
    article was pruned (a tombstone) is ignored, so an old item a feed lists again stays gone.
    ``sketches``, aligned with ``entries``, are their story sketches computed beforehand
    (sketch_entries, perhaps in another process); without them the new articles' are computed
    here, with the same result. ``keys``, also aligned, are their ``article_keys`` computed
    beforehand in the same way, and ``languages`` their detected languages.
    """
    if sketches is not None and len(sketches) != len(entries):
        raise ValueError(f"store: {len(sketches)} sketches for {len(entries)} entries")
    if keys is not None and len(keys) != len(entries):
        raise ValueError(f"store: {len(keys)} keys for {len(entries)} entries")
    rows, positions = _keyed_rows(
        entries,
        feed_id=feed_id,
        now=now,
        tracking=rules.tracking_parameters,
        keys=keys,
        languages=languages,
    )
    rows = _without_tombstones(session, rows)
    if not rows:
        return []
    lock_stories(session)
    existing = _existing(session, [row["key_hash"] for row in rows])
    _update_edited(session, rows, existing, now=now)
    fresh = _without_relabelled(
        session, [row for row in rows if row["key_hash"] not in existing], feed_id=feed_id
    )
    new_ids: list[int] = []
    if fresh:
        # One statement executed with many parameter sets, on the Core table: SQLAlchemy
        # compiles it once and caches it, where a fresh multi-row VALUES was compiled each call.
        insert_articles = (
            dialect_insert(session, ARTICLES)
            .on_conflict_do_nothing(index_elements=["key_hash"])
            .returning(ARTICLES.c.id)
        )
        new_ids = list(session.execute(insert_articles, fresh).scalars())
    key_hashes = [row["key_hash"] for row in rows]
    _record_sightings(session, feed_id=feed_id, key_hashes=key_hashes, now=now)
    articles: list[Article] = []
    if new_ids:
        found = session.exec(select(Article).where(col(Article.id).in_(new_ids))).all()
        articles = sorted(found, key=lambda article: article.id or 0)
        if sketches is None:
            boilerplate = repeated_paragraphs(entry.content or entry.summary for entry in entries)
            assign_stories(session, articles, now=now, rules=rules, boilerplate=boilerplate)
        else:
            assign_stories(
                session,
                articles,
                now=now,
                rules=rules,
                sketches=[sketches[positions[article.key_hash]] for article in articles],
            )
    refresh_story_counts(session, key_hashes=key_hashes, now=now)
    return articles


def _without_tombstones(session: Session, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not rows:
        return rows
    pruned = set(
        session.exec(
            select(Tombstone.key_hash).where(
                col(Tombstone.key_hash).in_([row["key_hash"] for row in rows])
            )
        )
    )
    return [row for row in rows if row["key_hash"] not in pruned]


@dataclass(frozen=True, slots=True)
class _Stored:
    id: int
    title: str
    content_hash: str
    previous_title: str | None


def _existing(session: Session, key_hashes: list[str]) -> dict[str, _Stored]:
    """The stored articles of these keys, by key."""
    rows = session.execute(
        sa_select(
            ARTICLES.c.key_hash,
            ARTICLES.c.id,
            ARTICLES.c.title,
            ARTICLES.c.content_hash,
            ARTICLES.c.previous_title,
        ).where(ARTICLES.c.key_hash.in_(key_hashes))
    ).all()
    return {key: _Stored(id_, title, hash_, previous) for key, id_, title, hash_, previous in rows}


def _update_edited(
    session: Session, rows: list[dict[str, Any]], existing: dict[str, _Stored], *, now: datetime
) -> None:
    """Write the latest title and text of articles whose text changed; keep the old title."""
    edits = []
    retitled: dict[int, str] = {}
    for row in rows:
        stored = existing.get(row["key_hash"])
        if stored is None or stored.content_hash == row["content_hash"]:
            continue
        title_changed = stored.title != row["title"]
        edits.append(
            {
                "b_id": stored.id,
                "title": row["title"],
                "summary": row["summary"],
                "content": row["content"],
                "author": row["author"],
                "content_hash": row["content_hash"],
                "previous_title": stored.title if title_changed else stored.previous_title,
                "updated_at": now,
            }
        )
        if title_changed:
            retitled[stored.id] = row["title"]
    if edits:
        session.execute(
            update(ARTICLES)
            .where(ARTICLES.c.id == bindparam("b_id"))
            .values({name: bindparam(name) for name in edits[0] if name != "b_id"}),
            edits,
        )
        retitle_stories(session, retitled)


def _without_relabelled(
    session: Session, rows: list[dict[str, Any]], *, feed_id: int
) -> list[dict[str, Any]]:
    """Drop link-less rows whose GUID is new but whose text this feed already gave us.

    Some feeds mint a new GUID on every fetch; without a link the GUID is their key, and each
    fetch would otherwise bring the same item back as new.
    """
    guid_keyed = [row for row in rows if row["canonical_url"] is None and row["guid"]]
    if not guid_keyed:
        return rows
    known = set(
        session.exec(
            select(Article.content_hash).where(
                Article.feed_id == feed_id,
                col(Article.canonical_url).is_(None),
                col(Article.content_hash).in_([row["content_hash"] for row in guid_keyed]),
            )
        )
    )
    return [
        row
        for row in rows
        if not (row["canonical_url"] is None and row["guid"] and row["content_hash"] in known)
    ]


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
