"""The daily alert report's data: volumes against the usual level, spikes, stories, feed health.

``build_report`` fetches rows with the session it is given; everything else here is a pure
function over those rows, so each rule can be tested on its own.

Rules (the README repeats them):

* A report covers one local day, midnight to midnight in ``reports.timezone``.
* A topic's *usual level* on a day is the mean and (population) standard deviation of its daily
  matched-article counts over the ``baseline_days`` days before it, zero days included, counting
  only the full local days since the topic was created. With fewer than ``MIN_BASELINE_DAYS``
  such days a topic has no usual level yet: no z, no spike.
* ``z = (count - mean) / max(stdev, 1)``: the spread is taken as at least one article a day, so
  a perfectly flat history (stdev 0) gives a finite z and one extra article on a quiet topic is
  not a spike. A day is a *spike* when ``z >= spike_z`` and ``count >= spike_min_articles``.
* A *story* is the set of a day's articles in one stored story (near-duplicate copies across
  outlets, see ``monitor.ingest.stories``). An article stored before stories existed falls back
  to its title once case, accents and punctuation are ignored (without a title: a story of its
  own, by content hash).
* A story's *outlets* are the distinct feeds that carried any of its articles (sightings).
* Backlog (articles published well before they were first seen, ``monitor.ingest.backlog``)
  counts nowhere: not in a day's articles, its stories and sources, nor in the usual level.
* A topic's *reviewed* count is how many of the day's articles a reviewer had marked reviewed,
  flagged or dismissed in the inbox (``monitor.review``) when the report was built.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import not_
from sqlmodel import Session, col, select

from monitor.models import Article, Feed, FeedState, Match, Sighting, Topic, TopicPriority
from monitor.pages.health import blocking_hosts, page_health
from monitor.reports.health import FeedHealth, HostProblem, SightingRow, assess_feeds
from monitor.review.store import review_counts
from monitor.settings import ReportsSettings
from monitor.text import fold, split_words

SCHEMA_VERSION = 1
# Fewer full days of history than this and a topic has no usual level to compare against.
MIN_BASELINE_DAYS = 7
# A high-priority topic lists at most this many of the day's articles (the rest are counted).
MAX_PRIORITY_ARTICLES = 50


@dataclass(frozen=True, slots=True)
class ReportRules:
    """The thresholds a report was built with (recorded in its payload)."""

    timezone: str = "UTC"
    spike_z: float = 3.0
    spike_min_articles: int = 5
    baseline_days: int = 28
    chart_days: int = 30
    top_n: int = 5
    silent_factor: float = 4.0
    failing_for: timedelta = timedelta(days=1)

    @classmethod
    def from_settings(cls, settings: ReportsSettings) -> ReportRules:
        """The rules of the ``[reports]`` settings."""
        return cls(
            timezone=settings.timezone,
            spike_z=settings.spike_z,
            spike_min_articles=settings.spike_min_articles,
            baseline_days=settings.baseline_days,
            chart_days=settings.chart_days,
            top_n=settings.top_n,
            silent_factor=settings.silent_factor,
            failing_for=settings.failing_for,
        )

    @property
    def zone(self) -> ZoneInfo:
        """The report's time zone."""
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True)
class Baseline:
    """A topic's usual level: mean and standard deviation of its daily counts over ``days``."""

    days: int
    mean: float
    stdev: float


@dataclass(frozen=True, slots=True)
class DayCount:
    """One day of a topic's volume chart."""

    day: date
    articles: int
    spike: bool
    # The usual level on that day (mean and standard deviation of the days before it), the
    # chart's baseline band; None before a topic has MIN_BASELINE_DAYS of history.
    mean: float | None = None
    stdev: float | None = None


@dataclass(frozen=True, slots=True)
class StoryRow:
    """A story of the day: its first article, how many articles and how many outlets."""

    title: str
    url: str
    outlets: int
    articles: int
    first_seen_at: datetime
    # The first article's language: detected, else declared ("" when neither is known).
    language: str = ""


@dataclass(frozen=True, slots=True)
class SourceRow:
    """A feed and how many of the topic's articles of the day it carried."""

    feed_id: int
    title: str
    url: str
    articles: int


@dataclass(frozen=True, slots=True)
class ArticleRow:
    """A matched article of a high-priority topic."""

    id: int
    title: str
    url: str
    outlet: str
    first_seen_at: datetime
    terms: tuple[str, ...]
    snippet: str
    language: str = ""


@dataclass(frozen=True, slots=True)
class TopicReport:
    """One topic's day: volume, usual level, spike, top stories and sources."""

    slug: str
    name: str
    priority: str
    articles: int
    stories: int
    baseline: Baseline | None
    z: float | None
    spike: bool
    series: list[DayCount]
    top_stories: list[StoryRow]
    top_sources: list[SourceRow]
    priority_articles: list[ArticleRow] = field(default_factory=list)
    more_priority_articles: int = 0
    # Of ``articles``, how many a reviewer had marked (reviewed, flagged or dismissed) when the
    # report was built: "12 of 40 reviewed" (monitor.review).
    reviewed: int = 0


