"""Stories: near-duplicate articles across outlets (wire copies, syndication) joined as one.

An article's *signature* is a MinHash of the word 3-shingles of its title and lead text, with
boilerplate taken out first (newsletter footers, bylines, "Live updates:" prefixes, paragraphs a
feed repeats under every item). Signatures are cut into bands of ``ROWS`` values; each band's
hash is a row of ``story_band``, so the LSH index lives in the database: it survives restarts,
every worker shares it, and nothing grows in memory with the archive. Bands are taken of two
signatures: of the title and opening words (``PROBE_BANDS``), and of the whole lead
(``LEAD_BANDS``). Articles agreeing on any band within the story window are candidates; a
candidate joins only when the signatures say that at least ``threshold`` of the shorter lead's
shingles are in the other (see similarity).

Sketches (signature and band keys) depend on the text alone: ``sketch_entries`` computes those
of one feed's entries from plain strings, in any process, and ``assign_stories`` accepts them
precomputed.

An article whose lead text has too few words to tell copies from look-alikes (an empty summary,
a title alone) gets a story of its own and no bands.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    String,
    any_,
    bindparam,
    func,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, SQLModel, col

from monitor.db import dialect_insert
from monitor.ingest.sketch import (
    Sketch,
    StoryRules,
    signature_bytes,
    signature_from_bytes,
    similarity,
    sketch_of,
)
from monitor.models import Article, Story

STORIES = SQLModel.metadata.tables["story"]
BAND_ROWS = SQLModel.metadata.tables["story_band"]
SIGHTINGS = SQLModel.metadata.tables["sighting"]
ARTICLES = SQLModel.metadata.tables["article"]
# Any fixed 64-bit number: the PostgreSQL advisory lock that serialises story assignment.
_STORY_LOCK = 0x6D6F6E5F73746F72
# Band keys per lookup query: bounds the size of one query's list and of its result.
_KEYS_PER_QUERY = 2000


@dataclass(slots=True)
class _Indexed:
    """An article of the index as a lookup sees it."""

    article_id: int
    story_id: int
    signature: np.ndarray


@dataclass(slots=True)
class StoryAssignment:
    """What assigning a batch did: stories started, articles joined, and where time went."""

    new_stories: int = 0
    joined: int = 0
    story_ids: list[int] = field(default_factory=list)
    signature_seconds: float = 0.0
    lookup_seconds: float = 0.0
    insert_seconds: float = 0.0


def article_body(article: Article) -> str:
    """The text a story signature reads: the content, else the summary."""
    return article.content or article.summary


def lock_stories(session: Session) -> None:
    """Serialise story assignment between workers on PostgreSQL until the transaction ends.

    Without it two workers ingesting copies of one story at once would each find no copy (the
    other's rows are not committed yet) and start two stories. SQLite needs nothing: a write
    transaction there already holds the database's one write lock.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _STORY_LOCK})


def assign_stories(
    session: Session,
    articles: Sequence[Article],
    *,
    now: datetime,
    rules: StoryRules,
    boilerplate: frozenset[str] = frozenset(),
    sketches: Sequence[Sketch | None] | None = None,
) -> StoryAssignment:
    """Put each new article in the story of its nearest copy within the window, or a new one.

    ``sketches``, when given, are those of ``articles`` computed beforehand (sketch_entries):
    the result is the same as computing them here.
    """
    result = StoryAssignment()
    if not articles:
        return result
    started = time.perf_counter()
    if sketches is None:
        sketches = [
            sketch_of(a.title, article_body(a), rules=rules, boilerplate=boilerplate)
            for a in articles
        ]
    elif len(sketches) != len(articles):
        raise ValueError(f"stories: {len(sketches)} sketches for {len(articles)} articles")
    signatures = [sketch.signature if sketch else None for sketch in sketches]
    bands = [sketch.bands if sketch else [] for sketch in sketches]
    looked_up = time.perf_counter()
    index = _candidates(session, [b for per in bands for b in per], since=now - rules.window)
    # New stories get a provisional (negative) id until one INSERT creates them all.
    chosen: list[int] = []
    leads: list[Article] = []
    for article, signature, keys in zip(articles, signatures, bands, strict=True):
        story_id = _best_story(signature, keys, index, rules.threshold)
        if story_id is None:
            leads.append(article)
            story_id = -len(leads)
        chosen.append(story_id)
        if signature is not None:
            entry = _Indexed(article.id or 0, story_id, signature)
            for key in keys:
                # Later articles of the same batch may be copies of this one.
                index.setdefault(key, []).append(entry)
    inserting = time.perf_counter()
    real = _new_stories(session, leads)
    final = [real[-story_id - 1] if story_id < 0 else story_id for story_id in chosen]
    result.new_stories = len(leads)
    result.joined = len(articles) - len(leads)
    result.story_ids = final
    _write_assignments(session, articles, final, signatures, bands)
    result.signature_seconds = looked_up - started
    result.lookup_seconds = inserting - looked_up
    result.insert_seconds = time.perf_counter() - inserting
    return result


def _write_assignments(
    session: Session,
    articles: Sequence[Article],
    story_ids: list[int],
    signatures: list[np.ndarray | None],
    bands: list[list[int]],
) -> None:
    updates: list[dict[str, object]] = []
    band_rows: list[tuple[object, ...]] = []
    connection = session.connection()
    dialect = connection.dialect
    # Band rows go straight to the driver, their time converted once per article: through
    # SQLAlchemy's per-row parameter processing, 20 rows an article cost twice as much.
    processor = BAND_ROWS.c.first_seen_at.type.bind_processor(dialect)
    to_database: Callable[[Any], Any] = processor or (lambda value: value)
    for article, story_id, signature, keys in zip(
        articles, story_ids, signatures, bands, strict=True
    ):
        # Set as loaded, not as a change: the UPDATE below writes every article of the batch.
        stored = signature_bytes(signature) if signature is not None else None
        set_committed_value(article, "story_id", story_id)
        set_committed_value(article, "signature", stored)
        updates.append({"b_id": article.id, "b_story": story_id, "b_signature": stored})
        seen = to_database(article.first_seen_at)
        band_rows.extend((key, seen, article.id, story_id) for key in keys)
    session.execute(
        update(ARTICLES)
        .where(ARTICLES.c.id == bindparam("b_id"))
        .values(story_id=bindparam("b_story"), signature=bindparam("b_signature")),
        updates,
    )
    if band_rows:
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        connection.exec_driver_sql(
            "INSERT INTO story_band (band, first_seen_at, article_id, story_id) "
            f"VALUES ({mark}, {mark}, {mark}, {mark}) ON CONFLICT DO NOTHING",
            band_rows,
        )


def _candidates(session: Session, keys: list[int], *, since: datetime) -> dict[int, list[_Indexed]]:
    """Indexed articles of the window sharing any of ``keys``, by band key.

    Two small queries, not one join: the band rows of the keys (the primary key, band then
    time, bounds the search to the window), then the signatures of the few articles they name.
    Joined, the planner may read the whole article table once the archive is large.
    """
    found: dict[int, list[_Indexed]] = {}
    if not keys:
        return found
    bands: list[tuple[int, int, int]] = []
    unique = sorted(set(keys))
    for start in range(0, len(unique), _KEYS_PER_QUERY):
        rows = session.execute(
            select(BAND_ROWS.c.band, BAND_ROWS.c.article_id, BAND_ROWS.c.story_id).where(
                _in_list(session, BAND_ROWS.c.band, unique[start : start + _KEYS_PER_QUERY]),
                BAND_ROWS.c.first_seen_at >= since,
            )
        )
        bands.extend((band, article_id, story_id) for band, article_id, story_id in rows)
    signatures = _signatures(session, sorted({article_id for _b, article_id, _s in bands}))
    indexed: dict[int, _Indexed] = {}
    for band, article_id, story_id in bands:
        signature = signatures.get(article_id)
        if signature is None:
            continue
        entry = indexed.setdefault(article_id, _Indexed(article_id, story_id, signature))
        found.setdefault(band, []).append(entry)
    return found


def _signatures(session: Session, article_ids: list[int]) -> dict[int, np.ndarray]:
    """The stored signatures of these articles, by article."""
    signatures: dict[int, np.ndarray] = {}
    for start in range(0, len(article_ids), _KEYS_PER_QUERY):
        chunk = article_ids[start : start + _KEYS_PER_QUERY]
        for article_id, stored in session.execute(
            select(ARTICLES.c.id, ARTICLES.c.signature).where(
                _in_list(session, ARTICLES.c.id, chunk), ARTICLES.c.signature.is_not(None)
            )
        ):
            signatures[article_id] = signature_from_bytes(stored)
    return signatures


def _in_list(
    session: Session, column: ColumnElement[int], values: list[int]
) -> ColumnElement[bool]:
    """``column IN values`` with the values as one parameter: an array, or JSON on SQLite.

    One parameter keeps the SQL text the same whatever the number of values: one statement for
    the driver to prepare and the database to plan, where ``IN (?, ?, ...)`` made one of every
    length, and no bound-parameter limit to stay under.
    """
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam("values", values, type_=postgresql.ARRAY(BigInteger)))
    listed = func.json_each(bindparam("values", json.dumps(values), type_=String))
    return column.in_(select(literal_column("value")).select_from(listed))


