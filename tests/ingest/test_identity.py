"""Which items are one article: links that many items share are no identity; repeats still are.

The defect: a podcast feed whose 131 episodes all link to the show's home page (distinct GUIDs
and titles) was stored as 9 articles, its poll reported ok and ``feeds show`` said every item
had been seen. Pure keying first, then the store on both databases, then real polls.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, func, select

from monitor.ingest.canonical import article_key, article_keys
from monitor.ingest.refresh import RefreshStatus
from monitor.ingest.store import save_new_articles
from monitor.models import Article, Match, SharedLink, Sighting
from monitor.operations import poll_feeds
from monitor.settings import FetchSettings, Settings
from monitor.sources.feeds import add_feed
from monitor.sources.parse import ParsedEntry, parse_feed
from tests.utils.factories import add_topic
from tests.utils.feedserver import FeedServer

NOW = datetime(2024, 9, 10, 12, 0, tzinfo=UTC)
HOME = "https://podcast.example/"
SHOW = "https://podcast.example/shows/weekly"
LANDING = "https://aggregator.example/landing?edition=int"


def item(
    n: int,
    *,
    link: str | None = None,
    guid: str | None = None,
    title: str | None = None,
    hours: int | None = None,
) -> ParsedEntry:
    """Item ``n``, an hour apart from the next, linked to its own page unless told otherwise."""
    return ParsedEntry(
        guid=guid,
        link=link if link is not None else f"https://news.example.com/story/{n}",
        title=title if title is not None else f"Episode {n}: a distinct title",
        summary=f"Show notes of episode {n}.",
        content="",
        author="",
        published_at=NOW - timedelta(hours=n if hours is None else hours),
        updated_at=None,
    )


def podcast(count: int = 131, *, link: str = HOME) -> list[ParsedEntry]:
    return [item(n, link=link, guid=f"urn:uuid:episode-{n}") for n in range(count)]


def distinct(keys: Sequence[object]) -> int:
    return len({key.key_hash for key in keys})  # type: ignore[attr-defined]


# --- keying one document ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "site_url", "expected"),
    [
        # every episode links to the home page
        (podcast(), "", 131),
        # ... to the show page, which is the channel's own link
        (podcast(link=SHOW), SHOW, 131),
        # ... to an index file of the site root
        (podcast(5, link="https://podcast.example/index.html"), "", 5),
        # an aggregator: no GUIDs, one landing page, different titles
        ([item(n, link=LANDING) for n in range(6)], "", 6),
        # ... whose GUIDs are that landing page (isPermaLink): no identity either
        ([item(n, link=LANDING, guid=LANDING) for n in range(6)], "", 6),
        # ... spelt otherwise in the link (tracking parameters, host case)
        (
            [
                item(n, link=f"{LANDING}&utm_source=rss", guid=LANDING.replace("agg", "AGG"))
                for n in range(6)
            ],
            "",
            6,
        ),
        # a comment feed: comments on one page, distinct GUIDs, some titles alike ("By: Ann")
        (
            [
                item(n, link="https://blog.example/post/", guid=f"c{n}", title=f"By: {who}")
                for n, who in enumerate(["Ann", "Bo", "Ann", "Cy"])
            ],
            "",
            4,
        ),
        # home-page links told apart by their fragments keep them as their keys
        ([item(n, link=f"{HOME}#episode-{n}", guid=f"e{n}") for n in range(3)], "", 3),
        # real repeats: the same item listed twice (one GUID)
        ([item(1, guid="a"), item(1, guid="a"), item(2, guid="b")], "", 2),
        # ... twice without GUIDs: same title and date
        ([item(1), item(1)], "", 1),
        # ... under two GUIDs in two sections: same title and date, one article
        ([item(1, guid="world-1"), item(1, guid="politics-1")], "", 1),
        # ... with tracking parameters and a fragment on one copy
        (
            [
                item(1, guid="a"),
                item(1, guid="a", link="https://news.example.com/story/1?utm_source=rss#top"),
            ],
            "",
            1,
        ),
        # ordinary articles: their own links
        ([item(n, guid=f"g{n}") for n in range(5)], "https://news.example.com/", 5),
    ],
    ids=[
        "podcast-home-page",
        "podcast-channel-link",
        "podcast-index-file",
        "aggregator-landing-page",
        "aggregator-guid-is-the-link",
        "aggregator-guid-is-the-link-respelled",
        "comments-on-one-page",
        "home-page-fragments",
        "same-item-twice",
        "same-item-twice-no-guid",
        "same-item-two-guids",
        "same-item-two-spellings",
        "ordinary-articles",
    ],
)
def test_a_document_keys_items_apart_unless_they_repeat(
    entries: list[ParsedEntry], site_url: str, expected: int
) -> None:
    assert distinct(article_keys(entries, feed_id=1, site_url=site_url)) == expected


def test_an_item_linking_to_a_home_page_is_keyed_by_its_feed_and_guid() -> None:
    alone = item(1, link="https://Podcast.example/?utm_source=rss", guid="ep-1")

    here = article_key(alone, feed_id=1)
    elsewhere = article_key(alone, feed_id=2)

    assert here.canonical_url == HOME
    assert here.key_hash == here.own_hash != here.link_hash
    assert here.key_hash != elsewhere.key_hash  # two feeds' items never merge on a home page


def test_an_item_linking_to_the_feed_itself_is_keyed_by_its_guid() -> None:
    keys = article_keys(
        [item(1, link="https://podcast.example/feed.xml", guid="ep-1")],
        feed_id=1,
        feed_url="https://podcast.example/feed.xml",
    )
    assert keys[0].key_hash == keys[0].own_hash
    assert keys[0].shared_link


def test_a_shared_link_is_marked_to_be_remembered_and_an_own_link_is_not() -> None:
    shared = article_keys([item(n, link=LANDING, guid=f"g{n}") for n in range(2)], feed_id=1)
    own = article_keys([item(n, guid=f"g{n}") for n in range(2)], feed_id=1)

    assert [key.shared_link for key in shared] == [True, True]
    assert [key.shared_link for key in own] == [False, False]
    assert all(key.key_hash == key.link_hash for key in own)


# --- the store, on SQLite and PostgreSQL ------------------------------------------------------


def new_feed(engine: Engine, url: str) -> int:
    with Session(engine) as session, session.begin():
        feed, _ = add_feed(session, url=url, interval=timedelta(minutes=15), now=NOW)
        return feed.id or 0


def save(
    engine: Engine,
    feed_id: int,
    entries: Sequence[ParsedEntry],
    *,
    hours: int = 0,
    **options: object,
) -> int:
    """Save in a transaction of its own; how many articles came back as new."""
    with Session(engine) as session, session.begin():
        saved = save_new_articles(
            session,
            feed_id=feed_id,
            entries=entries,
            now=NOW + timedelta(hours=hours),
            **options,  # type: ignore[arg-type]
        )
        return len(saved)


def count(engine: Engine, table: type[Article] | type[Sighting] | type[SharedLink]) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(table)).one()


def test_a_podcast_linking_every_episode_home_is_stored_whole(engine: Engine) -> None:
    feed = new_feed(engine, "https://podcast.example/feed.xml")

    assert save(engine, feed, podcast()) == 131
    assert save(engine, feed, podcast(), hours=1) == 0
    assert save(engine, feed, [*podcast(), item(131, link=HOME, guid="urn:uuid:new")], hours=2) == 1
    assert (count(engine, Article), count(engine, Sighting)) == (132, 132)


def test_an_aggregator_landing_page_is_remembered_when_the_sharing_is_out_of_view(
    engine: Engine,
) -> None:
    feed = new_feed(engine, "https://aggregator.example/feed.xml")
    first = [item(n, link=LANDING) for n in range(3)]
    assert save(engine, feed, first) == 3

    # The next document lists one of the three alone: nothing shows the link is shared.
    assert save(engine, feed, [first[1]], hours=1) == 0
    # A new item alone on that link is a new article, and stays one.
    newcomer = item(7, link=LANDING)
    assert save(engine, feed, [newcomer], hours=2) == 1
    assert save(engine, feed, [newcomer], hours=3) == 0
    assert count(engine, Article) == 4
    assert count(engine, SharedLink) == 1


def test_other_feeds_items_are_not_merged_on_a_shared_link(engine: Engine) -> None:
    aggregator = new_feed(engine, "https://aggregator.example/feed.xml")
    one = new_feed(engine, "https://one.example/feed.xml")
    two = new_feed(engine, "https://two.example/feed.xml")
    save(engine, aggregator, [item(n, link=LANDING) for n in range(3)])

    assert save(engine, one, [item(10, link=LANDING, guid="one-10")], hours=1) == 1
    assert save(engine, two, [item(20, link=LANDING, guid="two-20")], hours=1) == 1
    assert count(engine, Article) == 5


def test_two_feeds_items_linking_to_one_home_page_stay_apart(engine: Engine) -> None:
    one = new_feed(engine, "https://one.example/feed.xml")
    two = new_feed(engine, "https://two.example/feed.xml")

    assert save(engine, one, [item(1, link=HOME, guid="a")]) == 1
    assert save(engine, two, [item(2, link=HOME, guid="b")]) == 1
    assert count(engine, Article) == 2


def test_an_episode_stored_under_the_home_page_before_keeps_its_article(engine: Engine) -> None:
    """An archive from before the rule holds one episode under the home page's key."""
    feed = new_feed(engine, "https://podcast.example/feed.xml")
    episodes = podcast(5)
    old_style = article_key(episodes[2], feed_id=feed)
    merged = replace(old_style, key_hash=old_style.link_hash or "", own_hash="")
    with Session(engine) as session, session.begin():
        save_new_articles(session, feed_id=feed, entries=[episodes[2]], now=NOW, keys=[merged])

    assert save(engine, feed, episodes, hours=1) == 4
    assert save(engine, feed, episodes, hours=2) == 0
    with Session(engine) as session:
        kept = session.exec(select(Article).where(Article.key_hash == merged.key_hash)).one()
    assert kept.guid == "urn:uuid:episode-2"
    assert count(engine, Article) == 5


