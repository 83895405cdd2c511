"""Tag articles with the topics they match, retag after a query changes, and backtest queries."""

from __future__ import annotations

import heapq
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, and_, column, delete, func, or_, text, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from monitor.db import dialect_insert
from monitor.ingest.prepare import TopicSet, topic_set
from monitor.models import Article, Feed, Match, Topic
from monitor.text import article_text
from monitor.topics.index import FTS_TABLE, VECTOR_COLUMN
from monitor.topics.matcher import ArticleView, Matcher, TopicHit, TopicRule
from monitor.topics.plan import Plan, plan_query
from monitor.topics.query import Node, parse_query

log = logging.getLogger(__name__)
# Articles read per query while retagging or backtesting: bounded memory on any archive.
SCAN_BATCH = 500
# A retag logs how far it is after every this many candidates.
RETAG_PROGRESS = 10_000


@dataclass(frozen=True, slots=True)
class ArticleMatch:
    """A topic match for one article, ready to store."""

    article_id: int
    hit: TopicHit
    # The text it was made on: "feed", or "page" when the article's body was read too.
    text_source: str = "feed"


def text_source(article: Article) -> str:
    """Which text matching reads of an article: "page" once it has a body, else "feed"."""
    return "page" if article.body else "feed"


def topic_rule(topic: Topic) -> TopicRule:
    """The matcher's view of a stored topic (its query is valid: it was checked on saving)."""
    return TopicRule(topic.id or 0, topic.slug, topic.version, parse_query(topic.query))


def load_matcher(session: Session) -> Matcher:
    """Compile every enabled topic into one matcher."""
    topics = session.exec(select(Topic).where(col(Topic.enabled)).order_by(col(Topic.slug))).all()
    return Matcher(topic_rule(topic) for topic in topics)


def load_topic_set(session: Session) -> TopicSet:
    """Every enabled topic, as the plain values the prepare pool's workers compile."""
    topics = session.exec(select(Topic).where(col(Topic.enabled)).order_by(col(Topic.slug))).all()
    return topic_set(topics)


def article_view(article: Article, *, feed_title: str = "", feed_url: str = "") -> ArticleView:
    """What the matcher reads of a stored article."""
    return ArticleView(
        title=article.title,
        text=article_text(article.summary, article.content, article.body),
        author=article.author,
        url=article.url,
        feed_title=feed_title,
        feed_url=feed_url,
        # The detected language, else the declared one (monitor.ingest.language).
        language=article.detected_language or article.language,
    )


def tag_articles(
    matcher: Matcher, articles: Sequence[Article], *, feed_title: str = "", feed_url: str = ""
) -> list[ArticleMatch]:
    """The topics each of one feed's articles matches."""
    return [
        ArticleMatch(article.id or 0, hit, text_source(article))
        for article in articles
        for hit in matcher.match(article_view(article, feed_title=feed_title, feed_url=feed_url))
    ]


def _row(match: ArticleMatch, now: datetime) -> dict[str, object]:
    hit = match.hit
    return {
        "article_id": match.article_id,
        "topic_id": hit.topic_id,
        "topic_version": hit.version,
        "score": hit.score,
        "terms": list(hit.terms),
        "spans": [[span.field, span.start, span.end] for span in hit.spans],
        "snippet": hit.snippet.text,
        "snippet_spans": [list(pair) for pair in hit.snippet.highlights],
        "matched_at": now,
        "text_source": match.text_source,
    }


def save_matches(session: Session, matches: Sequence[ArticleMatch], *, now: datetime) -> int:
    """Store matches not stored yet; return how many were new."""
    if not matches:
        return 0
    statement = (
        dialect_insert(session, Match)
        .values([_row(match, now) for match in matches])
        .on_conflict_do_nothing(index_elements=["article_id", "topic_id"])
        .returning(col(Match.article_id))
    )
    return len(session.execute(statement).all())


def _window(since: datetime, before: tuple[datetime, int] | None = None) -> list[Any]:
    """Conditions on articles first seen since ``since`` and older than the ``before`` cursor
    (a first-seen time and an id: the last article of a previous page)."""
    seen, article_id = col(Article.first_seen_at), col(Article.id)
    conditions: list[Any] = [seen >= since]
    if before is not None:
        cursor_seen, cursor_id = before
        conditions.append(
            or_(seen < cursor_seen, and_(seen == cursor_seen, article_id < cursor_id))
        )
    return conditions


