"""Tagging stored articles with the enabled topics, and storing the matches once."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlmodel import Session, select

from monitor.models import Article, Match, Topic
from monitor.topics.tagging import load_matcher, save_matches, tag_articles
from tests.utils import factories

NOW = datetime(2024, 9, 9, 6, 0, tzinfo=UTC)


def setup_session(engine: Engine) -> Session:
    """A session whose objects stay readable after commit, for building test data."""
    return Session(engine, expire_on_commit=False)


def add_topic(session: Session, slug: str, keywords: list[str], *, enabled: bool = True) -> Topic:
    topic = Topic(slug=slug, name=slug.title(), keywords=keywords, enabled=enabled, version=3)
    session.add(topic)
    session.flush()
    return topic


def add_article(session: Session, title: str, *, summary: str = "", content: str = "") -> Article:
    return factories.add_article(session, title, seen=NOW, summary=summary, content=content)


def test_load_matcher_uses_only_enabled_topics(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        add_topic(session, "banks", ["central bank"])
        add_topic(session, "votes", ["election"], enabled=False)
        add_topic(session, "trolls", ["troll farm*"])

    with Session(engine) as session:
        matcher = load_matcher(session)

    assert sorted(rule.slug for rule in matcher.rules) == ["banks", "trolls"]
    found = matcher.match("Central bank election, troll farms", "")
    assert sorted(hit.slug for hit in found) == ["banks", "trolls"]


def test_load_matcher_carries_topic_id_and_version(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        topic_id = add_topic(session, "banks", ["central bank"]).id

    with Session(engine) as session:
        [hit] = load_matcher(session).match("Central bank news", "")

    assert (hit.topic_id, hit.slug, hit.version) == (topic_id, "banks", 3)


def test_tag_articles_searches_title_summary_and_content(engine: Engine) -> None:
    with setup_session(engine) as session, session.begin():
        add_topic(session, "banks", ["central bank", "interest rate*"])
        add_topic(session, "votes", ["election"])
        in_title = add_article(
            session, "Central bank raises interest rates", summary="Central bank"
        )
        in_summary = add_article(session, "Markets", summary="the election is near")
        in_content = add_article(session, "Weather", content="after the election")
        nowhere = add_article(session, "Football", summary="a derby", content="goals")
        matcher = load_matcher(session)

        found = tag_articles(matcher, [in_title, in_summary, in_content, nowhere])

    assert [(m.article_id, m.topic_slug, m.score, m.terms) for m in found] == [
        (in_title.id, "banks", 7.0, ("central bank", "interest rate*")),
        (in_summary.id, "votes", 1.0, ("election",)),
        (in_content.id, "votes", 1.0, ("election",)),
    ]


def test_save_matches_stores_each_match_once(engine: Engine) -> None:
    with setup_session(engine) as session, session.begin():
        banks = add_topic(session, "banks", ["central bank"])
        votes = add_topic(session, "votes", ["election"])
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