def test_a_feed_minting_guids_for_home_page_items_brings_nothing_back(engine: Engine) -> None:
    feed = new_feed(engine, "https://podcast.example/feed.xml")
    first = [item(n, link=HOME, guid=f"fetch-1-{n}") for n in range(3)]
    again = [item(n, link=HOME, guid=f"fetch-2-{n}") for n in range(3)]

    assert save(engine, feed, first) == 3
    assert save(engine, feed, again, hours=1) == 0
    assert count(engine, Article) == 3


@pytest.mark.parametrize(
    ("first", "second"),
    [
        # the same article in two feeds: one article, two sightings
        (
            item(1, guid="one-1"),
            item(1, guid="two-1", link="https://news.example.com/story/1?ocid=x"),
        ),
        # a feed minting a new GUID on every fetch for one link
        (item(1, guid="fetch-1"), item(1, guid="fetch-2")),
    ],
    ids=["same-article-two-feeds", "new-guid-every-fetch"],
)
def test_real_repeats_across_polls_are_one_article(
    engine: Engine, first: ParsedEntry, second: ParsedEntry
) -> None:
    one = new_feed(engine, "https://one.example/feed.xml")
    two = new_feed(engine, "https://two.example/feed.xml")
    save(engine, one, [first])

    assert save(engine, two if first.guid == "one-1" else one, [second], hours=1) == 0
    assert count(engine, Article) == 1


