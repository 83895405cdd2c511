"""Fixtures for article pages: a local news site serving the 62 real pages with a teaser feed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine

from monitor.ingest.pool import PreparePool
from monitor.ingest.refresh import RefreshResult
from monitor.operations import fetch_pages, host_limits, poll_feeds
from monitor.pages.run import PageResult
from monitor.settings import Settings
from tests.utils.articles import ArticlePage, articles_missing, load_articles, teaser_feed
from tests.utils.feedserver import FeedServer, running_feed_server


@dataclass
class NewsSite:
    """The real pages under their own paths on 127.0.0.1, and a feed of one-sentence teasers."""

    server: FeedServer
    pages: tuple[ArticlePage, ...]
    feed_url: str

    def url_of(self, page: ArticlePage) -> str:
        """Where the site serves ``page``."""
        return self.server.url(page.path)

    def page_hits(self) -> int:
        """Requests for article pages so far (the feed's excluded)."""
        paths = {page.path for page in self.pages}
        return sum(count for path, count in self.server.hits.items() if path in paths)


@pytest.fixture
def news_site() -> Iterator[NewsSite]:
    """The 62 pages of ../shared/articles and a feed linking to each, titled "Article N"."""
    pages = load_articles()
    if not pages:
        pytest.skip(articles_missing())
    with running_feed_server() as server:
        items = []
        for number, page in enumerate(pages):
            link = server.add(page.path, page.html, content_type="text/html; charset=utf-8")
            items.append((link, f"Article {number}", page.teaser))
        feed = server.add("/news.rss", teaser_feed(iter(items)))
        yield NewsSite(server, pages, feed)


def poll_with_pages(
    engine: Engine, settings: Settings, *, workers: int = 0
) -> tuple[list[RefreshResult], list[PageResult]]:
    """``monitor poll``: every feed, then every due page, through one prepare pool."""

    async def run() -> tuple[list[RefreshResult], list[PageResult]]:
        hosts = host_limits(settings)
        async with PreparePool(workers) as pool:
            polled = await poll_feeds(engine, settings, pool=pool, hosts=hosts)
            fetched = await fetch_pages(engine, settings, pool=pool, hosts=hosts)
        return polled, fetched

    return asyncio.run(run())