def _articles_since(
    session: Session, since: datetime, before: tuple[datetime, int] | None = None
) -> Iterator[list[tuple[Article, Feed]]]:
    """Stored articles first seen since ``since`` (and before ``before``), oldest first, in
    batches."""
    last_id = 0
    window = _window(since, before)
    while True:
        batch = session.exec(
            select(Article, Feed)
            .join(Feed, col(Feed.id) == Article.feed_id)
            .where(*window, col(Article.id) > last_id)
            .order_by(col(Article.id))
            .limit(SCAN_BATCH)
        ).all()
        if not batch:
            return
        yield list(batch)
        last_id = batch[-1][0].id or 0


def _window_size(session: Session, window: list[Any]) -> int:
    """How many articles the window holds (what a scan would have read)."""
    return int(session.execute(sa_select(func.count()).select_from(Article).where(*window))
               .scalar_one())  # fmt: skip


def _candidates(
    session: Session, plan: Plan, window: list[Any], *, newest_first: bool = True
) -> list[tuple[int, datetime]]:
    """(id, first seen) of the articles in the window the index says may match, newest first
    (by first-seen time, then id) or in id order."""
    if session.get_bind().dialect.name == "postgresql":
        found: Any = text(f"{VECTOR_COLUMN} @@ CAST(:plan AS tsquery)").bindparams(
            plan=plan.tsquery()
        )
    else:
        matching = text(f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :plan")
        found = col(Article.id).in_(
            matching.bindparams(plan=plan.fts5()).columns(column("rowid", Integer))
        )
    seen, article_id = col(Article.first_seen_at), col(Article.id)
    order = (seen.desc(), article_id.desc()) if newest_first else (article_id,)
    rows = session.execute(sa_select(article_id, seen).where(found, *window).order_by(*order))
    return [(int(id_), first_seen) for id_, first_seen in rows]


def _load(session: Session, ids: Sequence[int]) -> list[tuple[Article, Feed]]:
    """The articles with these ids and their feeds, in the order of ``ids``."""
    rows = session.exec(
        select(Article, Feed)
        .join(Feed, col(Feed.id) == Article.feed_id)
        .where(col(Article.id).in_(list(ids)))
    ).all()
    by_id = {article.id: (article, feed) for article, feed in rows}
    return [by_id[article_id] for article_id in ids if article_id in by_id]


def topics_to_retag(session: Session) -> list[Topic]:
    """Enabled topics whose stored matches predate their current query."""
    return list(
        session.exec(
            select(Topic).where(col(Topic.enabled), col(Topic.tagged_version) != Topic.version)
        ).all()
    )


def retag_topic(session: Session, topic: Topic, *, since: datetime, now: datetime) -> int:
    """Re-match articles first seen since ``since`` against the topic's current query.

    Matches of those articles made by older versions are replaced; older articles keep theirs,
    each recording the version that made it. Returns the number of articles now matched.
    """
    matcher = Matcher([topic_rule(topic)])
    window = select(Article.id).where(col(Article.first_seen_at) >= since)
    session.execute(
        delete(Match).where(col(Match.topic_id) == topic.id, col(Match.article_id).in_(window))
    )
    matched = 0
    for batch in _retag_batches(session, topic, since):
        matches = [
            ArticleMatch(article.id or 0, hit, text_source(article))
            for article, feed in batch
            for hit in matcher.match(
                article_view(article, feed_title=feed.title, feed_url=feed.url)
            )
        ]
        matched += save_matches(session, matches, now=now)
    session.execute(
        update(Topic).where(col(Topic.id) == topic.id).values(tagged_version=topic.version)
    )
    log.info("topic retagged topic=%s version=%d matched=%d", topic.slug, topic.version, matched)
    return matched


def _retag_batches(
    session: Session, topic: Topic, since: datetime
) -> Iterator[list[tuple[Article, Feed]]]:
    """The articles to match again: the index's candidates when the query has a plan (with a
    progress line every RETAG_PROGRESS of them), else every article of the window."""
    plan = plan_query(topic_rule(topic).query)
    if plan is None:
        log.info("topic retag scans topic=%s: its query has no indexed word", topic.slug)
        yield from _articles_since(session, since)
        return
    ids = [
        article_id
        for article_id, _ in _candidates(session, plan, _window(since), newest_first=False)
    ]
    for start in range(0, len(ids), SCAN_BATCH):
        yield _load(session, ids[start : start + SCAN_BATCH])
        done = min(start + SCAN_BATCH, len(ids))
        if done % RETAG_PROGRESS < SCAN_BATCH or done == len(ids):
            log.info("topic retag topic=%s candidates=%d of %d", topic.slug, done, len(ids))


@dataclass(frozen=True, slots=True)
class Sample:
    """An article a backtest or search found, with where the query matched."""

    article: Article
    feed: Feed
    hit: TopicHit


@dataclass(frozen=True, slots=True)
class Backtest:
    """What a query matches among stored articles: counts per day and the newest matches."""

    scanned: int
    per_day: dict[date, int]
    samples: list[Sample]
    # Whether the search index answered (False: the query has no indexed word, it scanned).
    planned: bool = False
    # Articles the index proposed, each verified by the matcher unless the plan was exact.
    candidates: int = 0

    @property
    def total(self) -> int:
        """How many articles matched."""
        return sum(self.per_day.values())


def backtest(
    session: Session,
    query: Node,
    *,
    since: datetime,
    limit: int,
    timezone: str = "UTC",
    before: tuple[datetime, int] | None = None,
) -> Backtest:
    """Run ``query`` over stored articles first seen since ``since`` (and older than the
    ``before`` cursor, a first-seen time and an id); nothing is saved.

    The search index proposes candidates (``monitor.topics.plan``) and the matcher verifies
    each; a query with no indexed word is scanned. Either way the result is the same.
    """
    plan = plan_query(query)
    if plan is None:
        log.info("backtest scans: the query has no indexed word query=%s", query)
        return _scan_backtest(session, query, since=since, limit=limit, timezone=timezone,
                              before=before)  # fmt: skip
    matcher = Matcher([TopicRule(0, "query", 0, query)])
    zone = ZoneInfo(timezone)
    window = _window(since, before)
    candidates = _candidates(session, plan, window)
    per_day: Counter[date] = Counter()
    if plan.exact:
        # The index answered the query itself: count without reading the articles.
        per_day.update(seen.astimezone(zone).date() for _, seen in candidates)
    samples: list[Sample] = []
    for start in range(0, len(candidates), SCAN_BATCH):
        if plan.exact and len(samples) >= limit:
            break
        # Newest first: with an exact plan only the shown articles are read (pages of ``limit``).
        size = max(limit - len(samples), 1) if plan.exact else SCAN_BATCH
        page = (
            candidates[start : start + size]
            if plan.exact
            else candidates[start : start + SCAN_BATCH]
        )
        for article, feed in _load(session, [article_id for article_id, _ in page]):
            hits = matcher.match(article_view(article, feed_title=feed.title, feed_url=feed.url))
            day = article.first_seen_at.astimezone(zone).date()
            if hits and not plan.exact:
                per_day[day] += 1
            elif not hits and plan.exact:
                per_day[day] -= 1  # never expected: the matcher has the last word
            if hits and len(samples) < limit:
                samples.append(Sample(article, feed, hits[0]))
    counted = {day: count for day, count in sorted(per_day.items()) if count > 0}
    return Backtest(_window_size(session, window), counted, samples, True, len(candidates))


def _scan_backtest(
    session: Session,
    query: Node,
    *,
    since: datetime,
    limit: int,
    timezone: str,
    before: tuple[datetime, int] | None,
) -> Backtest:
    """``backtest`` by reading every article of the window and matching it."""
    matcher = Matcher([TopicRule(0, "query", 0, query)])
    zone = ZoneInfo(timezone)
    per_day: Counter[date] = Counter()
    # Articles come in id order, which is not quite first-seen order (concurrent polls, imports):
    # keep the newest ``limit`` matches by first-seen time in a min-heap, so memory stays bounded.
    newest: list[tuple[datetime, int, Sample]] = []
    scanned = 0
    for batch in _articles_since(session, since, before):
        scanned += len(batch)
        for article, feed in batch:
            hits = matcher.match(article_view(article, feed_title=feed.title, feed_url=feed.url))
            if hits:
                per_day[article.first_seen_at.astimezone(zone).date()] += 1
                entry = (article.first_seen_at, article.id or 0, Sample(article, feed, hits[0]))
                if len(newest) < limit:
                    heapq.heappush(newest, entry)
                else:
                    heapq.heappushpop(newest, entry)
    samples = [sample for _, _, sample in sorted(newest, key=lambda e: e[:2], reverse=True)]
    return Backtest(scanned, dict(sorted(per_day.items())), samples)
