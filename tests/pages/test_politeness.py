"""Politeness: one site's 200 article pages keep to its pace while another site's feed is polled
on time; the per-host slots are shared with feed polls."""

from __future__ import annotations

import asyncio
import itertools
import time

from sqlmodel import Session, select

from monitor.ingest.pool import PreparePool
from monitor.ingest.refresh import RefreshStatus
from monitor.models import ArticlePage, PageStatus, utcnow
from monitor.operations import fetch_pages, host_limits, open_database, poll_feeds, sync_config
from monitor.sources.hosts import HostLimits
from tests.utils.articles import teaser_feed
from tests.utils.config import ConfigWriter
from tests.utils.feedserver import FeedServer, running_feed_server

PAGES = 200
INTERVAL = 0.02
TINY = (
    "<html><head><title>Item</title></head><body><article><p>"
    + "The county recount found no sign of interference in the vote tally. " * 5
    + "</p></article></body></html>"
).encode()


def test_one_sites_pages_keep_its_pace_while_another_site_is_polled_on_time(
    config: ConfigWriter, feed_server: FeedServer
) -> None:
    items = [
        (feed_server.add(f"/a/{n}", TINY, content_type="text/html"), f"A {n}", "Short.")
        for n in range(PAGES)
    ]
    feed_a = feed_server.add("/a.rss", teaser_feed(iter(items)))
    with running_feed_server("127.0.0.2") as other:
        feed_b = other.add("/b.rss", teaser_feed(iter([("http://127.0.0.2/x", "B", "B.")])))
        config.feeds = [feed_a, feed_b]
        config.pages = {"enabled": "true", "per_host_interval": f'"{INTERVAL}s"'}
        settings = config.settings()
        engine = open_database(settings)
        sync_config(engine, settings, now=utcnow())

        async def run() -> tuple[float, float, RefreshStatus]:
            hosts = host_limits(settings)
            async with PreparePool(0) as pool:
                await poll_feeds(engine, settings, urls=[feed_a], pool=pool, hosts=hosts)
                pages = asyncio.create_task(fetch_pages(engine, settings, pool=pool, hosts=hosts))
                await asyncio.sleep(0.5)  # site A's pages are under way
                asked = time.monotonic()
                [b] = await poll_feeds(engine, settings, urls=[feed_b], pool=pool, hosts=hosts)
                polled = time.monotonic()
                assert not pages.done(), "site A's pages should still be in progress"
                results = await pages
                assert len(results) == PAGES
                return asked, polled, b.status

        asked, polled, status_b = asyncio.run(run())

    assert status_b is RefreshStatus.UPDATED
    assert polled - asked < 2.0  # not queued behind site A's pages
    arrivals = [at for path, at in feed_server.arrivals if path.startswith("/a/")]
    assert len(arrivals) == PAGES
    [(_, b_arrival)] = [(p, at) for p, at in other.arrivals if p == "/b.rss"]
    assert arrivals[0] < b_arrival < arrivals[-1]
    # No faster than the pace: 199 gaps of at least INTERVAL (a little slack for the clock).
    assert arrivals[-1] - arrivals[0] >= (PAGES - 1) * INTERVAL * 0.95
    assert feed_server.max_in_flight <= settings.fetch.per_host
    with Session(engine) as session:
        statuses = session.exec(select(ArticlePage.status).where(ArticlePage.host == "127.0.0.1"))
        assert set(statuses) == {PageStatus.DONE}


def test_host_limits_pace_and_share_slots() -> None:
    async def run() -> tuple[list[float], int]:
        limits = HostLimits(1, page_interval=0.05)
        starts: list[float] = []
        most = 0
        inside = 0

        async def page() -> None:
            nonlocal most, inside
            async with limits.page_slot("a.example"):
                starts.append(time.monotonic())
                inside += 1
                most = max(most, inside)
                await asyncio.sleep(0.01)
                inside -= 1

        # A feed fetch holding the host's only slot delays the pages, too.
        async with limits.gate("a.example"):
            tasks = [asyncio.create_task(page()) for _ in range(5)]
            await asyncio.sleep(0.1)
            assert not starts
        await asyncio.gather(*tasks)
        return starts, most

    starts, most = asyncio.run(run())
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.045
    assert most == 1