def _best_story(
    signature: np.ndarray | None,
    keys: list[int],
    index: dict[int, list[_Indexed]],
    threshold: float,
) -> int | None:
    """The story of the most similar candidate at or above ``threshold`` (oldest on a tie)."""
    if signature is None:
        return None
    best: tuple[float, int] | None = None
    seen: set[int] = set()
    for key in keys:
        for candidate in index.get(key, ()):
            if candidate.article_id in seen:
                continue
            seen.add(candidate.article_id)
            score = similarity(signature, candidate.signature)
            if score < threshold:
                continue
            if best is None or (score, -candidate.story_id) > (best[0], -best[1]):
                best = (score, candidate.story_id)
    return best[1] if best else None


def _new_stories(session: Session, leads: list[Article]) -> list[int]:
    """Create a story led by each of ``leads``; their ids, in order."""
    if not leads:
        return []
    rows = [
        {
            "lead_article_id": article.id,
            "title": article.title,
            "first_seen_at": article.first_seen_at,
            "last_seen_at": article.first_seen_at,
            "article_count": 1,
            "outlet_count": 1,
        }
        for article in leads
    ]
    inserted = session.execute(
        STORIES.insert().returning(STORIES.c.id, sort_by_parameter_order=True), rows
    )
    return [int(story_id) for story_id in inserted.scalars()]


