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


def test_the_shipped_file_defines_its_topics() -> None:
    specs = {spec.slug: spec for spec in read_topics_file(SHIPPED)}

    assert list(specs) == [
        "election-interference",
        "russian-disinformation",
        "kremlin-officials",
        "us-2024-election",
    ]
    # English, Russian and Ukrainian queries beside each other; the officials by name.
    for slug in ("election-interference", "russian-disinformation"):
        assert list(specs[slug].queries or {}) == ["en", "ru", "uk"]
    assert specs["kremlin-officials"].names
    assert specs["us-2024-election"].query
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


@pytest.mark.parametrize(
    ("title", "text", "expected"),
    [
        ("Кремль отрицает вмешательство в выборы в Молдове",
         "Песков назвал обвинения голословными.", {"election-interference", "kremlin-officials"}),
        ("Фабрика троллей работала на Кремль", "Комментарии оставляли из офиса в Петербурге.",
         {"russian-disinformation"}),
        ("Итоги недели", "Центр противодействия дезинформации нашёл сеть ботов из Москвы.",
         {"russian-disinformation"}),
        ("Кремль заперечує втручання у вибори", "Заяви дипломатів назвали безпідставними.",
         {"election-interference"}),
        ("Російська пропаганда в окупованих школах",
         "Дітей змушують навчатися за підручниками з Москви.", {"russian-disinformation"}),
        ("Підсумки тижня", "Центр протидії дезінформації спростував чутки про евакуацію.",
         {"russian-disinformation"}),
        ("Lavrov meets his Turkish counterpart", "Talks lasted two hours.", {"kremlin-officials"}),
        ("Захарову спросили о санкциях", "Официальный представитель МИД ответила.",
         {"kremlin-officials"}),
        ("Погода на выходные", "Синоптики обещают мокрый снег и гололедицу.", set()),
        ("Ціни на пальне зросли", "Вартість літра бензину піднялася на гривню.", set()),
    ],
)  # fmt: skip
def test_the_russian_and_ukrainian_queries(title: str, text: str, expected: set[str]) -> None:
    view = article_view(
        Article(key_hash="k", feed_id=1, title=title, summary=text, content_hash=""),
        feed_title="Example",
        feed_url=FEED_URL,
    )
    assert {hit.slug for hit in shipped_matcher().match(view)} == expected
