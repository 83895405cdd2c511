"""Tagging stored articles with the enabled topics, storing matches once, retagging, backtests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from monitor.models import Article, Match, Topic
from monitor.operations import retag_pending_topics
from monitor.settings import Settings, TopicsSettings
from monitor.topics.catalog import apply_changes, require_topic
from monitor.topics.matcher import ArticleView
from monitor.topics.query import parse_query
from monitor.topics.tagging import (
    article_view,
    backtest,
    load_matcher,
    retag_topic,
    save_matches,
    tag_articles,
    topics_to_retag,
)
from tests.utils import factories

NOW = datetime(2024, 9, 9, 6, 0, tzinfo=UTC)


def setup_session(engine: Engine) -> Session:
    """A session whose objects stay readable after commit, for building test data."""
    return Session(engine, expire_on_commit=False)


def add_topic(session: Session, slug: str, query: str, *, enabled: bool = True) -> Topic:
    return factories.add_topic(session, slug, query, enabled=enabled, version=3)


def add_article(
    session: Session, title: str, *, summary: str = "", content: str = "", seen: datetime = NOW
) -> Article:
    return factories.add_article(session, title, seen=seen, summary=summary, content=content)


def view(title: str, text: str = "") -> ArticleView:
    return ArticleView(title=title, text=text)


def test_load_matcher_uses_only_enabled_topics(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        add_topic(session, "banks", '"central bank"')
        add_topic(session, "votes", "election", enabled=False)
        add_topic(session, "trolls", '"troll farm*"')

    with Session(engine) as session:
        matcher = load_matcher(session)

    assert sorted(rule.slug for rule in matcher.rules) == ["banks", "trolls"]
    found = matcher.match(view("Central bank election, troll farms"))
    assert sorted(hit.slug for hit in found) == ["banks", "trolls"]


def test_load_matcher_carries_topic_id_and_version(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        topic_id = add_topic(session, "banks", '"central bank"').id

    with Session(engine) as session:
        [hit] = load_matcher(session).match(view("Central bank news"))

    assert (hit.topic_id, hit.slug, hit.version) == (topic_id, "banks", 3)


def test_article_view_reads_title_summary_content_and_source() -> None:
    article = Article(
        key_hash="k", url="https://www.bbc.co.uk/news/1", feed_id=1, title="Title",
        summary="Summary.", content="Content.", author="Ada", language="en-GB", content_hash="h",
    )  # fmt: skip

    seen = article_view(article, feed_title="BBC News", feed_url="https://feeds.bbc.co.uk/x")

    assert seen == ArticleView(
        title="Title", text="Summary.\n\nContent.", author="Ada", url="https://www.bbc.co.uk/news/1",
        feed_title="BBC News", feed_url="https://feeds.bbc.co.uk/x", language="en-GB",
    )  # fmt: skip


def test_tag_articles_searches_title_summary_and_content(engine: Engine) -> None:
    with setup_session(engine) as session, session.begin():
        add_topic(session, "banks", '"central bank" OR "interest rate*"')
        add_topic(session, "votes", "election")
        in_title = add_article(
            session, "Central bank raises interest rates", summary="Central bank"
        )
        in_summary = add_article(session, "Markets", summary="the election is near")
        in_content = add_article(session, "Weather", content="after the election")
        nowhere = add_article(session, "Football", summary="a derby", content="goals")
        matcher = load_matcher(session)

        found = tag_articles(matcher, [in_title, in_summary, in_content, nowhere])

    assert [(m.article_id, m.hit.slug, m.hit.score, m.hit.terms) for m in found] == [
        (in_title.id, "banks", 7.0, ("central bank", "interest rate*")),
        (in_summary.id, "votes", 1.0, ("election",)),
        (in_content.id, "votes", 1.0, ("election",)),
    ]


def test_tag_articles_passes_the_feed_to_source_fields(engine: Engine) -> None:
    with setup_session(engine) as session, session.begin():
        add_topic(session, "reuters-votes", "election AND feed:reuters")
        article = add_article(session, "Election day")
        matcher = load_matcher(session)

        from_reuters = tag_articles(matcher, [article], feed_title="Reuters World")
        from_elsewhere = tag_articles(matcher, [article], feed_title="Example News")

    assert [m.hit.slug for m in from_reuters] == ["reuters-votes"]
    assert from_elsewhere == []


def test_save_matches_stores_each_match_once(engine: Engine) -> None:
    with setup_session(engine) as session, session.begin():
        banks = add_topic(session, "banks", '"central bank"')
        votes = add_topic(session, "votes", "election")
        both = add_article(session, "Central bank warns before election")
        one = add_article(session, "Election day")
        matches = tag_articles(load_matcher(session), [both, one])

    with Session(engine) as session, session.begin():
        first = save_matches(session, matches, now=NOW)
    with Session(engine) as session, session.begin():
        second = save_matches(session, matches, now=NOW)
        third = save_matches(session, tag_articles(load_matcher(session), [both]), now=NOW)

    assert (first, second, third) == (3, 0, 0)
    with Session(engine) as session:
        stored = {
            (m.article_id, m.topic_id): (m.topic_version, m.score, m.terms, m.matched_at)
            for m in session.exec(select(Match)).all()
        }
    assert stored == {
        (both.id, banks.id): (3, 3.0, ["central bank"], NOW),
        (both.id, votes.id): (3, 3.0, ["election"], NOW),
        (one.id, votes.id): (3, 3.0, ["election"], NOW),
    }


def test_save_no_matches(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        assert save_matches(session, [], now=NOW) == 0


SUMMARY = "Officials said Russia’s Kremlin ran a covert campaign."
CONTENT = (
    "Analysts found the Kremlin network had grown. " * 12
    + "They said Russian operatives tried to influence the election in Georgia."
)


def test_stored_spans_and_snippet_point_at_the_matched_words(engine: Engine) -> None:
    with setup_session(engine) as session, session.begin():
        add_topic(session, "kremlin", '(kremlin OR russia*) AND "influence the election"')
        article = add_article(
            session, "Kremlin denies influence operation", summary=SUMMARY, content=CONTENT
        )
        save_matches(session, tag_articles(load_matcher(session), [article]), now=NOW)

    with Session(engine) as session:
        match = session.exec(select(Match)).one()
    text = article_view(article).text
    fields = {"title": article.title, "text": text}
    words = [(field, fields[field][start:end]) for field, start, end in match.spans]
    assert words[0] == ("title", "Kremlin")
    assert {word.lower() for _, word in words} == {
        "kremlin",
        "russia",
        "russian",
        "influence the election",
    }
    assert ("text", "influence the election") in words
    assert ("text", "Russia") in words  # the word, without its curly apostrophe and s
    assert set(match.terms) == {"kremlin", "russia*", "influence the election"}
    # The snippet is a short piece of the text around the matched words, marked where they are.
    assert 0 < len(match.snippet) <= 260
    highlighted = [match.snippet[start:end] for start, end in match.snippet_spans]
    assert highlighted
    assert {word.lower() for word in highlighted} <= {
        "kremlin",
        "russia",
        "russian",
        "influence the election",
    }
    # Every text span inside the snippet is highlighted there, and nothing else is.
    body = match.snippet.removeprefix("… ").removesuffix(" …")
    offset = text.replace("\n", " ").index(body) - match.snippet.index(body)
    assert sorted(match.snippet_spans) == sorted(
        [start - offset, end - offset]
        for field, start, end in match.spans
        if field == "text" and start - offset >= 0 and end - offset <= len(match.snippet)
    )


# --- retagging -----------------------------------------------------------------------------

WINDOW = timedelta(days=30)
OLD = NOW - WINDOW - timedelta(days=1)
RECENT = NOW - timedelta(days=2)


def matches_of(engine: Engine, slug: str) -> dict[str, int]:
    """Article title -> the topic version that matched it."""
    with Session(engine) as session:
        rows = session.exec(
            select(Article.title, Match.topic_version)
            .join(Match, col(Match.article_id) == Article.id)
            .join(Topic, col(Topic.id) == Match.topic_id)
            .where(Topic.slug == slug)
        ).all()
    return dict(rows)


def tag_everything(engine: Engine) -> None:
    """Tag every stored article as polling would have when it arrived."""
    with Session(engine) as session, session.begin():
        articles = session.exec(select(Article)).all()
        save_matches(session, tag_articles(load_matcher(session), articles), now=NOW)


@pytest.fixture
def archive(engine: Engine) -> Engine:
    """A topic at version 1 with its matches, over articles old and recent."""
    with Session(engine) as session, session.begin():
        factories.add_topic(session, "votes", "election")
        factories.add_topic(session, "banks", '"central bank"')
        add_article(session, "Old election news", seen=OLD)
        add_article(session, "Old referendum news", seen=OLD)
        add_article(session, "Recent election news", seen=RECENT)
        add_article(session, "Recent referendum news", seen=RECENT)
        add_article(session, "Recent central bank news, before the election", seen=RECENT)
    tag_everything(engine)
    return engine


def change_query(engine: Engine, slug: str, query: str) -> None:
    with Session(engine) as session, session.begin():
        topic = require_topic(session, slug)
        apply_changes(topic, query=query, now=NOW)
        session.add(topic)


def test_retag_topic_replaces_window_matches_and_keeps_older_ones(archive: Engine) -> None:
    assert matches_of(archive, "votes") == {
        "Old election news": 1,
        "Recent election news": 1,
        "Recent central bank news, before the election": 1,
    }
    change_query(archive, "votes", "referendum OR (election AND NOT bank)")

    with Session(archive) as session, session.begin():
        topic = require_topic(session, "votes")
        assert topics_to_retag(session) == [topic]
        matched = retag_topic(session, topic, since=NOW - WINDOW, now=NOW)

    assert matched == 2
    assert matches_of(archive, "votes") == {
        # Before the window: kept, made by version 1.
        "Old election news": 1,
        # In the window: matched again by version 2; the version 1 match it no longer makes
        # ("central bank ... election") is gone.
        "Recent election news": 2,
        "Recent referendum news": 2,
    }
    # Other topics are not touched, and nothing is left to retag.
    assert matches_of(archive, "banks") == {"Recent central bank news, before the election": 1}
    with Session(archive) as session:
        assert topics_to_retag(session) == []
        assert require_topic(session, "votes").tagged_version == 2


def test_retag_pending_topics_uses_the_configured_window(archive: Engine) -> None:
    change_query(archive, "votes", "referendum")
    settings = Settings(topics=TopicsSettings(retag_window=timedelta(days=1)))

    # The articles of two days ago are outside a window of one day: none is retagged.
    assert retag_pending_topics(archive, settings, now=NOW) == {"votes": 0}
    assert matches_of(archive, "votes") == {
        "Old election news": 1,
        "Recent election news": 1,
        "Recent central bank news, before the election": 1,
    }
    assert retag_pending_topics(archive, settings, now=NOW) == {}


def test_retag_pending_topics_skips_disabled_and_current_topics(archive: Engine) -> None:
    change_query(archive, "votes", "referendum")
    with Session(archive) as session, session.begin():
        banks = require_topic(session, "banks")
        apply_changes(banks, query='"central bank" OR ecb', enabled=False, now=NOW)
        session.add(banks)

    done = retag_pending_topics(archive, Settings(), now=NOW)

    assert done == {"votes": 1}
    assert matches_of(archive, "votes") == {"Old election news": 1, "Recent referendum news": 2}
    assert matches_of(archive, "banks") == {"Recent central bank news, before the election": 1}


def test_new_topics_are_retagged_over_the_window(archive: Engine) -> None:
    with Session(archive) as session, session.begin():
        factories.add_topic(session, "news", "news", tagged_version=0)

    assert retag_pending_topics(archive, Settings(), now=NOW) == {"news": 3}
    assert set(matches_of(archive, "news")) == {
        "Recent election news",
        "Recent referendum news",
        "Recent central bank news, before the election",
    }


# --- backtests -----------------------------------------------------------------------------


def test_backtest_counts_per_local_day_and_keeps_the_newest_samples(engine: Engine) -> None:
    berlin_evening = datetime(2024, 9, 7, 22, 30, tzinfo=UTC)  # 00:30 on the 8th in Berlin
    seen = [
        ("Election one", datetime(2024, 9, 7, 10, 0, tzinfo=UTC)),
        ("Election four", datetime(2024, 9, 8, 9, 0, tzinfo=UTC)),
        ("Election two", berlin_evening),
        ("Weather", datetime(2024, 9, 8, 9, 30, tzinfo=UTC)),
        ("Election three", datetime(2024, 9, 8, 8, 0, tzinfo=UTC)),
        ("Election too old", datetime(2024, 9, 1, tzinfo=UTC)),
    ]
    with Session(engine) as session, session.begin():
        # Stored out of time order: the newest samples are the newest first seen, not by id.
        for title, when in seen:
            add_article(session, title, seen=when)

    since = datetime(2024, 9, 5, tzinfo=UTC)
    with Session(engine) as session:
        utc = backtest(session, parse_query("election"), since=since, limit=2)
        berlin = backtest(
            session, parse_query("election"), since=since, limit=10, timezone="Europe/Berlin"
        )

    assert (utc.scanned, utc.total) == (5, 4)
    assert utc.per_day == {date(2024, 9, 7): 2, date(2024, 9, 8): 2}
    assert berlin.per_day == {date(2024, 9, 7): 1, date(2024, 9, 8): 3}
    assert [s.article.title for s in utc.samples] == ["Election four", "Election three"]
    assert [s.article.title for s in berlin.samples] == [
        "Election four",
        "Election three",
        "Election two",
        "Election one",
    ]
    sample = utc.samples[0]
    assert sample.feed.title == "Example News"
    assert [(s.field, s.start, s.end) for s in sample.hit.spans] == [("title", 0, 8)]


def test_backtest_saves_nothing(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        factories.add_topic(session, "votes", "election")
        add_article(session, "Election day")

    with Session(engine) as session:
        result = backtest(session, parse_query("election"), since=OLD, limit=5)

    assert result.total == 1
    with Session(engine) as session:
        assert session.exec(select(Match)).all() == []


def test_backtest_of_an_empty_archive(engine: Engine) -> None:
    with Session(engine) as session:
        result = backtest(session, parse_query("election"), since=OLD, limit=5)

    assert (result.scanned, result.total, result.per_day, result.samples) == (0, 0, {}, [])
