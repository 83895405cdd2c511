"""Rows for tests that need stored topics and articles without syncing a file or polling a feed."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlmodel import Session, select

from monitor.models import Article, Feed, Topic, TopicPriority


def add_topic(
    session: Session,
    slug: str,
    query: str,
    *,
    enabled: bool = True,
    version: int = 1,
    tagged_version: int | None = None,
    priority: TopicPriority = TopicPriority.NORMAL,
) -> Topic:
    """Store a topic; its stored matches are up to date (``tagged_version == version``) unless
    ``tagged_version`` says otherwise."""
    topic = Topic(
        slug=slug,
        name=slug.replace("-", " ").title(),
        query=query,
        enabled=enabled,
        version=version,
        tagged_version=version if tagged_version is None else tagged_version,
        priority=priority,
    )
    session.add(topic)
    session.flush()
    return topic


def add_article(
    session: Session,
    title: str,
    *,
    seen: datetime,
    summary: str = "",
    content: str = "",
    author: str = "",
    url: str = "",
) -> Article:
    """Store an article first seen at ``seen`` in the first feed (made when there is none)."""
    feed = session.exec(select(Feed)).first()
    if feed is None:
        feed = Feed(url="https://news.example.com/feed.xml", title="Example News")
        session.add(feed)
        session.flush()
    digest = hashlib.sha256(title.encode()).hexdigest()
    article = Article(
        key_hash=digest,
        url=url or f"https://news.example.com/{digest[:10]}",
        feed_id=feed.id or 0,
        title=title,
        summary=summary,
        content=content,
        author=author,
        first_seen_at=seen,
        content_hash=digest,
    )
    session.add(article)
    session.flush()
    return article
