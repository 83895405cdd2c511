"""Volumes over a chosen range, from the stored matches: a topic's days with their usual level,
several topics side by side, and which sources the matched articles came from.

The same counting rules as the daily report (``monitor.reports.build``): an article counts on
the local day it was first seen, backlog counts nowhere.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta

from sqlalchemy import func, not_
from sqlmodel import Session, col, select

from monitor.models import Article, Feed, Match, Topic
from monitor.reports.build import (
    DayCount,
    ReportRules,
    day_bounds,
    first_full_day,
    local_day,
    volume_series,
)

# A range longer than this is refused: a chart of more days has bars narrower than a pixel.
MAX_RANGE_DAYS = 366


@dataclass(frozen=True, slots=True)
class SourceCount:
    """A feed and how many distinct matched articles it first carried in the range."""

    feed_id: int
    title: str
    url: str
    articles: int


def days_between(first: date, last: date) -> list[date]:
    """Every day from ``first`` to ``last``, both included."""
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def topic_day_counts(
    session: Session, topic_ids: Sequence[int], *, first: date, last: date, rules: ReportRules
) -> dict[int, Counter[date]]:
    """Per topic, its matched articles per local day from ``first`` to ``last``."""
    zone = rules.zone
    start, end = day_bounds(first, zone)[0], day_bounds(last, zone)[1]
    counts: dict[int, Counter[date]] = defaultdict(Counter)
    if not topic_ids:
        return counts
    statement = (
        select(Match.topic_id, Article.first_seen_at)
        .join(Article, col(Article.id) == Match.article_id)
        .where(
            col(Match.topic_id).in_(list(topic_ids)),
            col(Article.first_seen_at) >= start,
            col(Article.first_seen_at) < end,
            not_(col(Article.backlog)),
        )
    )
    for topic_id, seen in session.exec(statement):
        counts[topic_id][local_day(seen, zone)] += 1
    return counts


def topic_volume(
    session: Session, topic: Topic, *, last: date, days: int, rules: ReportRules
) -> list[DayCount]:
    """The ``days`` days of ``topic`` ending with ``last``, each with its usual level and
    spike flag as the daily report works them out."""
    first = last - timedelta(days=days - 1 + rules.baseline_days)
    counts = topic_day_counts(session, [topic.id or 0], first=first, last=last, rules=rules)
    since = first_full_day(topic.created_at, rules.zone)
    return volume_series(
        counts.get(topic.id or 0, Counter()), last, replace(rules, chart_days=days), since=since
    )


def source_counts(
    session: Session,
    topic_ids: Sequence[int],
    *,
    first: date,
    last: date,
    rules: ReportRules,
    limit: int = 10,
) -> tuple[list[SourceCount], int]:
    """The ``limit`` feeds that first carried most of the articles any of the topics matched
    in the range, and the number of those articles (each counted once, for its first feed)."""
    if not topic_ids:
        return [], 0
    zone = rules.zone
    start, end = day_bounds(first, zone)[0], day_bounds(last, zone)[1]
    matched = (
        select(Article.id, Article.feed_id)
        .join(Match, col(Match.article_id) == Article.id)
        .where(
            col(Match.topic_id).in_(list(topic_ids)),
            col(Article.first_seen_at) >= start,
            col(Article.first_seen_at) < end,
            not_(col(Article.backlog)),
        )
        .distinct()
        .subquery()
    )
    per_feed = session.exec(
        select(matched.c.feed_id, func.count())
        .group_by(matched.c.feed_id)
        .order_by(func.count().desc(), matched.c.feed_id)
    ).all()
    total = sum(int(n) for _, n in per_feed)
    top = [(int(feed_id), int(n)) for feed_id, n in per_feed[:limit]]
    feeds = {
        f.id: f for f in session.exec(select(Feed).where(col(Feed.id).in_([i for i, _ in top])))
    }
    rows = [
        SourceCount(
            feed_id,
            feeds[feed_id].title if feed_id in feeds else "",
            feeds[feed_id].url if feed_id in feeds else "",
            n,
        )
        for feed_id, n in top
    ]
    return rows, total
