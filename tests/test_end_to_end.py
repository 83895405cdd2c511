"""The whole pipeline through real parts: HTTP server, SQLite/PostgreSQL, SMTP server."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, func, select

from monitor.ingest.pool import PreparePool
from monitor.ingest.refresh import RefreshResult, RefreshStatus
from monitor.models import Article, Match, Sighting, Topic, utcnow
from monitor.operations import open_database, poll_feeds, send_digests, sync_config
from monitor.settings import Settings
from tests.utils.config import ConfigWriter, fixture_feed
from tests.utils.feedserver import FeedServer
from tests.utils.smtpserver import SmtpServer

SEED_TITLE = "Did Putin Back Kamala Harris For The 2024 Election? Here’s What It Could Mean"
UNRELATED_TITLES = {
    "City edge United in a late derby thriller",
    "Chipmaker shares climb after record quarterly earnings",
    "New phone battery lasts two days, reviewers say",
    "Heatwave brings record temperatures to southern Europe",
}


def _topics_by_title(session: Session) -> dict[str, set[str]]:
    rows = session.exec(
        select(Article.title, Topic.slug)
        .join(Match, col(Match.article_id) == Article.id, isouter=True)
        .join(Topic, col(Topic.id) == Match.topic_id, isouter=True)
    ).all()
    found: dict[str, set[str]] = {}
    for title, slug in rows:
        found.setdefault(title, set())
        if slug:
            found[title].add(slug)
    return found


@pytest.fixture
def pool() -> PreparePool:
    """Two real worker processes; their document count proves a 304 or an unchanged body costs
    no parse."""
    return PreparePool(2)


def poll(engine: Engine, settings: Settings, pool: PreparePool) -> list[RefreshResult]:
    """One poll of every feed through ``pool``, closed afterwards as a poll's own pool is."""

    async def run() -> list[RefreshResult]:
        async with pool:
            return await poll_feeds(engine, settings, pool=pool)

    return asyncio.run(run())


def test_poll_tag_and_digest_through_real_servers(
    config: ConfigWriter,
    feed_server: FeedServer,
    smtp_server: SmtpServer,
    pool: PreparePool,
) -> None:
    world = feed_server.add("/world.rss", fixture_feed("world.rss"))
    markets = feed_server.add(
        "/markets.atom", fixture_feed("markets.atom"), content_type="application/atom+xml"
    )
    config.feeds = [world, markets]
    config.smtp_port = smtp_server.port
    # The fixture feeds were published in 2024 and are polled now: else all backlog, unsent.
    config.extra_toml = '[ingest]\nbacklog_after = "100000d"\n'
    settings = config.settings()
    engine = open_database(settings)
    sync_config(engine, settings, now=utcnow())

    first = poll(engine, settings, pool)

    assert {r.status for r in first} == {RefreshStatus.UPDATED}
    assert sum(r.new_articles for r in first) == 6  # 5 + 2, one story carried by both feeds
    assert pool.documents == 2
    with Session(engine) as session:
        topics = _topics_by_title(session)
        chip = session.exec(select(Article).where(Article.title.startswith("Chipmaker"))).one()
        chip_sightings = session.exec(
            select(func.count()).select_from(Sighting).where(Sighting.article_id == chip.id)
        ).one()
    assert topics[SEED_TITLE] == {"election-interference", "russian-disinformation"}
    assert all(topics[title] == set() for title in UNRELATED_TITLES)
    assert topics["Central bank holds rates steady"] == {"central-banks"}
    assert chip.canonical_url == "https://news.example.com/business/chipmaker-earnings"
    assert chip_sightings == 2

    sent = asyncio.run(send_digests(engine, settings, scheduled=False))

    assert sent.sent == ["analyst@example.org"]
    assert len(smtp_server.messages) == 1
    received = smtp_server.messages[0]
    assert received.recipients == ["analyst@example.org"]
    message = received.message
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None
    assert html is not None
    assert SEED_TITLE in text.get_content()
    assert "Kamala Harris For The 2024 Election" in html.get_content()
    # Not subscribed to central banks, and the unrelated stories matched nothing.
    for body in (text.get_content(), html.get_content()):
        assert "Central bank holds rates" not in body
        assert not any(title in body for title in UNRELATED_TITLES)
    assert message["Subject"] == "[monitor] Election interference (1)"

    second = poll(engine, settings, pool)

    assert {r.status for r in second} == {RefreshStatus.NOT_MODIFIED}
    assert pool.documents == 2  # a 304 costs no parse
    assert all(headers.get("if-none-match") for path, headers in feed_server.requests[-2:]), (
        "the second poll must send the ETag back"
    )
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(Article)).one() == 6

    again = asyncio.run(send_digests(engine, settings, scheduled=False))

    assert again.sent == []
    assert len(smtp_server.messages) == 1


def test_unchanged_body_without_validators_is_not_parsed_again(
    config: ConfigWriter, feed_server: FeedServer, pool: PreparePool
) -> None:
    url = feed_server.add("/world.rss", fixture_feed("world.rss"), validators=False)
    config.feeds = [url]
    settings = config.settings()
    engine = open_database(settings)
    sync_config(engine, settings, now=utcnow())

    first = poll(engine, settings, pool)
    second = poll(engine, settings, pool)

    assert [r.status for r in first] == [RefreshStatus.UPDATED]
    assert [r.status for r in second] == [RefreshStatus.UNCHANGED]
    assert pool.documents == 1
    assert feed_server.hits["/world.rss"] == 2
