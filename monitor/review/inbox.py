"""The alerts inbox: a topic's matched articles of a range of days with their review state,
filtered, in story order, a page at a time (keyset cursor), and as export rows.

The inbox holds every article the topic matches now, and every article someone reviewed for it
that it no longer matches (after a query change): those show as "no longer matches" with their
state and history. Items come in story order (a story's copies together, oldest story first),
backlog (archive items, no news) after the news.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, and_, case, cast, exists, func, literal, or_, tuple_
from sqlalchemy import select as sa_select
from sqlalchemy.sql import ColumnElement
from sqlmodel import Session, col, select

from monitor.errors import UsageError
from monitor.models import Article, Feed, Match, Review, ReviewState, Sighting, Story, Topic
from monitor.reports.build import day_bounds
from monitor.review.store import ReviewCounts, counts_of

# The widest range one inbox view covers: bounds the work of one request.
MAX_DAYS = 366
PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
# Exports read in chunks this big: each chunk sorts the filter's rows once.
EXPORT_CHUNK = 5000
_CURSOR = re.compile(r"^([01])\.(\d{1,10})\.(\d{1,10})$")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")
EXPORT_HEADER = (
    "article_id", "topic", "first_seen_at", "title", "url", "feed", "language", "story_id",
    "backlog", "matches", "state", "note", "updated_by", "updated_at",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class InboxFilter:
    """Which of a topic's articles an inbox view shows: local days ``first`` to ``last``
    (inclusive) in ``timezone``, and optionally one feed, one language, some states."""

    topic_id: int
    first: date
    last: date
    timezone: str = "UTC"
    feed_id: int | None = None
    language: str | None = None
    states: tuple[ReviewState, ...] = ()

    def bounds(self) -> tuple[datetime, datetime]:
        """The UTC start and end of the range."""
        zone = ZoneInfo(self.timezone)
        return day_bounds(self.first, zone)[0], day_bounds(self.last, zone)[1]


@dataclass(frozen=True, slots=True)
class InboxItem:
    """One article of the inbox, with its story, match (None: no longer matches) and review."""

    article: Article
    feed_title: str
    story: Story | None
    match: Match | None
    review: Review | None

    @property
    def state(self) -> ReviewState:
        """The review state (new when nobody changed it)."""
        return ReviewState(self.review.state) if self.review else ReviewState.NEW

    @property
    def language(self) -> str:
        """The detected language, else the declared one."""
        return self.article.detected_language or self.article.language

    @property
    def cursor(self) -> str:
        """The cursor that continues after this item."""
        return f"{int(self.article.backlog)}.{self.article.story_id or 0}.{self.article.id or 0}"


@dataclass(frozen=True, slots=True)
class InboxPage:
    """A page of items and the cursor of the next one (None: this is the last page)."""

    items: list[InboxItem]
    next_cursor: str | None
    counts: ReviewCounts = field(default_factory=ReviewCounts)


def check_range(first: date, last: date) -> None:
    """Refuse a range that ends before it starts or spans more than MAX_DAYS days."""
    if last < first:
        raise UsageError(f"inbox: the range ends ({last}) before it starts ({first})")
    if (last - first).days + 1 > MAX_DAYS:
        raise UsageError(f"inbox: at most {MAX_DAYS} days at once, not {(last - first).days + 1}")


def check_language(value: str) -> str:
    """A language tag (en, pt-BR), lower-cased; UsageError otherwise."""
    if not _LANGUAGE.match(value):
        raise UsageError(f"inbox: not a language tag: {value[:40]!r}")
    return value.lower()


def parse_cursor(cursor: str) -> tuple[int, int, int]:
    """The (backlog, story, article) position a cursor names; UsageError when malformed."""
    found = _CURSOR.match(cursor)
    if found is None:
        raise UsageError(f"inbox: not a cursor of this inbox: {cursor[:40]!r}")
    return int(found.group(1)), int(found.group(2)), int(found.group(3))


def _order_key() -> tuple[Any, ...]:
    return (
        cast(col(Article.backlog), Integer),
        func.coalesce(col(Article.story_id), 0),
        col(Article.id),
    )


def _language() -> ColumnElement[Any]:
    return case(
        (col(Article.detected_language) != "", func.lower(col(Article.detected_language))),
        else_=func.lower(col(Article.language)),
    )


def _conditions(spec: InboxFilter, *, with_states: bool = True) -> list[ColumnElement[bool]]:
    start, end = spec.bounds()
    where: list[ColumnElement[bool]] = [
        col(Article.first_seen_at) >= start,
        col(Article.first_seen_at) < end,
    ]
    if spec.feed_id is not None:
        carried = exists().where(
            col(Sighting.article_id) == col(Article.id), col(Sighting.feed_id) == spec.feed_id
        )
        where.append(or_(col(Article.feed_id) == spec.feed_id, carried))
    if spec.language:
        language = _language()
        where.append(or_(language == spec.language, language.like(spec.language + "-%")))
    if with_states and spec.states:
        state = func.coalesce(col(Review.state), literal(ReviewState.NEW.value))
        where.append(state.in_([s.value for s in spec.states]))
    return where


def _joined(statement: Any, topic_id: int) -> Any:
    """``statement`` over the topic's inbox: articles it matches now, or someone reviewed for
    it before, with their match and review (either may be missing)."""
    # Two IN subqueries rather than a UNION to join: PostgreSQL hashes each once, and keeps
    # doing so on tables it has no statistics for yet (a UNION join then took seconds).
    matched = select(Match.article_id).where(Match.topic_id == topic_id)
    reviewed = select(Review.article_id).where(Review.topic_id == topic_id)
    return (
        statement.select_from(Article)
        .outerjoin(
            Match, and_(col(Match.article_id) == col(Article.id), col(Match.topic_id) == topic_id)
        )
        .outerjoin(
            Review,
            and_(col(Review.article_id) == col(Article.id), col(Review.topic_id) == topic_id),
        )
        .where(or_(col(Article.id).in_(matched), col(Article.id).in_(reviewed)))
    )


def inbox_page(
    session: Session,
    spec: InboxFilter,
    *,
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
    with_counts: bool = True,
) -> InboxPage:
    """One page of the inbox after ``cursor`` (None: the first page), with the filter's counts
    (empty counts when ``with_counts`` is False)."""
    statement = _joined(sa_select(Article, col(Feed.title), Story, Match, Review), spec.topic_id)
    statement = statement.join(Feed, col(Feed.id) == col(Article.feed_id)).outerjoin(
        Story, col(Story.id) == col(Article.story_id)
    )
    statement = statement.where(*_conditions(spec))
    if cursor:
        statement = statement.where(tuple_(*_order_key()) > tuple_(*parse_cursor(cursor)))
    rows = session.execute(statement.order_by(*_order_key()).limit(limit + 1)).all()
    items = [InboxItem(a, t or "", s, m, r) for a, t, s, m, r in rows[:limit]]
    more = len(rows) > limit
    next_cursor = items[-1].cursor if more and items else None
    counts = inbox_counts(session, spec) if with_counts else ReviewCounts()
    return InboxPage(items, next_cursor, counts)


def inbox_counts(session: Session, spec: InboxFilter) -> ReviewCounts:
    """How many of the filter's articles (any state, backlog included) are in each state."""
    state = func.coalesce(col(Review.state), literal(ReviewState.NEW.value))
    statement = _joined(select(state, func.count()), spec.topic_id)
    statement = statement.where(*_conditions(spec, with_states=False)).group_by(state)
    return counts_of({str(name): int(n) for name, n in session.exec(statement)})


