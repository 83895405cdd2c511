"""Store parsed entries as articles; only what is new comes back out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, literal, or_, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel, col, select

from monitor.db import dialect_insert
from monitor.ingest.backlog import DEFAULT_BACKLOG_AFTER, clamp_published, is_backlog
from monitor.ingest.canonical import ArticleKey, article_keys, fingerprint
from monitor.ingest.identity import look_up, resolve_keys
from monitor.ingest.language import detect_entry_language
from monitor.ingest.richness import StoredText, TextChange, text_change, text_richness
from monitor.ingest.sketch import Sketch, StoryRules, repeated_paragraphs
from monitor.ingest.stories import (
    assign_stories,
    lock_stories,
    refresh_story_counts,
    retitle_stories,
)
from monitor.models import Article, Match, Topic, UTCDateTime
from monitor.sources.parse import ParsedEntry
from monitor.topics.index import (
    PG_ARTICLES,
    VECTOR_COLUMN,
    article_words,
    index_words,
    reindex_articles,
    write_index,
)

ARTICLES = SQLModel.metadata.tables["article"]
SIGHTINGS = SQLModel.metadata.tables["sighting"]
# Keys per sighting upsert: far below the bound-parameter limits of SQLite and PostgreSQL.
KEYS_PER_STATEMENT = 5000
DEFAULT_RULES = StoryRules()


@dataclass(frozen=True, slots=True)
class Arrival:
    """When and how entries arrive: what decides whether a new article is backlog."""

    now: datetime
    # The feed's first successful poll: its listing is its archive.
    first_poll: bool = False
    backlog_after: timedelta = DEFAULT_BACKLOG_AFTER


def entries_to_rows(
    entries: Sequence[ParsedEntry],
    *,
    feed_id: int,
    now: datetime,
    tracking: frozenset[str] = frozenset(),
) -> list[dict[str, Any]]:
    """Article rows for ``entries``, keyed, without repeats of one key within the batch."""
    keys = article_keys(entries, feed_id=feed_id, tracking=tracking)
    return _keyed_rows(entries, feed_id=feed_id, arrival=Arrival(now), keys=keys)[0]


def _keyed_rows(
    entries: Sequence[ParsedEntry],
    *,
    feed_id: int,
    arrival: Arrival,
    keys: Sequence[ArticleKey],
    languages: Sequence[str] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """entries_to_rows, and the position in ``entries`` of the entry each key's row came from.

    The one place a new article's row is made, for the pool's keys and for keys made here: a
    date in the future is clamped to now, and the backlog flag is set (``monitor.ingest.backlog``).
    """
    rows: dict[str, dict[str, Any]] = {}
    positions: dict[str, int] = {}
    now = arrival.now
    for position, (entry, key) in enumerate(zip(entries, keys, strict=True)):
        if key.key_hash in rows:
            continue
        positions[key.key_hash] = position
        published = clamp_published(entry.published_at, now)
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
            "published_at": published,
            "first_seen_at": now,
            "content_hash": key.content_hash,
            "backlog": is_backlog(
                published, now=now, first_poll=arrival.first_poll, after=arrival.backlog_after
            ),
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
    site_url: str = "",
    first_poll: bool = False,
    backlog_after: timedelta = DEFAULT_BACKLOG_AFTER,
    languages: Sequence[str] | None = None,
) -> list[Article]:
    """Store the entries: insert the new, update the edited, record sightings, assign stories.

    Returns only the new articles. An edited article (same key, other title or text from its
    own feed, or a richer text from another: ``monitor.ingest.richness``) is updated in place,
    its previous title kept, and is not returned: an edit is not news. A key whose article was
    pruned (a tombstone) is ignored, so an old item a feed lists again stays gone.
    ``sketches``, aligned with ``entries``, are their story sketches computed beforehand
    (sketch_entries, perhaps in another process); without them the new articles' are computed
    here, with the same result. ``keys``, also aligned, are their ``article_keys`` computed
    beforehand in the same way (``site_url``, the channel's link, is then already in them);
    either way the archive's shared links have the last word (``monitor.ingest.identity``).
    ``languages``, also aligned, are their detected languages (detected here without them).
    A new article published more than ``backlog_after`` before ``now``, or undated on the
    feed's ``first_poll``, is stored as backlog (``monitor.ingest.backlog``).
    """
    if sketches is not None and len(sketches) != len(entries):
        raise ValueError(f"store: {len(sketches)} sketches for {len(entries)} entries")
    if keys is not None and len(keys) != len(entries):
        raise ValueError(f"store: {len(keys)} keys for {len(entries)} entries")
    if keys is None:
        keys = article_keys(
            entries, feed_id=feed_id, tracking=rules.tracking_parameters, site_url=site_url
        )
    known = look_up(session, keys)
    keys = resolve_keys(session, entries, keys, known=known, feed_id=feed_id, now=now)
    arrival = Arrival(now, first_poll=first_poll, backlog_after=backlog_after)
    rows, positions = _keyed_rows(
        entries, feed_id=feed_id, arrival=arrival, keys=keys, languages=languages
    )
    rows = [row for row in rows if row["key_hash"] not in known.pruned]
    if not rows:
        return []
    lock_stories(session)
    existing = _existing(session, [row["key_hash"] for row in rows])
    edited = _update_edited(session, rows, existing, feed_id=feed_id, now=now)
    # An edit or a richer text changes what matching reads: the index follows, in step.
    reindex_articles(session.connection(), edited)
    guid_keyed = {key.key_hash for key in keys if key.own_by_guid and key.key_hash == key.own_hash}
    fresh = _without_relabelled(
        session,
        [row for row in rows if row["key_hash"] not in existing],
        feed_id=feed_id,
        guid_keyed=guid_keyed,
    )
    new_ids: list[int] = []
    table = ARTICLES
    if fresh:
        # One statement executed with many parameter sets, on the Core table: SQLAlchemy
        # compiles it once and caches it, where a fresh multi-row VALUES was compiled each call.
        table = ARTICLES
        if session.get_bind().dialect.name == "postgresql":
            # PostgreSQL's index is a column of the row: written by the same INSERT.
            table = PG_ARTICLES
            fresh = [{**row, VECTOR_COLUMN: _vector(row)} for row in fresh]
        insert_articles = (
            dialect_insert(session, table)
            .on_conflict_do_nothing(index_elements=["key_hash"])
            .returning(table.c.id)
        )
        new_ids = list(session.execute(insert_articles, fresh).scalars())
    key_hashes = [row["key_hash"] for row in rows]
    _record_sightings(session, feed_id=feed_id, key_hashes=key_hashes, now=now)
    articles: list[Article] = []
    if new_ids:
        found = session.exec(select(Article).where(col(Article.id).in_(new_ids))).all()
        articles = sorted(found, key=lambda article: article.id or 0)
        if table is ARTICLES:  # SQLite: the FTS5 rows, in the same transaction
            write_index(session.connection(), [(a.id or 0, article_words(a)) for a in articles])
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


@dataclass(frozen=True, slots=True)
class _Stored:
    id: int
    title: str
    previous_title: str | None
    feed_id: int
    content_hash: str
    source_hash: str | None


def _vector(row: dict[str, Any]) -> str:
    """The index column of a new article's row (it has no body yet)."""
    words = index_words(
        title=row["title"], summary=row["summary"], content=row["content"], author=row["author"]
    )
    return words.vector()


def _existing(session: Session, key_hashes: list[str]) -> dict[str, _Stored]:
    """The stored articles of these keys, by key."""
    rows = session.execute(
        sa_select(
            ARTICLES.c.key_hash,
            ARTICLES.c.id,
            ARTICLES.c.title,
            ARTICLES.c.previous_title,
            ARTICLES.c.feed_id,
            ARTICLES.c.content_hash,
            ARTICLES.c.source_hash,
        ).where(ARTICLES.c.key_hash.in_(key_hashes))
    ).all()
    return {key: _Stored(*values) for key, *values in rows}


def _stored_richness(session: Session, ids: list[int]) -> dict[int, int]:
    """How much text these stored articles hold (``richness.text_richness``), by id."""
    if not ids:
        return {}
    rows = session.execute(
        sa_select(
            ARTICLES.c.id, func.length(ARTICLES.c.summary), func.length(ARTICLES.c.content)
        ).where(ARTICLES.c.id.in_(ids))
    ).all()
    return {id_: max(summary or 0, content or 0) for id_, summary, content in rows}


def _update_edited(
    session: Session,
    rows: list[dict[str, Any]],
    existing: dict[str, _Stored],
    *,
    feed_id: int,
    now: datetime,
) -> list[int]:
    """Write edits of stored articles as ``richness.text_change`` decides; keep the old title.
    Returns the ids of the articles whose text changed."""
    edits = []
    enriched = []
    retitled: dict[int, str] = {}
    # Only another feed's different text is weighed against the stored one: its length is read
    # for those alone (on PostgreSQL, reading a long text means fetching it from TOAST).
    richness = _stored_richness(
        session,
        [
            stored.id
            for row in rows
            if (stored := existing.get(row["key_hash"])) is not None
            and stored.feed_id != feed_id
            and stored.content_hash != row["content_hash"]
        ],
    )
    for row in rows:
        stored = existing.get(row["key_hash"])
        if stored is None:
            continue
        text = StoredText(
            stored.feed_id, stored.content_hash, stored.source_hash, richness.get(stored.id, 0)
        )
        change = text_change(
            text,
            feed_id=feed_id,
            content_hash=row["content_hash"],
            richness=text_richness(row["summary"], row["content"]),
        )
        if change is TextChange.ENRICH:
            enriched.append(
                {
                    "b_id": stored.id,
                    "summary": row["summary"],
                    "content": row["content"],
                    "content_hash": fingerprint(stored.title, row["content"] or row["summary"]),
                    "source_hash": stored.source_hash or stored.content_hash,
                    "updated_at": now,
                }
            )
        if change is not TextChange.EDIT:
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
                "source_hash": None,
                "previous_title": stored.title if title_changed else stored.previous_title,
                "updated_at": now,
            }
        )
        if title_changed:
            retitled[stored.id] = row["title"]
    for batch in (edits, enriched):
        if batch:
            session.execute(
                update(ARTICLES)
                .where(ARTICLES.c.id == bindparam("b_id"))
                .values({name: bindparam(name) for name in batch[0] if name != "b_id"}),
                batch,
            )
    if retitled:
        retitle_stories(session, retitled)
    return [int(row["b_id"]) for batch in (edits, enriched) for row in batch]


