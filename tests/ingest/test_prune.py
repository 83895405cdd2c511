"""Retention: old articles go, their keys stay, matched ones are kept longer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from monitor.ingest.prune import RetentionRules, prune_archive
from monitor.ingest.store import save_new_articles
from monitor.models import Article, Match, Sighting, Story, StoryBand, Tombstone, Topic
from monitor.sources.feeds import add_feed
from monitor.sources.parse import ParsedEntry

NOW = datetime(2024, 9, 10, 12, 0, tzinfo=UTC)
RULES = RetentionRules(older_than=timedelta(days=90), matched_older_than=timedelta(days=365))
BODY = (
    "The regional water authority said on Monday that reservoirs had fallen to their lowest "
    "level in a decade after the driest summer on record, and asked households to cut use."
)


def entry(n: int, *, body: str = BODY) -> ParsedEntry:
    return ParsedEntry(
        guid=None,
        link=f"https://news.example.com/{n}",
        title=f"Water story {n}",
        summary="",
        content=body,
        author="",
        published_at=None,
        updated_at=None,
    )


def save(engine: Engine, feed_id: int, entries: list[ParsedEntry], now: datetime) -> list[str]:
    with Session(engine) as session, session.begin():
        return [
            a.title for a in save_new_articles(session, feed_id=feed_id, entries=entries, now=now)
        ]


def feed(engine: Engine, url: str) -> int:
    with Session(engine) as session:
        row, _ = add_feed(session, url=url, interval=timedelta(minutes=15), now=NOW)
        session.commit()
        assert row.id is not None
        return row.id


def match(engine: Engine, title: str) -> None:
    with Session(engine) as session, session.begin():
        topic = Topic(slug="water", name="Water", query="water")
        session.add(topic)
        session.flush()
        article = session.exec(select(Article).where(Article.title == title)).one()
        session.add(
            Match(article_id=article.id or 0, topic_id=topic.id or 0, topic_version=1, score=1.0)
        )


def titles(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return list(session.exec(select(Article.title).order_by(col(Article.id))).all())


@pytest.mark.parametrize(
    ("age_days", "matched", "kept"),
    [
        (10, False, True),
        (89, False, True),
        (91, False, False),
        (91, True, True),
        (364, True, True),
        (366, True, False),
    ],
)
def test_prune_removes_by_age_and_keeps_matched_longer(
    engine: Engine, age_days: int, matched: bool, kept: bool
) -> None:
    feed_id = feed(engine, "https://news.example.com/rss")
    save(engine, feed_id, [entry(1)], NOW - timedelta(days=age_days))
    if matched:
        match(engine, "Water story 1")

    result = prune_archive(engine, RULES, now=NOW)

    assert titles(engine) == (["Water story 1"] if kept else [])
    assert result.articles == (0 if kept else 1)
    assert result.matched == (1 if matched and not kept else 0)


def test_a_pruned_item_listed_again_does_not_come_back(engine: Engine) -> None:
    feed_id = feed(engine, "https://news.example.com/rss")
    save(engine, feed_id, [entry(1), entry(2)], NOW - timedelta(days=100))
    prune_archive(engine, RULES, now=NOW)

    again = save(engine, feed_id, [entry(1), entry(3, body="A different story entirely.")], NOW)

    assert again == ["Water story 3"]
    with Session(engine) as session:
        assert len(session.exec(select(Tombstone)).all()) == 2
        assert (
            session.exec(select(Sighting)).all()[0].article_id
            == session.exec(select(Article.id)).one()
        )


def test_prune_re_leads_and_recounts_stories(engine: Engine) -> None:
    wire = feed(engine, "https://wire.example/rss")
    paper = feed(engine, "https://paper.example/rss")
    save(engine, wire, [entry(1)], NOW - timedelta(days=95))
    save(engine, paper, [entry(2)], NOW - timedelta(days=94))
    with Session(engine) as session:
        [story] = session.exec(select(Story)).all()
        assert (story.article_count, story.outlet_count) == (2, 2)
    later = RetentionRules(older_than=timedelta(days=94, hours=12))

    result = prune_archive(engine, later, now=NOW)

    with Session(engine) as session:
        [story] = session.exec(select(Story)).all()
        survivor = session.exec(select(Article)).one()
        bands = session.exec(select(StoryBand)).all()
    assert (result.articles, result.stories) == (1, 1)
    assert (story.lead_article_id, story.title) == (survivor.id, "Water story 2")
    assert (story.article_count, story.outlet_count) == (1, 1)
    # Index rows older than the story window go too: lookups never reach them.
    assert bands == []

    prune_archive(engine, RetentionRules(older_than=timedelta(days=1)), now=NOW)
    with Session(engine) as session:
        assert session.exec(select(Story)).all() == []


@pytest.mark.parametrize(("older_than_days", "gone"), [(1, True), (30, False)])
def test_index_rows_go_with_an_article_pruned_inside_the_story_window(
    engine: Engine, older_than_days: int, gone: bool
) -> None:
    feed_id = feed(engine, "https://news.example.com/rss")
    save(engine, feed_id, [entry(1)], NOW - timedelta(days=3))
    with Session(engine) as session:
        assert session.exec(select(StoryBand)).all() != []

    rules = RetentionRules(older_than=timedelta(days=older_than_days))
    prune_archive(engine, rules, now=NOW)

    with Session(engine) as session:
        articles = session.exec(select(Article)).all()
        bands = session.exec(select(StoryBand)).all()
    # Three days old: inside the 7-day window, so its index rows are still there unless the
    # article itself went (retention shorter than the window).
    assert (articles == [], bands == []) == (gone, gone)
