"""Tag articles with the topics they match, retag after a query changes, and backtest queries."""

from __future__ import annotations

import heapq
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import and_, delete, or_, update
from sqlmodel import Session, col, select

from monitor.db import dialect_insert
from monitor.ingest.prepare import TopicSet, topic_set
from monitor.models import Article, Feed, Match, Topic
from monitor.text import article_text
from monitor.topics.matcher import ArticleView, Matcher, TopicHit, TopicRule
from monitor.topics.query import Node, parse_query

log = logging.getLogger(__name__)
# Articles read per query while retagging or backtesting: bounded memory on any archive.
SCAN_BATCH = 500


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


def _articles_since(
    session: Session, since: datetime, before: tuple[datetime, int] | None = None
) -> Iterator[list[tuple[Article, Feed]]]:
    """Stored articles first seen since ``since`` (and strictly older than ``before``, a
    ``(first_seen_at, id)`` pair), in id order, in batches."""
    window = [col(Article.first_seen_at) >= since]
    if before is not None:
        at, article_id = before
        window.append(
            or_(
                col(Article.first_seen_at) < at,
                and_(col(Article.first_seen_at) == at, col(Article.id) < article_id),
            )
        )
    last_id = 0
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
    for batch in _articles_since(session, since):
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
    """Run ``query`` over stored articles first seen since ``since``; nothing is saved.

    ``before``, a ``(first_seen_at, id)`` pair, keeps only the articles strictly older than it
    (a page cursor, or the end of a date range): counts and samples are of those alone.
    """
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