def refresh_story_counts(session: Session, *, key_hashes: Sequence[str], now: datetime) -> None:
    """Recount articles and distinct outlets of the stories of these articles; mark them seen."""
    for start in range(0, len(key_hashes), 5000):
        # The stories first, then an UPDATE of those ids: given the subquery instead,
        # PostgreSQL scanned the whole story table, and the recount grew with the archive.
        touched = session.execute(
            select(col(Article.story_id))
            .where(
                col(Article.key_hash).in_(key_hashes[start : start + 5000]),
                col(Article.story_id).is_not(None),
            )
            .distinct()
        ).scalars()
        story_ids = sorted(touched)
        if story_ids:
            _recount(session, story_ids, last_seen_at=now)


def recount_stories(session: Session, story_ids: Sequence[int]) -> None:
    """Recount articles and outlets of these stories, lead them by their first remaining
    article, and delete those left without any article (after a prune)."""
    for start in range(0, len(story_ids), 5000):
        chunk = list(story_ids[start : start + 5000])
        member = ARTICLES.alias("member")
        first = (
            select(func.min(member.c.id)).where(member.c.story_id == STORIES.c.id).scalar_subquery()
        )
        session.execute(
            update(STORIES).where(STORIES.c.id.in_(chunk)).values(lead_article_id=first)
        )
        lead = ARTICLES.alias("lead")
        title = select(lead.c.title).where(lead.c.id == STORIES.c.lead_article_id).scalar_subquery()
        session.execute(
            update(STORIES)
            .where(STORIES.c.id.in_(chunk), STORIES.c.lead_article_id.is_not(None))
            .values(title=title)
        )
        _recount(session, chunk)
        session.execute(
            STORIES.delete().where(STORIES.c.id.in_(chunk), STORIES.c.lead_article_id.is_(None))
        )


def _recount(
    session: Session, story_ids: list[int], *, last_seen_at: datetime | None = None
) -> None:
    """Count the articles and distinct outlets of these stories, in one grouped query, and
    write them by id (and ``last_seen_at`` when given); stories left without articles are
    not touched.

    As correlated subqueries of the UPDATE, PostgreSQL counted each story's outlets by a hash
    join over the whole sighting table (a scan per story, growing with the archive); grouped
    over the listed stories' articles, both counts come from the indexes.
    """
    member = ARTICLES.alias("member")
    counts = session.execute(
        select(
            member.c.story_id,
            func.count(func.distinct(member.c.id)),
            func.count(func.distinct(SIGHTINGS.c.feed_id)),
        )
        .select_from(member.outerjoin(SIGHTINGS, SIGHTINGS.c.article_id == member.c.id))
        .where(member.c.story_id.in_(story_ids))
        .group_by(member.c.story_id)
    ).all()
    rows = [
        {"s_id": story_id, "s_articles": articles, "s_outlets": outlets}
        for story_id, articles, outlets in counts
    ]
    if not rows:
        return
    seen = {} if last_seen_at is None else {"last_seen_at": last_seen_at}
    session.execute(
        update(STORIES)
        .where(STORIES.c.id == bindparam("s_id"))
        .values(article_count=bindparam("s_articles"), outlet_count=bindparam("s_outlets"), **seen),
        rows,
    )


