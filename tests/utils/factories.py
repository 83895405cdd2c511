"""Rows for tests that need stored articles without polling a feed."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlmodel import Session, select

from monitor.models import Article, Feed


def add_article(
    session: Session, title: str, *, seen: datetime, summary: str = "", content: str = ""
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
        url=f"https://news.example.com/{digest[:10]}",
        feed_id=feed.id or 0,
        title=title,
        summary=summary,
        content=content,
        first_seen_at=seen,
        content_hash=digest,
    )
    session.add(article)
    session.flush()
    return article
