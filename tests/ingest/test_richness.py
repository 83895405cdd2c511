"""One URL, several feeds, several texts: the article keeps the richer one and stops flipping.

The defect: nine articles carried by two feeds with different summaries had ``updated_at``
rewritten on every full re-parse, each feed's text replacing the other's in turn.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from monitor.ingest.richness import StoredText, TextChange, text_change, text_richness
from monitor.ingest.store import save_new_articles
from monitor.models import Article, Sighting
from monitor.operations import poll_feeds
from monitor.settings import FetchSettings, Settings
from monitor.sources.feeds import add_feed
from monitor.sources.parse import ParsedEntry
from tests.utils.feedserver import FeedServer

NOW = datetime(2024, 9, 10, 12, 0, tzinfo=UTC)
OWN, OTHER = 1, 2
SHORT = "Ministers met on Monday."
LONG = (
    "Ministers met on Monday to agree the budget, after a week of talks that ran late into the "
    "night and a vote that was twice put off."
)


@pytest.mark.parametrize(
    ("stored", "feed_id", "content_hash", "richness", "expected"),
    [
        # its own feed: unchanged text is no edit, whatever the article shows now
        (StoredText(OWN, "a", None, 100), OWN, "a", 100, TextChange.NONE),
        (StoredText(OWN, "b", "a", 300), OWN, "a", 100, TextChange.NONE),
        # its own feed changed it: an edit, longer or shorter
        (StoredText(OWN, "a", None, 100), OWN, "c", 50, TextChange.EDIT),
        (StoredText(OWN, "b", "a", 300), OWN, "c", 50, TextChange.EDIT),
        # another feed: a richer text enriches, a poorer or equal one changes nothing
        (StoredText(OWN, "a", None, 100), OTHER, "x", 300, TextChange.ENRICH),
        (StoredText(OWN, "a", None, 100), OTHER, "x", 50, TextChange.NONE),
        (StoredText(OWN, "a", None, 100), OTHER, "x", 100, TextChange.NONE),
        (StoredText(OWN, "a", None, 100), OTHER, "a", 300, TextChange.NONE),
    ],
)
def test_text_change(
    stored: StoredText, feed_id: int, content_hash: str, richness: int, expected: TextChange
) -> None:
    assert text_change(stored, feed_id=feed_id, content_hash=content_hash, richness=richness) == (
        expected
    )


def test_richness_is_the_longer_of_summary_and_content() -> None:
    assert text_richness(SHORT, "") == len(SHORT)
    assert text_richness(SHORT, LONG) == text_richness(LONG, "") == len(LONG)


def entry(title: str, summary: str) -> ParsedEntry:
    return ParsedEntry(
        guid=None,
        link="https://news.example.com/budget",
        title=title,
        summary=summary,
        content="",
        author="",
        published_at=NOW - timedelta(hours=1),
        updated_at=None,
    )


def feeds(engine: Engine) -> tuple[int, int]:
    with Session(engine) as session, session.begin():
        hour = timedelta(hours=1)
        one, _ = add_feed(session, url="https://one.example/rss", interval=hour, now=NOW)
        two, _ = add_feed(session, url="https://two.example/rss", interval=hour, now=NOW)
        return one.id or 0, two.id or 0


def save(engine: Engine, feed_id: int, item: ParsedEntry, at: datetime) -> None:
    with Session(engine) as session, session.begin():
        save_new_articles(session, feed_id=feed_id, entries=[item], now=at)


def article(engine: Engine) -> Article:
    with Session(engine) as session:
        return session.exec(select(Article)).one()


@pytest.mark.parametrize("richer_first", [False, True], ids=["teaser-first", "full-text-first"])
def test_two_feeds_with_different_texts_settle_on_the_richer(
    engine: Engine, richer_first: bool
) -> None:
    one, two = feeds(engine)
    first, second = (LONG, SHORT) if richer_first else (SHORT, LONG)
    hours = iter(range(1, 100))

    for _ in range(5):  # five full re-parses of both feeds
        save(engine, one, entry("Budget agreed", first), NOW + timedelta(hours=next(hours)))
        save(
            engine, two, entry("Budget agreed at last", second), NOW + timedelta(hours=next(hours))
        )

    stored = article(engine)
    assert stored.summary == LONG
    assert stored.title == "Budget agreed"  # another feed never retitles it
    # Once, when the second feed's richer text came; never when the first was richer.
    assert stored.updated_at == (None if richer_first else NOW + timedelta(hours=2))
    assert stored.previous_title is None
    with Session(engine) as session:
        assert session.exec(select(Sighting.feed_id).order_by(col(Sighting.feed_id))).all() == [
            one,
            two,
        ]


def test_an_edit_by_its_own_feed_still_counts_after_a_richer_copy(engine: Engine) -> None:
    one, two = feeds(engine)
    save(engine, one, entry("Budget agreed", SHORT), NOW)
    save(engine, two, entry("Budget agreed", LONG), NOW + timedelta(hours=1))

    corrected = "Ministers met on Tuesday."
    save(engine, one, entry("Budget agreed, corrected", corrected), NOW + timedelta(hours=2))

    stored = article(engine)
    assert (stored.title, stored.summary) == ("Budget agreed, corrected", corrected)
    assert (stored.previous_title, stored.updated_at) == ("Budget agreed", NOW + timedelta(hours=2))


def rss(title: str, summary: str, extra: int) -> bytes:
    """A feed carrying the shared article and ``extra`` items of its own, so its body changes."""
    own = "".join(
        f"<item><title>Other {n}</title><link>https://news.example.com/other-{n}</link></item>"
        for n in range(extra)
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Feed</title>'
        f"<item><title>{title}</title><link>https://news.example.com/budget</link>"
        f"<pubDate>{format_datetime(NOW)}</pubDate><description>{summary}</description></item>"
        f"{own}</channel></rss>"
    ).encode()


def test_polls_of_two_real_feeds_stop_rewriting_the_article(
    engine: Engine, feed_server: FeedServer
) -> None:
    settings = Settings(fetch=FetchSettings(allow_networks=["127.0.0.0/8"], parse_processes=0))
    urls = [feed_server.add("/one.xml", rss("Budget", SHORT, 0))]
    urls.append(feed_server.add("/two.xml", rss("Budget", LONG, 0)))
    with Session(engine) as session, session.begin():
        for url in urls:
            add_feed(session, url=url, interval=timedelta(minutes=15), now=NOW)
    polled = []
    for round_ in range(4):
        # Each round both bodies change (one more item), so both are parsed in full again.
        feed_server.add("/one.xml", rss("Budget", SHORT, round_))
        feed_server.add("/two.xml", rss("Budget", LONG, round_))
        at = NOW + timedelta(hours=round_)
        asyncio.run(poll_feeds(engine, settings, now=at, rng=random.Random(round_)))
        with Session(engine) as session:
            polled.append(
                session.exec(
                    select(Article.updated_at).where(
                        Article.url == "https://news.example.com/budget"
                    )
                ).one()
            )

    # Set at most once, in the first round, when the second feed's text met the first's.
    assert len(set(polled)) == 1
    assert polled[0] in (None, NOW)
    with Session(engine) as session:
        stored = session.exec(
            select(Article).where(Article.url == "https://news.example.com/budget")
        ).one()
    assert stored.summary == LONG
