"""Pages of search and backtest results: filters as query clauses, cursors, every match in turn,
and the record of a match that exports (CSV, JSON) write. The CLI, the API and the web pages
all page through here, over ``tagging.backtest``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import Engine
from sqlmodel import Session

from monitor.cursor import Position, decode_cursor, encode_cursor
from monitor.text import fold
from monitor.topics.query import And, Node, Source
from monitor.topics.tagging import Backtest, Sample, backtest
from monitor.untrusted import strip_controls, web_url

# Matches read per backtest while an export walks every page: bounded memory on any archive.
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


def every_match(
    engine: Engine,
    query: Node,
    *,
    since: datetime,
    timezone: str = "UTC",
    before: Position | None = None,
    page_size: int = EXPORT_PAGE,
) -> Iterator[Sample]:
    """Every match older than ``before``, newest first, read a page at a time, each page in a
    session of its own: a streamed export holds no session (nor a lock) between its pages."""
    position = before
    while True:
        with Session(engine) as session:
            page = result_page(
                session, query, since=since, limit=page_size, timezone=timezone, before=position
            )
        yield from page.result.samples
        if page.next_cursor is None:
            return
        position = decode_cursor(page.next_cursor)


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