@dataclass(frozen=True, slots=True)
class DailyReport:
    """Everything the daily report shows, for one local day."""

    day: date
    rules: ReportRules
    start: datetime
    end: datetime
    generated_at: datetime
    topics: list[TopicReport]
    health: FeedHealth

    @property
    def spikes(self) -> list[TopicReport]:
        """The topics whose day is a spike."""
        return [topic for topic in self.topics if topic.spike]


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC start and end of a local day (23 or 25 hours long on daylight-saving days)."""
    start = datetime.combine(day, time(), zone)
    end = datetime.combine(day + timedelta(days=1), time(), zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def local_day(moment: datetime, zone: ZoneInfo) -> date:
    """The local date of an aware moment."""
    return moment.astimezone(zone).date()


def first_full_day(created_at: datetime, zone: ZoneInfo) -> date:
    """The first local day a topic existed for all of (its creation day, if made at midnight)."""
    local = created_at.astimezone(zone)
    return local.date() if local.time() == time() else local.date() + timedelta(days=1)


def daily_counts(moments: Iterable[datetime], zone: ZoneInfo) -> Counter[date]:
    """How many of ``moments`` fall on each local day."""
    return Counter(local_day(moment, zone) for moment in moments)


def usual_level(
    counts: Mapping[date, int], day: date, *, days: int, since: date
) -> Baseline | None:
    """Mean and standard deviation over the ``days`` days before ``day`` (zeros included),
    from ``since`` on; None below ``MIN_BASELINE_DAYS`` days of history."""
    first = max(day - timedelta(days=days), since)
    values = [counts.get(first + timedelta(days=i), 0) for i in range((day - first).days)]
    if len(values) < MIN_BASELINE_DAYS:
        return None
    return Baseline(len(values), statistics.fmean(values), statistics.pstdev(values))


def z_score(count: int, baseline: Baseline | None) -> float | None:
    """How far ``count`` is above the usual level, in spreads of at least one article."""
    if baseline is None:
        return None
    return (count - baseline.mean) / max(baseline.stdev, 1.0)


def is_spike(count: int, z: float | None, rules: ReportRules) -> bool:
    """The spike rule: ``z >= spike_z`` and at least ``spike_min_articles`` articles."""
    return z is not None and z >= rules.spike_z and count >= rules.spike_min_articles


def volume_series(
    counts: Mapping[date, int], day: date, rules: ReportRules, *, since: date
) -> list[DayCount]:
    """The ``chart_days`` days ending with ``day``, each with its count and spike flag."""
    series = []
    for offset in range(rules.chart_days - 1, -1, -1):
        current = day - timedelta(days=offset)
        count = counts.get(current, 0)
        baseline = usual_level(counts, current, days=rules.baseline_days, since=since)
        spike = is_spike(count, z_score(count, baseline), rules)
        if baseline is None:
            series.append(DayCount(current, count, spike))
        else:
            series.append(DayCount(current, count, spike, baseline.mean, baseline.stdev))
    return series


def story_key(title: str, content_hash: str, story_id: int | None = None) -> str:
    """What groups a day's articles into a story: the stored story, else the folded title,
    else the content hash."""
    if story_id is not None:
        return f"story:{story_id}"
    words = split_words(fold(title))
    return "title:" + " ".join(words) if words else f"content:{content_hash}"


@dataclass(frozen=True, slots=True)
class DayArticle:
    """A matched article of the report's day, with the feeds that carried it."""

    id: int
    title: str
    url: str
    content_hash: str
    first_seen_at: datetime
    feed_ids: frozenset[int]
    terms: tuple[str, ...] = ()
    snippet: str = ""
    story_id: int | None = None
    language: str = ""


def rank_stories(articles: Sequence[DayArticle], top_n: int) -> tuple[int, list[StoryRow]]:
    """The number of stories among ``articles`` and the ``top_n`` carried by most outlets."""
    groups: dict[str, list[DayArticle]] = defaultdict(list)
    for article in articles:
        groups[story_key(article.title, article.content_hash, article.story_id)].append(article)
    rows = []
    for members in groups.values():
        first = min(members, key=lambda a: (a.first_seen_at, a.id))
        outlets = frozenset().union(*(a.feed_ids for a in members))
        rows.append(
            StoryRow(
                first.title,
                first.url,
                len(outlets),
                len(members),
                first.first_seen_at,
                first.language,
            )
        )
    rows.sort(key=lambda s: (-s.outlets, -s.articles, s.first_seen_at, s.title))
    return len(groups), rows[:top_n]