def test_two_links_in_a_legacy_encoding_are_two_articles(engine: Engine) -> None:
    """Two tags in cp1251 (``%CF%F3%F2%E8%ED``, ``%D8%EE%E9%E3%F3``) became one U+FFFD key."""
    feed = new_feed(engine, "https://example.ru/rss")
    entries = [
        item(1, link="https://example.ru/news?tag=%CF%F3%F2%E8%ED"),
        item(2, link="https://example.ru/news?tag=%D8%EE%E9%E3%F3"),
    ]

    assert save(engine, feed, entries) == 2


# --- real feeds of the corpus -----------------------------------------------------------------

CORPUS = Path(os.environ.get("MONITOR_CORPUS") or Path(__file__).parents[3] / "shared" / "corpus")


# Guards of what already worked and must keep working: items on one page told apart by their
# fragments (now also on the channel's own page), and real repeats within one document.
@pytest.mark.parametrize(
    ("name", "items"),
    [
        ("1d58ba8460bcc2d0", 30),  # a journal: entries on the channel's page, one fragment each
        ("2c95f93d868f5c01", 43),  # a link log: items on one list page, one fragment each
        ("18d1bc71cc221963", 10),  # comments on one page, some by the same author
        ("72fea1ebfd02e90a", 11),  # a news feed listing three of its stories four times
        ("72d1083fa3130282", 62),  # a podcast listing two episodes twice
    ],
)
def test_corpus_feeds_keep_every_distinct_item(engine: Engine, name: str, items: int) -> None:
    path = CORPUS / "feeds" / name
    if not path.is_file():
        pytest.skip(f"feed corpus not found at {CORPUS}: set MONITOR_CORPUS to run this test")
    parsed = parse_feed(path.read_bytes(), url=f"https://corpus.example/{name}")
    feed = new_feed(engine, f"https://corpus.example/{name}")

    assert save(engine, feed, parsed.entries, site_url=parsed.site_url) == items
    assert save(engine, feed, parsed.entries, site_url=parsed.site_url, hours=1) == 0