def _without_relabelled(
    session: Session, rows: list[dict[str, Any]], *, feed_id: int, guid_keyed: set[str]
) -> list[dict[str, Any]]:
    """Drop GUID-keyed rows whose GUID is new but whose item this feed already gave us.

    Some feeds mint a new GUID on every fetch. Without a link the GUID is their key, and each
    fetch would otherwise bring the same item back as new: a row is dropped when the feed gave
    the same text before. With a link that is no identity (a home page) the GUID is the key
    too: there the same text must also have come under the same link and date.
    """
    suspects = [row for row in rows if row["key_hash"] in guid_keyed]
    if not suspects:
        return rows
    known: dict[str, list[tuple[str | None, datetime | None]]] = {}
    for content_hash, canonical, published in session.execute(
        sa_select(ARTICLES.c.content_hash, ARTICLES.c.canonical_url, ARTICLES.c.published_at).where(
            ARTICLES.c.feed_id == feed_id,
            ARTICLES.c.content_hash.in_({row["content_hash"] for row in suspects}),
        )
    ):
        known.setdefault(content_hash, []).append((canonical, published))

    def relabelled(row: dict[str, Any]) -> bool:
        seen = known.get(row["content_hash"], [])
        if row["canonical_url"] is None:
            return any(canonical is None for canonical, _ in seen)
        return (row["canonical_url"], row["published_at"]) in seen

    drop = {row["key_hash"] for row in suspects if relabelled(row)}
    return [row for row in rows if row["key_hash"] not in drop]


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
    before: tuple[datetime, int] | None = None,
) -> list[tuple[Article, list[str]]]:
    """The newest articles first seen since ``since`` (of one topic, if given), with topic slugs;
    with ``before``, a ``(first_seen_at, id)`` page cursor, only those strictly older than it."""
    statement = select(Article)
    if since is not None:
        statement = statement.where(col(Article.first_seen_at) >= since)
    if before is not None:
        at, article_id = before
        statement = statement.where(
            or_(
                col(Article.first_seen_at) < at,
                and_(col(Article.first_seen_at) == at, col(Article.id) < article_id),
            )
        )
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
