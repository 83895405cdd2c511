"""Preparing on plain data: what the matcher reads of an entry is what it reads of the article."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from monitor.ingest.language import detect_entry_language
from monitor.ingest.prepare import entry_view
from monitor.ingest.store import save_new_articles
from monitor.sources.feeds import add_feed
from monitor.sources.parse import ParsedEntry
from monitor.topics.tagging import article_view

NOW = datetime(2024, 9, 10, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "entry",
    [
        ParsedEntry(
            guid="urn:1",
            link="https://news.example.com/a?utm_source=rss",
            title="Putin says he backs Harris",
            summary="Remarks at the Eastern Economic Forum.",
            content="Russian President Vladimir Putin said on Thursday ...",
            author="World desk",
            published_at=NOW,
            updated_at=None,
            language="en-GB",
        ),
        ParsedEntry(
            guid="urn:2",
            link=None,
            title="No link, no summary",
            summary="",
            content="Only content here.",
            author="",
            published_at=None,
            updated_at=None,
            language="x" * 50,  # longer than the column: stored cut to 35
        ),
    ],
    ids=["full", "sparse"],
)
def test_an_entry_reads_as_the_article_stored_from_it(engine: Engine, entry: ParsedEntry) -> None:
    with Session(engine) as session, session.begin():
        feed, _ = add_feed(
            session, url="https://news.example.com/rss", interval=timedelta(minutes=15), now=NOW
        )
        session.flush()
        url = feed.url
        [article] = save_new_articles(session, feed_id=feed.id or 0, entries=[entry], now=NOW)
        stored = article_view(article, feed_title="Example", feed_url=url)

    detected = detect_entry_language(entry)
    view = entry_view(entry, feed_title="Example", feed_url=url, detected_language=detected)
    assert view == stored