def rank_sources(
    articles: Sequence[DayArticle], feeds: Mapping[int, Feed], top_n: int
) -> list[SourceRow]:
    """The ``top_n`` feeds that carried most of ``articles``."""
    carried = Counter(feed_id for article in articles for feed_id in article.feed_ids)
    rows = [
        SourceRow(feed_id, _feed_title(feeds.get(feed_id)), _feed_url(feeds.get(feed_id)), n)
        for feed_id, n in carried.items()
    ]
    rows.sort(key=lambda s: (-s.articles, s.title.casefold(), s.feed_id))
    return rows[:top_n]


def _feed_title(feed: Feed | None) -> str:
    return (feed.title or feed.url) if feed is not None else ""


def _feed_url(feed: Feed | None) -> str:
    return feed.url if feed is not None else ""


def topic_report(
    topic: Topic,
    history: Sequence[datetime],
    today: Sequence[DayArticle],
    *,
    day: date,
    rules: ReportRules,
    feeds: Mapping[int, Feed],
) -> TopicReport:
    """One topic's section from its match times (history) and the day's matched articles."""
    zone = rules.zone
    counts = daily_counts(history, zone)
    since = first_full_day(topic.created_at, zone)
    baseline = usual_level(counts, day, days=rules.baseline_days, since=since)
    count = len(today)
    z = z_score(count, baseline)
    stories, top_stories = rank_stories(today, rules.top_n)
    priority_articles: list[ArticleRow] = []
    if topic.priority == TopicPriority.HIGH:
        newest = sorted(today, key=lambda a: (a.first_seen_at, a.id), reverse=True)
        priority_articles = [_article_row(a, feeds) for a in newest[:MAX_PRIORITY_ARTICLES]]
    return TopicReport(
        slug=topic.slug,
        name=topic.name,
        priority=str(topic.priority),
        articles=count,
        stories=stories,
        baseline=baseline,
        z=z,
        spike=is_spike(count, z, rules),
        series=volume_series(counts, day, rules, since=since),
        top_stories=top_stories,
        top_sources=rank_sources(today, feeds, rules.top_n),
        priority_articles=priority_articles,
        more_priority_articles=max(0, count - MAX_PRIORITY_ARTICLES) if priority_articles else 0,
    )


def _article_row(article: DayArticle, feeds: Mapping[int, Feed]) -> ArticleRow:
    outlets = sorted(_feed_title(feeds.get(feed_id)) for feed_id in article.feed_ids)
    return ArticleRow(
        id=article.id,
        title=article.title,
        url=article.url,
        outlet=", ".join(outlets),
        first_seen_at=article.first_seen_at,
        terms=article.terms,
        snippet=article.snippet,
        language=article.language,
    )


def _topic_order(topic: TopicReport) -> tuple[bool, bool, int, str]:
    # Spikes first, then high-priority topics, then the busiest.
    return (not topic.spike, topic.priority != TopicPriority.HIGH, -topic.articles, topic.slug)


def build_report(session: Session, *, day: date, rules: ReportRules, now: datetime) -> DailyReport:
    """Build the report of local ``day``; feed health is a snapshot as of ``now``."""
    zone = rules.zone
    start, end = day_bounds(day, zone)
    first_day = day - timedelta(days=rules.chart_days - 1 + rules.baseline_days)
    window_start = day_bounds(first_day, zone)[0]
    topics = list(session.exec(select(Topic).where(col(Topic.enabled)).order_by(col(Topic.slug))))
    feeds = {feed.id or 0: feed for feed in session.exec(select(Feed))}
    history: dict[int, list[datetime]] = defaultdict(list)
    for topic_id, seen in session.exec(
        select(Match.topic_id, Article.first_seen_at)
        .join(Article, col(Article.id) == Match.article_id)
        .where(
            col(Article.first_seen_at) >= window_start,
            col(Article.first_seen_at) < end,
            not_(col(Article.backlog)),
        )
    ):
        history[topic_id].append(seen)
    today = _day_articles(session, start, end)
    reviews = review_counts(session, start=start, end=end)
    sections = [
        replace(
            topic_report(
                topic,
                history.get(topic.id or 0, []),
                today.get(topic.id or 0, []),
                day=day,
                rules=rules,
                feeds=feeds,
            ),
            reviewed=reviews[topic.id or 0].done if (topic.id or 0) in reviews else 0,
        )
        for topic in topics
    ]
    sections.sort(key=_topic_order)
    health = assess_feeds(
        # A deleted feed whose articles were kept names them, and has no health to report.
        [feed for feed in feeds.values() if feed.state != FeedState.REMOVED],
        _sightings(session, since=now - timedelta(days=rules.baseline_days)),
        now=now,
        failing_for=rules.failing_for,
        silent_factor=rules.silent_factor,
    )
    blocked = [
        HostProblem(h.host, h.failed, h.stored, h.last_reason or "failed", h.last_failure_at)
        for h in blocking_hosts(page_health(session, now=now))
    ]
    health = replace(health, pages=blocked)
    return DailyReport(day, rules, start, end, now, sections, health)


