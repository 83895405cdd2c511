"""store_body: the one writer of an article's body; the page fills only what the feed left out."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from monitor.models import Article
from monitor.pages.store import store_body, text_source_label
from tests.utils.factories import add_article

NOW = datetime(2024, 9, 10, 12, 0, tzinfo=UTC)
PAGE_TIME = datetime(2024, 9, 9, 4, 30, tzinfo=UTC)
FEED_TIME = datetime(2024, 9, 9, 6, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("feed_author", "feed_published", "author", "published"),
    [
        ("", None, "Ada Reporter", PAGE_TIME),  # the feed said nothing: the page's
        ("Desk", FEED_TIME, "Desk", FEED_TIME),  # the feed's stay
    ],
)
def test_store_body_fills_only_what_the_feed_left_empty(
    engine: Engine,
    feed_author: str,
    feed_published: datetime | None,
    author: str,
    published: datetime,
) -> None:
    with Session(engine) as session, session.begin():
        article = add_article(session, "Probe", seen=NOW, author=feed_author)
        article.published_at = feed_published
        session.add(article)
        session.flush()
        article_id = article.id or 0
        assert text_source_label(article) == "feed"
        store_body(
            session,
            article_id=article_id,
            body="The body.",
            method="readability",
            author="Ada Reporter",
            language="en-GB",
            published_at=PAGE_TIME,
        )
    with Session(engine) as session:
        stored = session.get(Article, article_id)
        assert stored is not None
        assert (stored.body, stored.body_method) == ("The body.", "readability")
        assert stored.author == author
        assert stored.published_at == published
        assert stored.language == "en-GB"
        assert text_source_label(stored) == "page (readability)"