def retitle_stories(session: Session, titles: dict[int, str]) -> None:
    """Keep each story's title that of its lead article after the lead was edited."""
    if titles:
        session.execute(
            update(STORIES)
            .where(STORIES.c.lead_article_id == bindparam("b_id"))
            .values(title=bindparam("b_title")),
            [{"b_id": article_id, "b_title": title} for article_id, title in titles.items()],
        )


def story_of(session: Session, article_id: int) -> Story | None:
    """The story an article belongs to, if any."""
    article = session.get(Article, article_id)
    if article is None or article.story_id is None:
        return None
    return session.get(Story, article.story_id)


def prune_bands(session: Session, *, before: datetime) -> int:
    """Drop index rows older than ``before``: lookups never reach past the story window."""
    result = session.execute(BAND_ROWS.delete().where(BAND_ROWS.c.first_seen_at < before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def resketch_article(
    session: Session,
    *,
    article_id: int,
    sketch: Sketch | None,
    first_bands: Sequence[int],
    now: datetime,
    rules: StoryRules,
    copy_of: int | None = None,
) -> int | None:
    """Give an article the sketch of its fuller text (its page's body); return its story.

    Its signature becomes the new one and its new bands join the index, so later copies find
    it by its body. An article alone in its story joins the story of a copy: ``copy_of`` (an
    article its page names as the same, by its canonical link) or the nearest candidate of the
    new sketch; the index rows it was first stored with (``first_bands``) follow it. The story
    it leaves is emptied, not deleted: an index row not found again may still name it.
    """
    lock_stories(session)
    row = session.execute(
        select(ARTICLES.c.story_id, ARTICLES.c.first_seen_at).where(ARTICLES.c.id == article_id)
    ).first()
    if row is None:
        return None
    story_id, first_seen = row
    target = story_id
    if story_id is not None and _members(session, story_id) == 1:
        target = (
            _story_to_join(session, article_id, sketch, now=now, rules=rules, copy_of=copy_of)
            or story_id
        )
    values: dict[str, object] = {}
    if sketch is not None:
        values["signature"] = signature_bytes(sketch.signature)
    if target != story_id:
        values["story_id"] = target
    if values:
        session.execute(update(ARTICLES).where(ARTICLES.c.id == article_id).values(**values))
    if target is None:
        return None
    if target != story_id:
        if first_bands:
            session.execute(
                update(BAND_ROWS)
                .where(
                    _in_list(session, BAND_ROWS.c.band, sorted(set(first_bands))),
                    BAND_ROWS.c.article_id == article_id,
                )
                .values(story_id=target)
            )
        session.execute(
            update(STORIES)
            .where(STORIES.c.id == story_id)
            .values(lead_article_id=None, article_count=0, outlet_count=0)
        )
        recount_stories(session, [target])
    if sketch is not None and sketch.bands:
        session.execute(
            dialect_insert(session, BAND_ROWS).on_conflict_do_nothing(),
            [
                {
                    "band": band,
                    "first_seen_at": first_seen,
                    "article_id": article_id,
                    "story_id": target,
                }
                for band in sorted(set(sketch.bands))
            ],
        )
    return int(target)


def _members(session: Session, story_id: int) -> int:
    counted = session.execute(
        select(func.count()).select_from(ARTICLES).where(ARTICLES.c.story_id == story_id)
    ).scalar()
    return int(counted or 0)


def _story_to_join(
    session: Session,
    article_id: int,
    sketch: Sketch | None,
    *,
    now: datetime,
    rules: StoryRules,
    copy_of: int | None,
) -> int | None:
    if copy_of is not None and copy_of != article_id:
        joined = session.execute(
            select(ARTICLES.c.story_id).where(ARTICLES.c.id == copy_of)
        ).scalar()
        if joined is not None:
            return int(joined)
    if sketch is None:
        return None
    index = _candidates(session, list(sketch.bands), since=now - rules.window)
    others = {
        key: [entry for entry in entries if entry.article_id != article_id]
        for key, entries in index.items()
    }
    return _best_story(sketch.signature, list(sketch.bands), others, rules.threshold)
