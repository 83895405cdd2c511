"""A realistic, fully deterministic data set for report tests: 40 days of articles.

Report day ``DAY`` (Europe/Berlin, UTC+2), built at ``NOW`` (07:00 local the morning after).

Topics:
* election-interference (high priority, created long ago): ``PATTERN`` per day before ``DAY``
  (a zero day each week), then ``SPIKE_COUNT`` on ``DAY``, one of them a story carried by three
  outlets and one an article sighted in two feeds. Articles at 00:30 on ``DAY`` and 23:50 the
  day before test the local day boundary, one at 00:10 the day after must not count.
* central-banks: exactly 3 a day, so its spread is 0.
* climate-risk: created mid-window (``DAY - 10`` at 09:00); 1 a day since, 6 on ``DAY``, and
  4 a day from retagged history before it existed, which must not enter its usual level.
* space-debris: never matched anything (every day zero).

Feeds: three healthy outlets, a failing one, a disabled one, a one-off failure, a feed gone
silent and a feed whose every item was new on its last two polls.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from monitor.models import Article, Feed, FeedState, Match, Sighting, Topic, TopicPriority
from monitor.reports.build import ReportRules

ZONE = "Europe/Berlin"
DAY = date(2024, 9, 9)
NOW = datetime(2024, 9, 10, 5, 0, tzinfo=UTC)
RULES = ReportRules(timezone=ZONE)
PATTERN = (1, 2, 3, 2, 1, 0, 2)  # by (DAY - day).days % 7
SPIKE_COUNT = 12
HISTORY_DAYS = 40


def local(day: date, hour: int = 12, minute: int = 0) -> datetime:
    """A local wall-clock time in the report's zone, as aware UTC."""
    return datetime.combine(day, time(hour, minute), ZoneInfo(ZONE)).astimezone(UTC)


@dataclass
class Builder:
    """Adds rows with predictable ids and times."""

    session: Session
    serial: int = 0

    def feed(self, title: str, url: str, **fields: Any) -> Feed:
        feed = Feed(url=url, title=title, created_at=local(DAY - timedelta(days=70)), **fields)
        self.session.add(feed)
        self.session.flush()
        return feed

    def topic(self, slug: str, name: str, created: datetime, **fields: Any) -> Topic:
        topic = Topic(
            slug=slug, name=name, query=slug, created_at=created, updated_at=created, **fields
        )
        self.session.add(topic)
        self.session.flush()
        return topic

    def article(
        self,
        title: str,
        seen: datetime,
        feeds: list[Feed],
        topics: list[Topic] = (),  # type: ignore[assignment]
        *,
        url: str = "",
        relisted: bool = True,
    ) -> Article:
        """Store an article with its sightings and matches. A ``relisted`` article stays in its
        feeds for a day of polls (until shortly before ``NOW``), as real feeds keep items."""
        self.serial += 1
        digest = hashlib.sha256(f"{self.serial}:{title}".encode()).hexdigest()
        host = feeds[0].url.split("/")[2]
        article = Article(
            key_hash=digest,
            url=url or f"https://{host}/articles/{self.serial}",
            feed_id=feeds[0].id or 0,
            title=title,
            first_seen_at=seen,
            content_hash=digest,
            # The feeds declare English, the text reads as English: reports show "en".
            language="en-US",
            detected_language="en",
        )
        self.session.add(article)
        self.session.flush()
        last = min(seen + timedelta(days=1), NOW - timedelta(minutes=30)) if relisted else seen
        for feed in feeds:
            self.sighting(article, feed, seen, max(seen, last))
        for topic in topics:
            self.session.add(
                Match(
                    article_id=article.id or 0,
                    topic_id=topic.id or 0,
                    topic_version=1,
                    score=1.0,
                    terms=[topic.slug.replace("-", " ")],
                    snippet=f"{title}, officials said on Monday.",
                    matched_at=seen,
                )
            )
        self.session.flush()
        return article

    def sighting(self, article: Article, feed: Feed, first: datetime, last: datetime) -> None:
        self.session.add(
            Sighting(
                article_id=article.id or 0,
                feed_id=feed.id or 0,
                first_seen_at=first,
                last_seen_at=last,
            )
        )


@dataclass(frozen=True)
class Scenario:
    """The rows a test may want to look at."""

    outlets: list[Feed]
    topics: dict[str, Topic]


