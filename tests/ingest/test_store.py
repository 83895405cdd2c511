"""save_new_articles on SQLite and PostgreSQL: only what is new comes back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, func, select

from monitor.ingest.canonical import article_keys
from monitor.ingest.sketch import signature_bytes, sketch_entries
from monitor.ingest.store import DEFAULT_RULES, KEYS_PER_STATEMENT, save_new_articles
from monitor.models import Article, Sighting, Story
from monitor.sources.feeds import add_feed
from monitor.sources.parse import ParsedEntry

NOW = datetime(2024, 9, 10, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)


def story(n: int, *, link: str | None = None, guid: str | None = None) -> ParsedEntry:
    """Entry number ``n``, linked to its own page unless told otherwise."""
    return ParsedEntry(
        guid=guid,
        link=link if link is not None else f"https://news.example.com/story/{n}",
        title=f"Story {n}",
        summary=f"Summary of story {n}.",
        content="",
        author="Desk",
        published_at=NOW - timedelta(minutes=n),
        updated_at=None,
        language="en",
    )


def new_feed(engine: Engine, url: str) -> int:
    with Session(engine) as session:
        feed, _ = add_feed(session, url=url, interval=timedelta(minutes=15), now=NOW)
        session.commit()
        assert feed.id is not None
        return feed.id


def save(
    engine: Engine, feed_id: int, entries: Sequence[ParsedEntry], now: datetime = NOW
) -> list[str]:
    """Save in a transaction of its own; the titles of the articles that came back as new."""
    with Session(engine) as session, session.begin():
        articles = save_new_articles(session, feed_id=feed_id, entries=entries, now=now)
        return [article.title for article in articles]


def count(engine: Engine, table: type[Article] | type[Sighting]) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(table)).one()


def test_new_entries_come_back_as_articles(engine: Engine) -> None:
    feed_id = new_feed(engine, "https://news.example.com/rss")

    assert save(engine, feed_id, [story(1), story(2)]) == ["Story 1", "Story 2"]

    with Session(engine) as session:
        article = session.exec(select(Article).where(Article.title == "Story 1")).one()
    assert article.canonical_url == article.url == "https://news.example.com/story/1"
    assert (article.feed_id, article.first_seen_at) == (feed_id, NOW)
    assert article.published_at == NOW - timedelta(minutes=1)
    assert (article.summary, article.author, article.language) == (
        "Summary of story 1.",
        "Desk",
        "en",
    )


def test_saving_the_same_entries_again_returns_nothing(engine: Engine) -> None:
    feed_id = new_feed(engine, "https://news.example.com/rss")
    save(engine, feed_id, [story(1), story(2)])

    assert save(engine, feed_id, [story(1), story(2)], now=LATER) == []
    assert (count(engine, Article), count(engine, Sighting)) == (2, 2)


def test_only_the_new_ones_of_a_mixed_batch_come_back(engine: Engine) -> None:
    feed_id = new_feed(engine, "https://news.example.com/rss")
    save(engine, feed_id, [story(1), story(2)])

    assert save(engine, feed_id, [story(3), story(1), story(4)], now=LATER) == [
        "Story 3",
        "Story 4",
    ]
    assert count(engine, Article) == 4


def test_repeated_key_within_one_batch_is_stored_once(engine: Engine) -> None:
    feed_id = new_feed(engine, "https://news.example.com/rss")
    first = story(1, link="https://news.example.com/story/1?utm_source=rss")
    repeat = story(1, link="https://NEWS.example.com/story/1#comments")

    assert save(engine, feed_id, [first, repeat, story(2)]) == ["Story 1", "Story 2"]
    assert (count(engine, Article), count(engine, Sighting)) == (2, 2)


def test_entries_without_links_are_kept_apart_by_guid_or_content(engine: Engine) -> None:
    feed_id = new_feed(engine, "https://news.example.com/rss")
    entries = [
        story(1, link="", guid="item-1"),
        story(2, link="", guid="item-2"),
        story(3, link=""),
        story(4, link=""),
    ]

    assert len(save(engine, feed_id, entries)) == 4
    assert save(engine, feed_id, entries, now=LATER) == []


def test_same_url_in_two_feeds_is_one_article_seen_twice(engine: Engine) -> None:
    world = new_feed(engine, "https://news.example.com/world.rss")
    business = new_feed(engine, "https://news.example.com/business.rss")
    save(engine, world, [story(1)])

    assert (
        save(
            engine,
            business,
            [story(1, link="https://news.example.com/story/1?ocid=biz")],
            now=LATER,
        )
        == []
    )

    with Session(engine) as session:
        article = session.exec(select(Article)).one()
        sightings = session.exec(select(Sighting).order_by(col(Sighting.feed_id))).all()
    assert article.feed_id == world
    assert [(s.feed_id, s.article_id) for s in sightings] == [
        (world, article.id),
        (business, article.id),
    ]
    assert [(s.first_seen_at, s.last_seen_at) for s in sightings] == [(NOW, NOW), (LATER, LATER)]


def test_seeing_an_article_again_updates_last_seen_only(engine: Engine) -> None:
    feed_id = new_feed(engine, "https://news.example.com/rss")
    save(engine, feed_id, [story(1)])

    save(engine, feed_id, [story(1)], now=LATER)

    with Session(engine) as session:
        sighting = session.exec(select(Sighting)).one()
        article = session.exec(select(Article)).one()
    assert (sighting.first_seen_at, sighting.last_seen_at) == (NOW, LATER)
    assert article.first_seen_at == NOW


def test_more_than_one_batch_of_entries(engine: Engine) -> None:
    feed_id = new_feed(engine, "https://news.example.com/rss")
    total = KEYS_PER_STATEMENT + 7
    entries = [story(n) for n in range(total)]

    new = save(engine, feed_id, entries)

    assert sorted(new) == sorted(f"Story {n}" for n in range(total))
    assert (count(engine, Article), count(engine, Sighting)) == (total, total)
    assert save(engine, feed_id, [*entries, story(total)], now=LATER) == [f"Story {total}"]


def test_empty_batch_stores_nothing(engine: Engine) -> None:
    feed_id = new_feed(engine, "https://news.example.com/rss")

    assert save(engine, feed_id, []) == []
    assert count(engine, Sighting) == 0


def stored(engine: Engine) -> list[Article]:
    with Session(engine) as session:
        return list(session.exec(select(Article).order_by(col(Article.id))).all())


@pytest.mark.parametrize(
    ("change", "title", "previous"),
    [
        ({"title": "Story 1, updated"}, "Story 1, updated", "Story 1"),
        ({"summary": "A longer summary of story 1."}, "Story 1", None),
        ({"title": "Story 1, updated", "summary": "New text."}, "Story 1, updated", "Story 1"),
    ],
)
def test_an_edit_updates_the_article_and_is_not_news(
    engine: Engine, change: dict[str, str], title: str, previous: str | None
) -> None:
    feed_id = new_feed(engine, "https://news.example.com/rss")
    save(engine, feed_id, [story(1)])

    again = save(engine, feed_id, [replace(story(1), **change)], now=LATER)  # type: ignore[arg-type]

    [article] = stored(engine)
    assert again == []
    assert (article.title, article.previous_title, article.updated_at) == (title, previous, LATER)
    assert article.first_seen_at == NOW


def test_a_second_edit_keeps_the_title_before_it(engine: Engine) -> None:
    feed_id = new_feed(engine, "https://news.example.com/rss")
    save(engine, feed_id, [story(1)])
    save(engine, feed_id, [replace(story(1), title="Second")], now=LATER)
    save(engine, feed_id, [replace(story(1), title="Third")], now=LATER + timedelta(hours=1))

    [article] = stored(engine)
    assert (article.title, article.previous_title) == ("Third", "Second")


def test_an_unchanged_entry_is_no_edit(engine: Engine) -> None:
    feed_id = new_feed(engine, "https://news.example.com/rss")
    save(engine, feed_id, [story(1)])
    save(engine, feed_id, [story(1)], now=LATER)

    [article] = stored(engine)
    assert (article.previous_title, article.updated_at) == (None, None)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        # a link: the GUID does not matter
        (story(1, guid="a-1"), story(1, guid="b-2")),
        # no link: the same text from the same feed under a new GUID
        (story(1, link="", guid="a-1"), story(1, link="", guid="b-2")),
    ],
)
def test_a_feed_changing_guids_yields_one_article(
    engine: Engine, first: ParsedEntry, second: ParsedEntry
) -> None:
    feed_id = new_feed(engine, "https://news.example.com/rss")
    save(engine, feed_id, [first])

    assert save(engine, feed_id, [second], now=LATER) == []
    assert count(engine, Article) == 1


def test_the_same_link_from_two_feeds_is_one_article_in_one_story(engine: Engine) -> None:
    one = new_feed(engine, "https://one.example/rss")
    two = new_feed(engine, "https://two.example/rss")
    save(engine, one, [story(1)])
    save(engine, two, [story(1, link="https://news.example.com/story/1?utm_source=two")], LATER)

    with Session(engine) as session:
        sightings = session.exec(select(Sighting).order_by(col(Sighting.feed_id))).all()
        [article] = session.exec(select(Article)).all()
        story_row = session.get(Story, article.story_id)
    assert [(s.feed_id, s.first_seen_at) for s in sightings] == [(one, NOW), (two, LATER)]
    assert story_row is not None
    assert (story_row.lead_article_id, story_row.article_count, story_row.outlet_count) == (
        article.id,
        1,
        2,
    )


TEXTS = [
    "The council approved the budget after a long debate about schools, roads and the new "
    "library that will open next spring in the old market hall.",
    "A second version of the first story with other words about harbours, ferries and the "
    "weather that kept the boats in port for most of the week.",
    "Firefighters put out a blaze at a warehouse near the port early on Sunday morning, and "
    "nobody was hurt, the fire service said in a statement.",
]


@pytest.mark.parametrize("precomputed", [False, True], ids=["inline", "precomputed"])
def test_each_new_article_gets_the_sketch_of_the_first_entry_of_its_key(
    engine: Engine, precomputed: bool
) -> None:
    feed_id = new_feed(engine, "https://news.example.com/rss")
    # The same item listed twice (one GUID), its second copy retitled and rewritten.
    entries = [
        replace(story(1, guid="s-1"), content=TEXTS[0]),
        replace(story(1, guid="s-1"), title="Story 1, again", content=TEXTS[1]),
        replace(story(2), content=TEXTS[2]),
    ]
    items = [(entry.title, entry.content) for entry in entries]
    sketches = sketch_entries(items, DEFAULT_RULES)

    with Session(engine) as session, session.begin():
        saved = save_new_articles(
            session,
            feed_id=feed_id,
            entries=entries,
            now=NOW,
            sketches=sketches if precomputed else None,
        )
        stored = {article.title: article.signature for article in saved}

    first, _repeat, other = sketches
    assert first is not None
    assert other is not None
    assert stored == {
        "Story 1": signature_bytes(first.signature),
        "Story 2": signature_bytes(other.signature),
    }


@pytest.mark.parametrize("precomputed", [False, True], ids=["inline", "precomputed"])
def test_keys_computed_beforehand_store_what_keys_computed_here_store(
    engine: Engine, precomputed: bool
) -> None:
    feed_id = new_feed(engine, "https://news.example.com/rss")
    entries = [
        replace(story(1), link="https://news.example.com/a?utm_source=rss#top"),
        replace(story(1), link="https://news.example.com/a"),
        replace(story(3), link=None, guid="urn:three"),
    ]
    keys = article_keys(entries, feed_id=feed_id)

    with Session(engine) as session, session.begin():
        saved = save_new_articles(
            session,
            feed_id=feed_id,
            entries=entries,
            now=NOW,
            keys=keys if precomputed else None,
        )
        stored = sorted((a.key_hash, a.canonical_url, a.title) for a in saved)

    # The first two share a canonical URL: one article, the first entry's.
    assert stored == sorted(
        [
            (keys[0].key_hash, "https://news.example.com/a", entries[0].title),
            (keys[2].key_hash, None, entries[2].title),
        ]
    )