# --- real polls from 127.0.0.1 ----------------------------------------------------------------


def podcast_rss(count: int, *, first: int = 0) -> bytes:
    """An RSS podcast whose episodes all link to the show's home page."""
    items = "".join(
        f"<item><title>Episode {n}: guest number {n}</title><link>{HOME}</link>"
        f'<guid isPermaLink="false">urn:uuid:episode-{n}</guid>'
        f"<pubDate>{format_datetime(NOW - timedelta(hours=n))}</pubDate>"
        f"<description>Show notes {n}{' on the Kremlin' if n % 10 == 0 else ''}.</description>"
        "</item>"
        for n in range(first, first + count)
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Weekly</title>'
        f"<link>{HOME}</link>{items}</channel></rss>"
    ).encode()


@pytest.mark.parametrize("processes", [0, 1], ids=["in-thread", "worker-process"])
def test_a_polled_podcast_keeps_all_its_episodes_and_their_matches(
    engine: Engine, feed_server: FeedServer, processes: int
) -> None:
    url = feed_server.add("/podcast.xml", podcast_rss(131))
    new_feed(engine, url)
    with Session(engine) as session, session.begin():
        topic_id = add_topic(session, "kremlin", "Kremlin").id
    settings = Settings(
        fetch=FetchSettings(allow_networks=["127.0.0.0/8"], parse_processes=processes)
    )

    [result] = asyncio.run(poll_feeds(engine, settings, now=NOW, rng=random.Random(1)))

    assert (result.status, result.new_articles, result.matches) == (RefreshStatus.UPDATED, 131, 14)
    with Session(engine) as session:
        matched = session.exec(
            select(Article.title).join(Match).where(Match.topic_id == topic_id)
        ).all()
    assert sorted(matched) == sorted(f"Episode {n}: guest number {n}" for n in range(0, 131, 10))
    assert count(engine, Article) == 131