def seed(session: Session) -> Scenario:
    """Store the whole scenario in ``session`` (flushed, not committed)."""
    b = Builder(session)
    news = b.feed("Example News", "https://news.example.com/feed.xml")
    wire = b.feed("Wire Service", "https://wire.example.net/rss")
    planet = b.feed("Daily Planet", "https://planet.example.org/atom.xml")
    outlets = [news, wire, planet]
    b.feed(
        "Broken Gazette",
        "https://gazette.example.com/rss",
        state=FeedState.ERRORING,
        error_count=9,
        last_success_at=NOW - timedelta(days=3),
        last_error="HTTP 503 Service Unavailable",
    )
    b.feed(
        "Dead Link Times",
        "https://deadlink.example.com/feed",
        state=FeedState.DISABLED,
        disabled_reason="HTTP 410 Gone: the feed was removed",
    )
    blip = b.feed(
        "Blip Herald",
        "https://blip.example.org/rss",
        state=FeedState.ERRORING,
        error_count=1,
        last_success_at=NOW - timedelta(hours=2),
        last_error="timed out after 30s",
    )
    quiet = b.feed("Quiet Courier", "https://quiet.example.net/feed")
    firehose = b.feed("Firehose Post", "https://firehose.example.com/rss")

    long_ago = local(DAY - timedelta(days=60), 9)
    election = b.topic(
        "election-interference",
        "Election interference",
        long_ago,
        priority=TopicPriority.HIGH,
    )
    banks = b.topic("central-banks", "Central banks", long_ago)
    climate = b.topic("climate-risk", "Climate risk", local(DAY - timedelta(days=10), 9))
    debris = b.topic("space-debris", "Space debris", long_ago)

    for back in range(HISTORY_DAYS, 0, -1):
        day = DAY - timedelta(days=back)
        for i in range(PATTERN[back % 7]):
            # The day before's last article lands at 23:50 local: still that day.
            hour, minute = (23, 50) if back == 1 and i == 1 else (12, i)
            seen = local(day, hour, minute)
            b.article(f"Election item {day} #{i}", seen, [outlets[i % 3]], [election])
        for i in range(3):
            b.article(f"Rate decision {day} #{i}", local(day, 10, i), [outlets[i % 3]], [banks])
        if back > 10:
            for i in range(4):  # retagged history from before the topic existed
                b.article(f"Old climate {day} #{i}", local(day, 15, i), [news], [climate])
        else:
            b.article(f"Climate {day}", local(day, 16), [planet], [climate])

    # The report day.
    b.article("Vote counting starts amid interference fears", local(DAY, 0, 30), [wire], [election])
    for feed in outlets:
        b.article(
            "Officials warn of election interference by troll farms",
            local(DAY, 8, 5),
            [feed],
            [election],
        )
    b.article("Kremlin denies meddling claims", local(DAY, 9, 15), [news, wire], [election])
    for i in range(SPIKE_COUNT - 5):
        b.article(
            f"Election watch update {i + 1}", local(DAY, 10 + i, 0), [outlets[i % 3]], [election]
        )
    for i in range(3):
        b.article(f"Central bank holds rates #{i}", local(DAY, 11, i), [outlets[i % 3]], [banks])
    for i in range(6):
        b.article(f"Flood insurance costs soar #{i}", local(DAY, 13, i), [planet], [climate])
    # Just after midnight: the next day, not in this report.
    b.article("Late count update", local(DAY + timedelta(days=1), 0, 10), [wire], [election])

    # Quiet Courier: an item every 6 hours for 17 days, then nothing for 3 days.
    for n in range(17 * 4):
        seen = local(DAY - timedelta(days=20)) + timedelta(hours=6 * n)
        b.article(f"Courier note {n}", seen, [quiet])
    # Blip Herald posts steadily up to two hours ago; its one failed check is not a problem.
    for n in range(24):
        b.article(f"Herald brief {n}", NOW - timedelta(hours=2 + 3 * n), [blip])
    # Firehose Post: three polls; on the last two, every item listed was new.
    for poll, back in enumerate((2, 1, 0)):
        when = local(DAY - timedelta(days=back), 8)
        for i in range(3):
            b.article(f"Firehose {poll}-{i}", when, [firehose], relisted=False)
    session.flush()
    return Scenario(
        outlets,
        {t.slug: t for t in (election, banks, climate, debris)},
    )
