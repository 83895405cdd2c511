"""A topic's inbox for tests: articles over two days in two feeds and three languages, two
stories of several copies, one backlog item, all matched by one topic."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from monitor.models import Article, Feed, Match, Sighting, Story, Topic
from tests.utils.factories import add_article, add_topic

DAY = date(2024, 9, 8)
NOW = datetime(2024, 9, 9, 12, 0, tzinfo=UTC)
HOSTILE = '=HYPERLINK("http://evil.example","cmd")'


@dataclass
class Inbox:
    """What ``seed_inbox`` stored: the topic, the articles of DAY in inbox order, and others."""

    topic_id: int
    slug: str
    day_ids: list[int]
    backlog_id: int
    before_id: int
    feed_ids: tuple[int, int]
    languages: dict[int, str]


def match(session: Session, article: Article, topic: Topic) -> None:
    """Store a match of ``article`` by ``topic``."""
    session.add(Match(article_id=article.id or 0, topic_id=topic.id or 0, topic_version=1,
                      score=1.0, terms=["election"], snippet=article.title,
                      matched_at=article.first_seen_at))  # fmt: skip


def seed_inbox(engine: Engine, *, extra: int = 0) -> Inbox:
    """Store the inbox (and ``extra`` more single-article stories of DAY, for paging)."""
    with Session(engine) as session, session.begin():
        topic = add_topic(session, "votes", "election")
        first_feed = Feed(url="https://news.example.com/feed.xml", title="Example News")
        other_feed = Feed(url="https://zeitung.example.de/feed.xml", title="Zeitung")
        session.add(first_feed)
        session.flush()
        session.add(other_feed)
        session.flush()
        base = datetime(2024, 9, 8, 6, 0, tzinfo=UTC)
        stories = [Story(title="Election night", first_seen_at=base, outlet_count=2),
                   Story(title="Wahl", first_seen_at=base, outlet_count=1)]  # fmt: skip
        session.add_all(stories)
        session.flush()
        plan = [  # title, story, language, second feed, backlog
            ("Election night results", 0, "en", False, False),
            ("Election night: the count", 0, "en", True, False),
            ("Die Wahl (election) heute", 1, "de", True, False),
            ("Die Wahl (election) morgen", 1, "de", True, False),
            ("Élection: les résultats", None, "fr", False, False),
            (HOSTILE + " election", None, "en", False, False),
            ("An old election piece", None, "en", False, True),
        ]
        plan += [(f"Election extra {n}", None, "en", False, False) for n in range(extra)]
        ids, languages, backlog_id = [], {}, 0
        for n, (title, story, language, second, backlog) in enumerate(plan):
            article = add_article(session, title, seen=base + timedelta(minutes=n))
            article.story_id = stories[story].id if story is not None else None
            article.detected_language, article.backlog = language, backlog
            if second:
                article.feed_id = other_feed.id or 0
            session.add(article)
            session.add(Sighting(article_id=article.id or 0, feed_id=article.feed_id))
            match(session, article, topic)
            languages[article.id or 0] = language
            if backlog:
                backlog_id = article.id or 0
            else:
                ids.append(article.id or 0)
        before = add_article(session, "Election eve", seen=base - timedelta(days=1))
        before.detected_language = "en"
        match(session, before, topic)
        return Inbox(topic.id or 0, topic.slug, ids, backlog_id, before.id or 0,
                     (first_feed.id or 0, other_feed.id or 0), languages)  # fmt: skip