def inbox_languages(session: Session, spec: InboxFilter) -> list[str]:
    """The languages among the topic's articles of the range (for the filter's choices)."""
    language = _language()
    start, end = spec.bounds()
    statement = _joined(select(language).distinct(), spec.topic_id).where(
        col(Article.first_seen_at) >= start, col(Article.first_seen_at) < end, language != ""
    )
    return sorted(str(value) for value in session.exec(statement))


def iter_inbox(session: Session, spec: InboxFilter) -> Iterator[InboxItem]:
    """Every item of the filter, in inbox order, EXPORT_CHUNK at a time."""
    cursor: str | None = None
    while True:
        page = inbox_page(session, spec, cursor=cursor, limit=EXPORT_CHUNK, with_counts=False)
        yield from page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def export_row(item: InboxItem, topic: Topic) -> list[object]:
    """The export (CSV, JSON) columns of an item, as EXPORT_HEADER names them."""
    review = item.review
    return [
        item.article.id, topic.slug, _iso(item.article.first_seen_at), item.article.title,
        item.article.url, item.feed_title, item.language, item.article.story_id or "",
        "yes" if item.article.backlog else "no", "yes" if item.match else "no longer",
        item.state.value, review.note if review else "", review.updated_by if review else "",
        _iso(review.updated_at) if review and review.changes else "",
    ]  # fmt: skip


def export_dicts(items: Sequence[InboxItem], topic: Topic) -> list[dict[str, object]]:
    """The items as JSON objects with the export's columns."""
    return [dict(zip(EXPORT_HEADER, export_row(item, topic), strict=True)) for item in items]


def _iso(moment: datetime | None) -> str:
    return moment.isoformat().replace("+00:00", "Z") if moment else ""


def day_range(
    day: date | None, first: date | None, last: date | None, today: date
) -> tuple[date, date]:
    """The inbox's range from its parameters: one day, from/to (either open end taken as the
    other, or today), or today."""
    if day is not None:
        return day, day
    if first is None and last is None:
        return today, today
    start = first or last or today
    end = last or (today if first and first <= today else start)
    check_range(start, end)
    return start, end


def shift(day: date, days: int) -> date:
    """``day`` moved by ``days`` days."""
    return day + timedelta(days=days)
