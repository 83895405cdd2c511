"""Backlog: a new feed's archive, and old items listed late, are stored but flagged at ingest.

The defect: after 34 feeds were added, 1,282 of the 1,311 articles first seen that day had been
published more than a week before (the oldest in 2021), and counted as that day's news.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from monitor.ingest.backlog import clamp_published, is_backlog
from monitor.ingest.store import list_articles, save_new_articles
from monitor.models import Article
from monitor.operations import poll_feeds
from monitor.settings import FetchSettings, IngestSettings, Settings
from monitor.sources.feeds import add_feed
from monitor.sources.parse import ParsedEntry
from tests.utils.feedserver import FeedServer

NOW = datetime(2024, 9, 10, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
AGES: dict[str, timedelta | None] = {
    "from 2021": NOW - datetime(2021, 3, 1, tzinfo=UTC),
    "ten days old": 10 * DAY,
    "three days old": 3 * DAY,
    "a day old": DAY,
    "an hour old": timedelta(hours=1),
    "dated next week": -7 * DAY,
    "undated": None,
}


@pytest.mark.parametrize(
    ("age", "first_poll", "after", "expected"),
    [
        (10 * DAY, False, 2 * DAY, True),
        (10 * DAY, True, 2 * DAY, True),
        (2 * DAY + timedelta(seconds=1), False, 2 * DAY, True),
        (2 * DAY, False, 2 * DAY, False),  # exactly the setting: still news
        (DAY, True, 2 * DAY, False),
        (3 * DAY, False, 7 * DAY, False),  # a longer setting
        (timedelta(0), True, 2 * DAY, False),
        (None, True, 2 * DAY, True),  # undated on a feed's first poll: its archive
        (None, False, 2 * DAY, False),  # undated later: new to the feed, so news
    ],
)
def test_is_backlog(
    age: timedelta | None, first_poll: bool, after: timedelta, expected: bool
) -> None:
    published = None if age is None else NOW - age
    assert is_backlog(published, now=NOW, first_poll=first_poll, after=after) is expected


@pytest.mark.parametrize(
    ("published", "expected"),
    [
        (None, None),
        (NOW - DAY, NOW - DAY),
        (NOW, NOW),
        (NOW + timedelta(minutes=5), NOW),
        (datetime(2099, 1, 1, tzinfo=UTC), NOW),
    ],
)
def test_a_date_in_the_future_is_clamped(
    published: datetime | None, expected: datetime | None
) -> None:
    assert clamp_published(published, NOW) == expected


def entries(ages: dict[str, timedelta | None]) -> list[ParsedEntry]:
    return [
        ParsedEntry(
            guid=f"g-{title}",
            link=f"https://news.example.com/{title.replace(' ', '-')}",
            title=title,
            summary=f"An item {title}.",
            content="",
            author="",
            published_at=None if age is None else NOW - age,
            updated_at=None,
        )
        for title, age in ages.items()
    ]


def new_feed(engine: Engine, url: str = "https://news.example.com/rss") -> int:
    with Session(engine) as session, session.begin():
        feed, _ = add_feed(session, url=url, interval=timedelta(minutes=15), now=NOW)
        return feed.id or 0


def flags(engine: Engine) -> dict[str, bool]:
    with Session(engine) as session:
        return {a.title: a.backlog for a in session.exec(select(Article))}


def save(engine: Engine, items: Sequence[ParsedEntry], **options: object) -> None:
    feed_id = new_feed(engine)
    with Session(engine) as session, session.begin():
        save_new_articles(session, feed_id=feed_id, entries=items, now=NOW, **options)  # type: ignore[arg-type]


FIRST_POLL = {
    "from 2021": True,
    "ten days old": True,
    "three days old": True,
    "a day old": False,
    "an hour old": False,
    "dated next week": False,
    "undated": True,
}


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"first_poll": True}, FIRST_POLL),
        ({"first_poll": False}, FIRST_POLL | {"undated": False}),
        (
            {"first_poll": True, "backlog_after": 7 * DAY},
            FIRST_POLL | {"three days old": False},
        ),
    ],
    ids=["first-poll", "later-poll", "longer-setting"],
)
def test_new_articles_are_flagged_as_they_are_stored(
    engine: Engine, options: dict[str, object], expected: dict[str, bool]
) -> None:
    save(engine, entries(AGES), **options)

    assert flags(engine) == expected
    with Session(engine) as session:
        future = session.exec(select(Article).where(Article.title == "dated next week")).one()
    assert future.published_at == NOW


def test_backlog_is_searchable_and_listed_like_any_article(engine: Engine) -> None:
    save(engine, entries(AGES), first_poll=True)

    with Session(engine) as session:
        listed = list_articles(session, limit=50)
    assert len(listed) == len(AGES)


def rss(items: dict[str, timedelta | None], at: datetime) -> bytes:
    body = "".join(
        f"<item><title>{title}</title><link>https://news.example.com/{title.replace(' ', '-')}"
        f"</link><guid>g-{title}</guid>"
        + ("" if age is None else f"<pubDate>{format_datetime(at - age)}</pubDate>")
        + "</item>"
        for title, age in items.items()
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>News</title>'
        f"<link>https://news.example.com/</link>{body}</channel></rss>"
    ).encode()


@pytest.mark.parametrize("processes", [0, 1], ids=["in-thread", "worker-process"])
def test_polls_flag_a_new_feeds_archive_and_old_items_listed_late(
    engine: Engine, feed_server: FeedServer, processes: int
) -> None:
    settings = Settings(
        fetch=FetchSettings(allow_networks=["127.0.0.0/8"], parse_processes=processes),
        ingest=IngestSettings(backlog_after=2 * DAY),
    )
    url = feed_server.add("/news.xml", rss(AGES, NOW))
    new_feed(engine, url)

    asyncio.run(poll_feeds(engine, settings, now=NOW, rng=random.Random(1)))
    assert flags(engine) == FIRST_POLL

    later = NOW + timedelta(hours=6)
    late = {"listed late": 5 * DAY, "fresh": timedelta(minutes=10), "new undated": None}
    feed_server.add("/news.xml", rss(AGES | late, later))
    asyncio.run(poll_feeds(engine, settings, now=later, rng=random.Random(2)))

    assert flags(engine) == FIRST_POLL | {"listed late": True, "fresh": False, "new undated": False}
    with Session(engine) as session:
        news = session.exec(
            select(Article.title).where(~col(Article.backlog)).order_by(col(Article.title))
        ).all()
    assert news == ["a day old", "an hour old", "dated next week", "fresh", "new undated"]
