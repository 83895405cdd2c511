"""Retention: remove old articles, keep their keys as tombstones so they do not come back;
and deleting a feed, its articles kept or pruned."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, or_, select
from sqlmodel import Session, SQLModel

from monitor.db import dialect_insert
from monitor.ingest.stories import prune_bands, recount_stories
from monitor.models import Feed, FeedState
from monitor.topics.index import remove_from_index

log = logging.getLogger(__name__)
ARTICLES = SQLModel.metadata.tables["article"]
MATCHES = SQLModel.metadata.tables["match"]
# Rows that refer to an article and go with it. Its story index rows (story_band) go by age
# first (prune_bands); they are looked for by article only when retention is shorter than the
# story window, because story_band has no index on article_id (it would cost every insert).
_DEPENDENTS = ("sighting", "match", "deliveryitem", "article_page", "review_event", "review")
# Articles per transaction: a long prune does not hold the write lock for minutes at a time.
CHUNK = 1000


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What a prune removed."""

    articles: int = 0
    matched: int = 0
    stories: int = 0
    bands: int = 0


@dataclass(frozen=True, slots=True)
class RetentionRules:
    """How long articles stay: all of them, and those a topic matched."""

    older_than: timedelta = timedelta(days=90)
    matched_older_than: timedelta = timedelta(days=365)
    story_window: timedelta = timedelta(days=7)


def prune_archive(engine: Engine, rules: RetentionRules, *, now: datetime) -> PruneResult:
    """Remove articles first seen before the retention limits, in chunks of ``CHUNK``.

    Each removed article leaves a tombstone of its key; its sightings, matches, index rows and
    digest items go with it; stories are recounted, re-led, or removed when left empty.
    """
    articles = matched = stories = 0
    with Session(engine) as session, session.begin():
        bands = prune_bands(session, before=now - rules.story_window)
    # Only articles younger than the window can still have index rows.
    with_bands = rules.older_than < rules.story_window
    while True:
        with Session(engine) as session, session.begin():
            doomed = _doomed(session, rules, now=now)
            if not doomed:
                break
            counts = _remove(session, doomed, now=now, with_bands=with_bands)
        articles += len(doomed)
        matched += counts[0]
        stories += counts[1]
    result = PruneResult(articles, matched, stories, bands)
    log.info(
        "pruned articles=%d matched=%d stories=%d bands=%d",
        result.articles,
        result.matched,
        result.stories,
        result.bands,
    )
    return result


def _doomed(
    session: Session, rules: RetentionRules, *, now: datetime
) -> list[tuple[int, str, int | None, bool]]:
    """(id, key, story, matched) of the next chunk of articles past their retention."""
    cutoff = now - rules.older_than
    matched_cutoff = now - rules.matched_older_than
    is_matched = ARTICLES.c.id.in_(select(MATCHES.c.article_id))
    rows = session.execute(
        select(ARTICLES.c.id, ARTICLES.c.key_hash, ARTICLES.c.story_id, is_matched)
        .where(
            ARTICLES.c.first_seen_at < cutoff,
            or_(~is_matched, and_(is_matched, ARTICLES.c.first_seen_at < matched_cutoff)),
        )
        .order_by(ARTICLES.c.id)
        .limit(CHUNK)
    ).all()
    return [(int(i), str(k), s, bool(m)) for i, k, s, m in rows]


def _remove(
    session: Session,
    doomed: list[tuple[int, str, int | None, bool]],
    *,
    now: datetime,
    with_bands: bool,
) -> tuple[int, int]:
    ids = [article_id for article_id, _key, _story, _matched in doomed]
    tombstones = SQLModel.metadata.tables["tombstone"]
    session.execute(
        dialect_insert(session, tombstones).on_conflict_do_nothing(index_elements=["key_hash"]),
        [{"key_hash": key, "pruned_at": now} for _id, key, _story, _matched in doomed],
    )
    for name in _DEPENDENTS + (("story_band",) if with_bands else ()):
        table = SQLModel.metadata.tables[name]
        session.execute(table.delete().where(table.c.article_id.in_(ids)))
    remove_from_index(session.connection(), ids)
    session.execute(ARTICLES.delete().where(ARTICLES.c.id.in_(ids)))
    story_ids = sorted({story for _id, _key, story, _matched in doomed if story is not None})
    recount_stories(session, story_ids)
    return sum(1 for *_rest, matched in doomed if matched), len(story_ids)


@dataclass(frozen=True, slots=True)
class FeedRemoval:
    """What deleting a feed did to its articles and to the feed's row."""

    moved: int  # articles other feeds carried too: now theirs
    kept: int  # articles only it carried, kept (its row stays, marked removed)
    pruned: int  # articles only it carried, removed (their keys kept as tombstones)
    row_deleted: bool


def remove_feed(session: Session, feed: Feed, *, keep_articles: bool, now: datetime) -> FeedRemoval:
    """Delete ``feed``: articles other feeds carried too become theirs; the rest are kept (the
    feed's row stays, removed, so they keep their source) or pruned as retention prunes them.

    Pruned articles leave tombstones, so adding the feed again does not bring its old items
    back as news (nor send them twice).
    """
    feed_id = feed.id or 0
    sightings = SQLModel.metadata.tables["sighting"]
    moved = _move_shared_articles(session, feed_id)
    only = session.execute(
        select(ARTICLES.c.id, ARTICLES.c.key_hash, ARTICLES.c.story_id,
               ARTICLES.c.id.in_(select(MATCHES.c.article_id)))
        .where(ARTICLES.c.feed_id == feed_id)
        .order_by(ARTICLES.c.id)
    ).all()  # fmt: skip
    doomed = [(int(i), str(k), s, bool(m)) for i, k, s, m in only]
    pruned = 0
    if not keep_articles:
        for start in range(0, len(doomed), CHUNK):
            _remove(session, doomed[start : start + CHUNK], now=now, with_bands=True)
        pruned = len(doomed)
    session.execute(sightings.delete().where(sightings.c.feed_id == feed_id))
    kept = len(doomed) - pruned
    if kept:
        feed.state, feed.lease_owner, feed.lease_until = FeedState.REMOVED, None, None
        feed.disabled_reason = f"deleted at {now:%Y-%m-%d %H:%M} UTC, its articles kept"
        session.add(feed)
    else:
        session.delete(feed)
    session.flush()
    log.info("feed removed feed_id=%s feed_url=%s moved=%d kept=%d pruned=%d",
             feed_id, feed.url, moved, kept, pruned)  # fmt: skip
    return FeedRemoval(moved, kept, pruned, row_deleted=not kept)


def _move_shared_articles(session: Session, feed_id: int) -> int:
    """Give the articles ``feed_id`` first carried, and another feed carried too, to the
    other feed that saw them first; return how many."""
    sightings = SQLModel.metadata.tables["sighting"]
    rows = session.execute(
        select(sightings.c.article_id, sightings.c.feed_id)
        .join(ARTICLES, ARTICLES.c.id == sightings.c.article_id)
        .where(ARTICLES.c.feed_id == feed_id, sightings.c.feed_id != feed_id)
        .order_by(sightings.c.article_id, sightings.c.first_seen_at, sightings.c.feed_id)
    ).all()
    owner: dict[int, int] = {}
    for article_id, other in rows:
        owner.setdefault(int(article_id), int(other))
    for article_id, other in owner.items():
        session.execute(ARTICLES.update().where(ARTICLES.c.id == article_id).values(feed_id=other))
    return len(owner)
