"""The topics shipped in config/topics.yaml, against the seed article and unrelated stories."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.models import Article
from monitor.sources.parse import parse_feed
from monitor.topics.catalog import read_topics_file
from monitor.topics.matcher import Matcher, TopicRule
from monitor.topics.query import parse_query
from monitor.topics.tagging import article_view
from tests.utils.config import fixture_feed

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "topics.yaml"
FEED_URL = "https://news.example.com/world.rss"
SEED_TITLE = "Did Putin Back Kamala Harris For The 2024 Election? Here’s What It Could Mean"


def shipped_matcher() -> Matcher:
    specs = read_topics_file(SHIPPED)
    return Matcher(
        TopicRule(number, spec.slug, 1, parse_query(spec.effective_query))
        for number, spec in enumerate(specs, start=1)
        if spec.enabled
    )


def world_articles() -> dict[str, Article]:
    """The fixture feed's items as stored articles (not saved: matching needs no database)."""
    feed = parse_feed(fixture_feed("world.rss"), url=FEED_URL)
    return {
        entry.title: Article(
            key_hash=entry.guid or "",
            url=entry.link or "",
            feed_id=1,
            title=entry.title,
            summary=entry.summary,
            content=entry.content,
            author=entry.author,
            language=entry.language,
            content_hash="",
        )
        for entry in feed.entries
    }


def matched(title: str) -> set[str]:
    article = world_articles()[title]
    view = article_view(article, feed_title="Example World News", feed_url=FEED_URL)
    return {hit.slug for hit in shipped_matcher().match(view)}


def test_the_shipped_file_defines_the_three_topics() -> None:
    specs = read_topics_file(SHIPPED)

    assert [spec.slug for spec in specs] == [
        "election-interference",
        "russian-disinformation",
        "us-2024-election",
    ]
    assert all(spec.query for spec in specs), "the shipped topics are written as queries"
    assert next(iter(world_articles())) == SEED_TITLE


def test_seed_article_matches_election_interference_and_the_us_election() -> None:
    assert matched(SEED_TITLE) >= {"election-interference", "us-2024-election"}


@pytest.mark.parametrize(
    "title",
    [
        "City edge United in a late derby thriller",
        "Chipmaker shares climb after record quarterly earnings",
        "New phone battery lasts two days, reviewers say",
        "Heatwave brings record temperatures to southern Europe",
    ],
)
def test_unrelated_stories_match_nothing(title: str) -> None:
    assert matched(title) == set()
