"""Many languages through the real parts: Russian and Ukrainian feeds in UTF-8, cp1251 and KOI8-R
served from 127.0.0.1, polled, stored and tagged; detection, lang:, ~word and translit:.

The items are written for these tests (news-style, in the language each feed is in), beside the
real Russian feed of ``../shared/corpus-ru``.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from monitor.ingest.language import detect_language
from monitor.models import Article, Feed, Match, Topic
from monitor.operations import poll_feeds
from monitor.settings import FetchSettings, Settings
from monitor.sources.feeds import add_feed
from monitor.topics.catalog import create_topic
from tests.utils.feedserver import FeedServer

NOW = datetime(2024, 9, 10, 12, 0, tzinfo=UTC)
CORPUS_RU = Path(__file__).resolve().parents[2].parent / "shared" / "corpus-ru" / "citydog-by.xml"

# (guid, title, text) of each feed's items.
RUSSIAN = [
    (
        "ru-1",
        "Итоги выборов в Молдове",
        "ЦИК подвёл итоги голосования: явка выше, чем на прошлых выборах.",
    ),
    ("ru-2", "Шойгу провёл совещание", "Министр потребовал ускорить поставки техники в войска."),
    (
        "ru-3",
        "Наблюдатели о выборах",
        "Наблюдатели сообщили о нарушениях; оппозиция требует пересчёта по выборам мэра.",
    ),
    (
        "ru-4",
        "Выбор за избирателями",
        "Кандидаты обещают снизить цены на бензин и построить новые дороги.",
    ),
]
UKRAINIAN = [
    (
        "uk-1",
        "Вибори в Молдові",
        "ЦВК оприлюднила попередні підсумки: явка виявилася вищою, ніж на минулих виборах.",
    ),
    (
        "uk-2",
        "Підсумки виборів",
        "Спостерігачі повідомили про порушення під час голосування в кількох областях.",
    ),
    (
        "uk-3",
        "Погода на вихідні",
        "Синоптики обіцяють мокрий сніг і ожеледицю в центральних областях країни.",
    ),
]
ENGLISH = [
    (
        "en-1",
        "Shoigu warns the West",
        "Russia's security council secretary warned of consequences.",
    ),
    (
        "en-2",
        "Shoygu visits Beijing",
        "The former defence minister met his Chinese counterpart on Monday.",
    ),
    (
        "en-3",
        "Markets rally",
        "Stocks rose on Tuesday as investors welcomed the central bank's decision.",
    ),
    # A Russian item in a feed that declares English: lang: must follow the text.
    (
        "en-4",
        "Выборы в Грузии",
        "Центризбирком Грузии объявил предварительные результаты выборов в парламент.",
    ),
]


def rss(items: list[tuple[str, str, str]], *, language: str, encoding: str) -> bytes:
    """An RSS document of ``items`` in ``encoding``, declaring ``language``."""
    entries = "".join(
        f"<item><title>{title}</title><link>https://news.example.com/{guid}</link>"
        f"<guid>{guid}</guid><description>{text}</description></item>"
        for guid, title, text in items
    )
    document = (
        f'<?xml version="1.0" encoding="{encoding}"?><rss version="2.0"><channel>'
        f"<title>Feed {language}</title><link>https://news.example.com/</link>"
        f"<language>{language}</language>{entries}</channel></rss>"
    )
    return document.encode(encoding)


def poll(engine: Engine) -> None:
    settings = Settings(fetch=FetchSettings(allow_networks=["127.0.0.0/8"]))
    asyncio.run(poll_feeds(engine, settings, now=NOW, rng=random.Random(1)))


def setup(engine: Engine, urls: list[str], topics: dict[str, str]) -> None:
    with Session(engine) as session, session.begin():
        for url in urls:
            add_feed(session, url=url, interval=timedelta(minutes=15), now=NOW)
        for slug, query in topics.items():
            create_topic(session, slug=slug, name=slug, query=query, now=NOW - timedelta(days=1))


def stored(engine: Engine) -> dict[str, Article]:
    with Session(engine) as session:
        return {a.guid or "": a for a in session.exec(select(Article)).all()}


def tagged(engine: Engine) -> dict[str, set[str]]:
    """topic slug -> the guids of the articles it matched."""
    with Session(engine) as session:
        rows = session.exec(
            select(Topic.slug, Article.guid)
            .join(Match, col(Match.topic_id) == Topic.id)
            .join(Article, col(Article.id) == Match.article_id)
        ).all()
    found: dict[str, set[str]] = {}
    for slug, guid in rows:
        found.setdefault(slug, set()).add(guid or "")
    return found


TOPICS = {
    "russian": "lang:ru",
    "ukrainian": "lang:uk",
    "vybory": "~выборы",
    "vybory-exact": "выборы",
    "vybory-uk": "~вибори",
    "shoigu": "translit:Шойгу",
}


@pytest.fixture
def polled(engine: Engine, feed_server: FeedServer) -> Engine:
    urls = [
        feed_server.add(
            "/ru-koi8.xml",
            rss(RUSSIAN, language="ru", encoding="koi8-r"),
            content_type="application/rss+xml; charset=koi8-r",
        ),
        # The charset only in the XML declaration, as many Russian sites still serve it.
        feed_server.add(
            "/uk-cp1251.xml",
            rss(UKRAINIAN, language="uk", encoding="windows-1251"),
            content_type="text/xml",
        ),
        feed_server.add("/en-utf8.xml", rss(ENGLISH, language="en", encoding="utf-8")),
    ]
    setup(engine, urls, TOPICS)
    poll(engine)
    return engine


def test_each_article_is_stored_with_its_detected_and_declared_language(polled: Engine) -> None:
    articles = stored(polled)

    languages = {guid: (a.detected_language, a.language) for guid, a in articles.items()}
    assert languages == {
        **{guid: ("ru", "ru") for guid, _, _ in RUSSIAN},
        **{guid: ("uk", "uk") for guid, _, _ in UKRAINIAN},
        "en-1": ("en", "en"),
        "en-2": ("en", "en"),
        "en-3": ("en", "en"),
        "en-4": ("ru", "en"),
    }
    # The text came through each charset intact.
    assert articles["ru-2"].title == "Шойгу провёл совещание"
    assert articles["uk-1"].title == "Вибори в Молдові"


@pytest.mark.parametrize(
    ("items", "encoding", "language", "in_header"),
    [
        (RUSSIAN, "utf-8", "ru", True),
        (RUSSIAN, "windows-1251", "ru", True),
        (RUSSIAN, "windows-1251", "ru", False),  # the charset only in the XML declaration
        (RUSSIAN, "koi8-r", "ru", True),
        (RUSSIAN, "koi8-r", "ru", False),
        (UKRAINIAN, "utf-8", "uk", True),
        (UKRAINIAN, "windows-1251", "uk", False),
        (UKRAINIAN, "koi8-u", "uk", True),  # KOI8-R has no і, ї, є, ґ: Ukrainian uses KOI8-U
    ],
)
def test_items_in_every_charset_are_read_whole_and_detected(
    engine: Engine,
    feed_server: FeedServer,
    items: list[tuple[str, str, str]],
    encoding: str,
    language: str,
    in_header: bool,
) -> None:
    content_type = f"application/rss+xml; charset={encoding}" if in_header else "text/xml"
    # The feed declares English: what is stored as detected comes from the text.
    body = rss(items, language="en", encoding=encoding)
    setup(engine, [feed_server.add("/feed.xml", body, content_type=content_type)], {})

    poll(engine)

    articles = stored(engine)
    assert {guid: a.title for guid, a in articles.items()} == {g: t for g, t, _ in items}
    assert {a.detected_language for a in articles.values()} == {language}
    assert {a.language for a in articles.values()} == {"en"}


def test_lang_follows_the_text_not_the_feeds_declaration(polled: Engine) -> None:
    found = tagged(polled)

    assert found["russian"] == {"ru-1", "ru-2", "ru-3", "ru-4", "en-4"}
    assert found["ukrainian"] == {"uk-1", "uk-2", "uk-3"}


def test_word_forms_match_every_inflected_form_and_nothing_else(polled: Engine) -> None:
    found = tagged(polled)

    # выборов, выборах, выборам, Выборы: every form; "Выбор" (a choice) is another word.
    assert found["vybory"] == {"ru-1", "ru-3", "en-4"}
    assert found["vybory-exact"] == {"en-4"}
    assert found["vybory-uk"] == {"uk-1", "uk-2"}


def test_transliterated_names_match(polled: Engine) -> None:
    assert tagged(polled)["shoigu"] == {"ru-2", "en-1", "en-2"}


def test_a_short_text_falls_back_to_the_declared_language(
    engine: Engine, feed_server: FeedServer
) -> None:
    lead = "Главное за неделю: отставка губернатора, рекордная жара на юге и новый пакет санкций."
    items = [("short", "Итоги", ""), ("long", "Итоги недели", lead)]
    url = feed_server.add("/short.xml", rss(items, language="uk", encoding="utf-8"))
    setup(engine, [url], {"ukrainian": "lang:uk", "russian": "lang:ru"})

    poll(engine)

    articles = stored(engine)
    assert (articles["short"].detected_language, articles["short"].language) == ("", "uk")
    assert articles["long"].detected_language == "ru"
    assert tagged(engine) == {"ukrainian": {"short"}, "russian": {"long"}}


@pytest.mark.skipif(not CORPUS_RU.is_file(), reason=f"no real Russian feed at {CORPUS_RU}")
def test_the_real_russian_feed_is_detected_as_russian(
    engine: Engine, feed_server: FeedServer
) -> None:
    url = feed_server.add("/citydog.xml", CORPUS_RU.read_bytes())
    setup(engine, [url], {"russian": "lang:ru"})

    poll(engine)

    articles = stored(engine)
    with Session(engine) as session:
        [feed] = session.exec(select(Feed)).all()
    assert feed.error_count == 0
    assert len(articles) == 10
    assert {a.detected_language for a in articles.values()} == {"ru"}
    assert tagged(engine)["russian"] == set(articles)


@pytest.mark.parametrize(
    ("title", "text", "declared", "expected"),
    [
        ("Выборы в Молдове", "Явка оказалась выше, чем на прошлых выборах.", "", "ru"),
        ("Вибори в Молдові", "Явка виявилася вищою, ніж на минулих виборах.", "", "uk"),
        ("Wahlen in Moldau", "Die Beteiligung lag höher als bei der letzten Wahl.", "", "de"),
        (
            "Élections en Moldavie",
            "La participation est plus élevée qu'au dernier scrutin.",
            "",
            "fr",
        ),
        ("Elections in Moldova", "Turnout was higher than at the last election.", "ru", "en"),
        # Unsure (Macedonian 36%, Russian 31%): the declared language wins when it is plausible.
        ("Итоги недели", "Главное за неделю: отставка губернатора.", "ru", "ru"),
        ("Итоги недели", "Главное за неделю: отставка губернатора.", "en", "mk"),
        # Too short to tell: no detected language (lang: uses the declared one).
        ("Итоги", "", "ru", ""),
        ("", "https://example.com/a-long-link-with-no-words-at-all", "en", ""),
    ],
)
def test_detect_language(title: str, text: str, declared: str, expected: str) -> None:
    assert detect_language(title, text, declared) == expected
