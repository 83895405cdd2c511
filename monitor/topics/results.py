"""Pages of search and backtest results: filters as query clauses, cursors, every match in turn,
and the record of a match that exports (CSV, JSON) write. The CLI, the API and the web pages
all page through here, over ``tagging.backtest``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import ColumnElement, Engine, and_, or_
from sqlmodel import Session, col, select

from monitor.cursor import Position, decode_cursor, encode_cursor
from monitor.models import Article, Feed
from monitor.text import fold
from monitor.topics.matcher import Matcher, TopicRule
from monitor.topics.query import And, Node, Source
from monitor.topics.tagging import Backtest, Sample, article_view, backtest
from monitor.untrusted import strip_controls, web_url

# Articles read at a time while an export walks the window: bounded memory on any archive.
EXPORT_PAGE = 1000
# The columns of a CSV export, in order; JSON records carry the same keys.
COLUMNS = (
    "first_seen_at",
    "id",
    "title",
    "url",
    "feed",
    "site",
    "language",
    "published_at",
    "backlog",
    "terms",
    "snippet",
)


def source_clause(name: str, value: str) -> Source:
    """The ``site:``, ``feed:`` or ``lang:`` clause a filter field stands for."""
    return Source(name, " ".join(fold(value).split()))


def filtered_query(
    query: Node | None,
    *,
    topic: Node | None = None,
    site: str = "",
    feed: str = "",
    language: str = "",
) -> Node | None:
    """``query`` ANDed with the filters (a topic's query, site, feed, language); None when
    there is neither a query nor a filter."""
    clauses: list[Node] = [node for node in (query, topic) if node is not None]
    for name, value in (("site", site), ("feed", feed), ("lang", language)):
        if value.strip():
            clauses.append(source_clause(name, value))
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else And(tuple(clauses))


def later_bound(before: Position | None, cursor: str | None) -> Position | None:
    """The tighter of a range's end and a page cursor (a cursor from another range may be
    later than its end)."""
    position = decode_cursor(cursor) if cursor else None
    bounds = [bound for bound in (before, position) if bound is not None]
    return min(bounds) if bounds else None


@dataclass(frozen=True, slots=True)
class ResultPage:
    """One page of matches, newest first, and the cursor of the next (None: this is the last)."""

    result: Backtest
    next_cursor: str | None


def result_page(
    session: Session,
    query: Node,
    *,
    since: datetime,
    limit: int,
    timezone: str = "UTC",
    before: Position | None = None,
) -> ResultPage:
    """The newest ``limit`` matches older than ``before``, with the counts of all of those."""
    result = backtest(session, query, since=since, limit=limit, timezone=timezone, before=before)
    if not result.samples or result.total <= len(result.samples):
        return ResultPage(result, None)
    last = result.samples[-1].article
    return ResultPage(result, encode_cursor(last.first_seen_at, last.id or 0))


def _older_than(position: Position | None) -> list[ColumnElement[bool]]:
    if position is None:
        return []
    at, article_id = position
    return [
        or_(
            col(Article.first_seen_at) < at,
            and_(col(Article.first_seen_at) == at, col(Article.id) < article_id),
        )
    ]


def every_match(
    engine: Engine,
    query: Node,
    *,
    since: datetime,
    before: Position | None = None,
    batch_size: int = EXPORT_PAGE,
) -> Iterator[Sample]:
    """Every match older than ``before``, newest first: the articles of the window read once,
    newest first, a batch at a time, each batch in a session of its own (a streamed export
    holds no session, nor a lock, between batches), and matched as ``backtest`` matches them.

    One pass, where walking ``result_page`` would re-read (and re-count) the rest of the window
    for every page.
    """
    matcher = Matcher([TopicRule(0, "query", 0, query)])
    position = before
    while True:
        with Session(engine) as session:
            batch = session.exec(
                select(Article, Feed)
                .join(Feed, col(Feed.id) == Article.feed_id)
                .where(col(Article.first_seen_at) >= since, *_older_than(position))
                .order_by(col(Article.first_seen_at).desc(), col(Article.id).desc())
                .limit(batch_size)
            ).all()
        if not batch:
            return
        for article, feed in batch:
            hits = matcher.match(article_view(article, feed_title=feed.title, feed_url=feed.url))
            if hits:
                yield Sample(article, feed, hits[0])
        last = batch[-1][0]
        position = (last.first_seen_at, last.id or 0)


def sample_record(sample: Sample) -> dict[str, object]:
    """What an export says of one match (the keys of COLUMNS); feed text cleaned of controls."""
    article = sample.article
    return {
        "first_seen_at": article.first_seen_at,
        "id": article.id or 0,
        "title": strip_controls(article.title),
        "url": web_url(article.url),
        "feed": strip_controls(sample.feed.title or sample.feed.url),
        "site": (urlsplit(article.url).hostname or "") if web_url(article.url) else "",
        "language": article.detected_language or article.language,
        "published_at": article.published_at,
        "backlog": article.backlog,
        "terms": sorted(sample.hit.terms),
        "snippet": strip_controls(sample.hit.snippet.text),
    }


def record_row(record: dict[str, object]) -> list[object]:
    """A record as a CSV row in COLUMNS order (terms joined by spaces)."""
    row: list[object] = []
    for column in COLUMNS:
        value = record[column]
        if isinstance(value, list):
            value = " ".join(str(item) for item in value)
        elif isinstance(value, bool):
            value = "yes" if value else "no"
        row.append(value)
    return row
