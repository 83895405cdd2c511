"""Which key each entry is stored under, given what the archive remembers of shared links.

Sits in ingest between keying (``canonical.article_keys``: pure, one document at a time) and
storing (``store.save_new_articles``), in the writer's transaction. A document alone cannot
show everything: a feed that once listed many items linking to one landing page may later
list one, and a link other feeds shared is no identity here either; so links found shared are
remembered (``SharedLink``) and entries linking there are keyed by their own identity. And an
article stored under such a link's key before (by an earlier poll, or before this rule) keeps
that key when the very same item comes back, so upgrading makes no copy of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import literal, union_all
from sqlmodel import Session, col, select

from monitor.db import dialect_insert
from monitor.ingest.canonical import ArticleKey
from monitor.models import Article, SharedLink, Tombstone
from monitor.sources.parse import ParsedEntry


@dataclass(frozen=True, slots=True)
class Known:
    """What the archive knows of a document's candidate keys, from one lookup."""

    # Links remembered as shared by different items.
    shared: frozenset[str]
    # Keys of pruned articles (tombstones): an item a feed lists again stays gone.
    pruned: frozenset[str]


def look_up(session: Session, keys: Sequence[ArticleKey]) -> Known:
    """Shared links and tombstones among every key the entries may be stored under.

    One statement for both, as the tombstone lookup alone used to be: a poll of a feed whose
    links are their articles' own costs no extra round trip.
    """
    links = {key.link_hash for key in keys if key.link_hash}
    candidates = {key.key_hash for key in keys} | links | {key.own_hash for key in keys}
    candidates.discard("")
    if not candidates:
        return Known(frozenset(), frozenset())
    statement = union_all(
        select(col(SharedLink.link_hash), literal(True)).where(
            col(SharedLink.link_hash).in_(links)
        ),
        select(col(Tombstone.key_hash), literal(False)).where(
            col(Tombstone.key_hash).in_(candidates)
        ),
    )
    found = session.execute(statement).all()
    return Known(
        frozenset(key for key, shared in found if shared),
        frozenset(key for key, shared in found if not shared),
    )


def resolve_keys(
    session: Session,
    entries: Sequence[ParsedEntry],
    keys: Sequence[ArticleKey],
    *,
    known: Known,
    feed_id: int,
    now: datetime,
) -> list[ArticleKey]:
    """The keys to store ``entries`` under, and the document's shared links remembered.

    A link key whose link is remembered as shared becomes the entry's own key; an own key whose
    link key already holds this very item (same GUID, or same title without GUIDs) becomes the
    link key again. Needs no statement of its own unless some link is no identity.
    """
    remembered = set(known.shared)
    _remember(session, keys, remembered, feed_id=feed_id, now=now)
    unkeyed = [
        index
        for index, key in enumerate(keys)
        if key.link_hash and (key.key_hash != key.link_hash or key.link_hash in remembered)
    ]
    if not unkeyed:
        return list(keys)
    stored = _stored_under(session, {keys[index].link_hash or "" for index in unkeyed})
    resolved = list(keys)
    for index in unkeyed:
        key = keys[index]
        held = stored.get(key.link_hash or "")
        if held is not None and _same_item(held, entries[index]):
            resolved[index] = replace(key, key_hash=key.link_hash or key.key_hash)
        else:
            resolved[index] = replace(key, key_hash=key.own_hash)
    return resolved


def _remember(
    session: Session,
    keys: Sequence[ArticleKey],
    remembered: set[str],
    *,
    feed_id: int,
    now: datetime,
) -> None:
    fresh = sorted(
        {key.link_hash for key in keys if key.link_hash and key.shared_link} - remembered
    )
    if fresh:
        session.execute(
            dialect_insert(session, SharedLink)
            .values([{"link_hash": h, "feed_id": feed_id, "first_seen_at": now} for h in fresh])
            .on_conflict_do_nothing(index_elements=["link_hash"])
        )
        remembered.update(fresh)


def _stored_under(session: Session, key_hashes: set[str]) -> dict[str, tuple[str | None, str]]:
    """(GUID, title) of the articles stored under these keys, by key."""
    rows = session.exec(
        select(Article.key_hash, Article.guid, Article.title).where(
            col(Article.key_hash).in_(key_hashes)
        )
    ).all()
    return {key: (guid, title) for key, guid, title in rows}


def _same_item(held: tuple[str | None, str], entry: ParsedEntry) -> bool:
    """Whether the article stored under a link is this entry: GUIDs decide, else titles."""
    guid, title = held
    if guid and entry.guid:
        return guid == entry.guid
    return title.strip() == entry.title.strip()
