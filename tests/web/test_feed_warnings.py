"""A feed that parsed with a warning (malformed, items skipped) says so wherever feeds are
listed, not "active, 0 errors": the feeds page, the API's health, `feeds health`."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, select
from typer.testing import CliRunner

from monitor.cli import app
from monitor.models import Feed
from monitor.operations import poll_feeds
from monitor.settings import FetchSettings, Settings
from monitor.sources.feeds import add_feed
from tests.utils.config import ConfigWriter
from tests.utils.feedserver import FeedServer
from tests.web.site import Site

NOW = datetime(2024, 9, 9, 12, 0, tzinfo=UTC)
# Cut off in its last item: readable, with a warning, and an empty item to skip.
TRUNCATED = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>Cut Daily</title>'
    b"<link>https://cut.example/</link>"
    b"<item><title>Alpha</title><link>https://cut.example/a</link></item><item><ti"
)
WARNING = "1 item without a link, title or text skipped"


def poll_once(site: Site, url: str) -> None:
    with Session(site.engine) as session, session.begin():
        add_feed(session, url=url, interval=timedelta(minutes=15), now=NOW)
    settings = Settings(fetch=FetchSettings(allow_networks=["127.0.0.0/8"]))
    asyncio.run(poll_feeds(site.engine, settings, now=NOW, rng=random.Random(1)))


def test_feeds_page_and_api_show_the_warning(site: Site, feed_server: FeedServer) -> None:
    url = feed_server.add("/cut.xml", TRUNCATED)
    poll_once(site, url)
    with Session(site.engine) as session:
        feed = session.exec(select(Feed)).one()
    assert feed.state == "active"
    assert WARNING in (feed.last_warning or "")

    page = site.client.get("/feeds")
    health = site.client.get("/api/feeds/health")

    assert page.status_code == 200
    assert '<span class="badge amber">malformed</span>' in page.text
    assert WARNING in page.text
    [row] = health.json()
    assert WARNING in row["warning"]


def test_a_clean_poll_clears_the_warning(site: Site, feed_server: FeedServer) -> None:
    url = feed_server.add("/cut.xml", TRUNCATED)
    poll_once(site, url)
    feed_server.add("/cut.xml", TRUNCATED.removesuffix(b"<item><ti") + b"</channel></rss>")
    settings = Settings(fetch=FetchSettings(allow_networks=["127.0.0.0/8"]))
    asyncio.run(poll_feeds(site.engine, settings, now=NOW + timedelta(hours=1)))

    assert "malformed" not in site.client.get("/feeds").text
    with Session(site.engine) as session:
        assert session.exec(select(Feed)).one().last_warning is None


def test_feeds_health_and_list_show_the_warning(
    config: ConfigWriter, feed_server: FeedServer
) -> None:
    config.feeds = [feed_server.add("/cut.xml", TRUNCATED)]
    path = config.write()
    runner = CliRunner()
    assert runner.invoke(app, ["--config", str(path), "poll"]).exit_code == 0

    for command in (["feeds", "health"], ["feeds", "list"]):
        result = runner.invoke(app, ["--config", str(path), *command])
        flat = " ".join(result.output.replace("│", " ").split())
        assert "warning: " in flat, flat
        assert WARNING in flat