def _day_articles(session: Session, start: datetime, end: datetime) -> dict[int, list[DayArticle]]:
    # Backlog (articles published well before they were first seen) is no news of the day.
    in_day = (
        col(Article.first_seen_at) >= start,
        col(Article.first_seen_at) < end,
        not_(col(Article.backlog)),
    )
    carriers: dict[int, set[int]] = defaultdict(set)
    for article_id, feed_id in session.exec(
        select(Sighting.article_id, Sighting.feed_id)
        .join(Article, col(Article.id) == Sighting.article_id)
        .where(*in_day)
    ):
        carriers[article_id].add(feed_id)
    by_topic: dict[int, list[DayArticle]] = defaultdict(list)
    rows = session.exec(
        select(Match, Article)
        .join(Article, col(Article.id) == Match.article_id)
        .where(*in_day)
        .order_by(col(Article.first_seen_at), col(Article.id))
    )
    for match, article in rows:
        article_id = article.id or 0
        by_topic[match.topic_id].append(
            DayArticle(
                id=article_id,
                title=article.title,
                url=article.url,
                content_hash=article.content_hash,
                first_seen_at=article.first_seen_at,
                feed_ids=frozenset(carriers.get(article_id) or {article.feed_id}),
                terms=tuple(match.terms),
                snippet=match.snippet,
                story_id=article.story_id,
                language=article.detected_language or article.language,
            )
        )
    return by_topic


def _sightings(session: Session, *, since: datetime) -> list[SightingRow]:
    statement = select(Sighting.feed_id, Sighting.first_seen_at, Sighting.last_seen_at).where(
        col(Sighting.last_seen_at) >= since
    )
    return [SightingRow(feed_id, first, last) for feed_id, first, last in session.exec(statement)]


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


def report_payload(report: DailyReport) -> dict[str, Any]:
    """The report as JSON-ready data: the stable, documented form (see ``SCHEMA_VERSION``)."""
    rules = report.rules
    return {
        "schema_version": SCHEMA_VERSION,
        "date": report.day.isoformat(),
        "timezone": rules.timezone,
        "start": _iso(report.start),
        "end": _iso(report.end),
        "generated_at": _iso(report.generated_at),
        "rules": {
            "spike_z": rules.spike_z,
            "spike_min_articles": rules.spike_min_articles,
            "baseline_days": rules.baseline_days,
            "min_baseline_days": MIN_BASELINE_DAYS,
            "chart_days": rules.chart_days,
            "top_n": rules.top_n,
            "silent_factor": rules.silent_factor,
            "failing_for_seconds": int(rules.failing_for.total_seconds()),
        },
        "spikes": [topic.slug for topic in report.spikes],
        "topics": [_topic_payload(topic) for topic in report.topics],
        "feed_health": report.health.payload(),
    }


def _topic_payload(topic: TopicReport) -> dict[str, Any]:
    baseline = topic.baseline
    return {
        "slug": topic.slug,
        "name": topic.name,
        "priority": topic.priority,
        "articles": topic.articles,
        "stories": topic.stories,
        "baseline": None
        if baseline is None
        else {
            "days": baseline.days,
            "mean": round(baseline.mean, 3),
            "stdev": round(baseline.stdev, 3),
        },
        "z": None if topic.z is None else round(topic.z, 3),
        "spike": topic.spike,
        "series": [
            {
                "date": d.day.isoformat(),
                "articles": d.articles,
                "spike": d.spike,
                "mean": None if d.mean is None else round(d.mean, 3),
                "stdev": None if d.stdev is None else round(d.stdev, 3),
            }
            for d in topic.series
        ],
        "top_stories": [
            {
                "title": s.title,
                "url": s.url,
                "outlets": s.outlets,
                "articles": s.articles,
                "first_seen_at": _iso(s.first_seen_at),
                "language": s.language,
            }
            for s in topic.top_stories
        ],
        "top_sources": [
            {"feed_id": s.feed_id, "title": s.title, "url": s.url, "articles": s.articles}
            for s in topic.top_sources
        ],
        "priority_articles": [
            {
                "id": a.id,
                "title": a.title,
                "url": a.url,
                "outlet": a.outlet,
                "first_seen_at": _iso(a.first_seen_at),
                "terms": list(a.terms),
                "snippet": a.snippet,
                "language": a.language,
            }
            for a in topic.priority_articles
        ],
        "more_priority_articles": topic.more_priority_articles,
        "reviewed": topic.reviewed,
    }
