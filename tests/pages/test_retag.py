"""Tagging on the full text: matches made on the body, digests and the article first sent with
its teaser, a NOT clause the body answers, stories found by the body and by canonical links."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from email.message import EmailMessage

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from monitor.delivery.dispatch import plan_digests_now, send_due_deliveries
from monitor.delivery.mailer import open_transport
from monitor.delivery.render import load_templates
from monitor.models import Article, Match, Topic, utcnow
from monitor.operations import open_database, send_digests, sync_config
from monitor.settings import Settings
from monitor.topics.tagging import retag_topic
from tests.pages.conftest import poll_with_pages
from tests.utils.articles import teaser_feed
from tests.utils.config import ConfigWriter
from tests.utils.feedserver import FeedServer
from tests.utils.smtpserver import SmtpServer

BODY = (
    "<html><head><title>Vote probe</title></head><body><article>"
    "<h1>Officials warn of election interference</h1>"
    "<p>Officials warned of election interference on Tuesday, after investigators in Tallinn "
    "traced a network of troll farms that posted thousands of messages about the vote.</p>"
    "<p>The network also bought advertising, the investigators said, and its accounts were "
    "removed by the platforms within hours of the report being published in the capital.</p>"
    "<p>Football clubs were not involved, the officials added, though some fans were "
    "targeted by the same accounts in the weeks before the election.</p>"
    "</article></body></html>"
)
TEASER = "Officials warned of election interference."


def setup(
    config: ConfigWriter,
    feed_server: FeedServer,
    *,
    smtp: SmtpServer | None = None,
    topics: list[dict[str, str]] | None = None,
) -> tuple[Engine, Settings]:
    """A feed with one teaser item whose page is BODY."""
    link = feed_server.add("/story", BODY.encode(), content_type="text/html; charset=utf-8")
    config.feeds = [feed_server.add("/f.rss", teaser_feed(iter([(link, "Vote probe", TEASER)])))]
    config.pages = {"enabled": "true", "per_host_interval": '"0s"'}
    if topics is not None:
        config.topics += topics
    if smtp is not None:
        config.smtp_port = smtp.port
    settings = config.settings()
    engine = open_database(settings)
    sync_config(engine, settings, now=utcnow())
    return engine, settings


def matches(engine: Engine) -> dict[str, Match]:
    with Session(engine) as session:
        rows = session.exec(
            select(Topic.slug, Match).join(Match, col(Match.topic_id) == Topic.id)
        ).all()
        return dict(rows)


def bodies(messages: list[EmailMessage]) -> list[str]:
    texts = []
    for message in messages:
        part = message.get_body(preferencelist=("plain",))
        assert part is not None
        texts.append(part.get_content())
    return texts


def test_the_article_sent_with_its_teaser_is_not_sent_again_when_its_body_arrives(
    config: ConfigWriter, feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    engine, settings = setup(config, feed_server, smtp=smtp_server)
    # The feed text first: pages are not fetched yet.
    asyncio.run(_poll_only(engine, settings))
    assert set(matches(engine)) == {"election-interference"}
    assert matches(engine)["election-interference"].text_source == "feed"
    first = asyncio.run(send_digests(engine, settings, scheduled=False))
    assert first.sent == ["analyst@example.org"]

    _polled, pages = poll_with_pages(engine, settings)

    assert len(pages) == 1
    found = matches(engine)
    # The body adds a topic (troll farms) and rewrites the match's words and snippet.
    assert set(found) == {"election-interference", "russian-disinformation"}
    assert {m.text_source for m in found.values()} == {"page"}
    assert "Tallinn" in found["election-interference"].snippet
    again = asyncio.run(send_digests(engine, settings, scheduled=False))
    assert again.sent == []
    assert len(smtp_server.handler.messages) == 1


def test_a_digest_not_sent_yet_uses_the_body(
    config: ConfigWriter, feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    engine, settings = setup(config, feed_server, smtp=smtp_server)
    asyncio.run(_poll_only(engine, settings))
    now = utcnow()
    assert plan_digests_now(engine, settings, now=now)  # in the outbox, not sent

    poll_with_pages(engine, settings)
    asyncio.run(_send_outbox(engine, settings))

    [text] = bodies([received.message for received in smtp_server.handler.messages])
    assert "Tallinn" in text  # the snippet of the body, not the teaser


def test_a_not_clause_the_body_answers_removes_the_match(
    config: ConfigWriter, feed_server: FeedServer
) -> None:
    topics = [
        {"slug": "vote", "name": "Vote", "query": "election NOT football"},
        {"slug": "troll", "name": "Troll", "query": '"troll farm*"'},
    ]
    engine, settings = setup(config, feed_server, topics=topics)
    asyncio.run(_poll_only(engine, settings))
    assert set(matches(engine)) == {"vote", "election-interference"}

    poll_with_pages(engine, settings)

    assert set(matches(engine)) == {"troll", "election-interference", "russian-disinformation"}


def test_a_retag_reads_the_body_and_says_so(config: ConfigWriter, feed_server: FeedServer) -> None:
    engine, settings = setup(config, feed_server)
    poll_with_pages(engine, settings)
    with Session(engine) as session, session.begin():
        topic = session.exec(select(Topic).where(Topic.slug == "russian-disinformation")).one()
        topic.query = '"troll farm*" OR Tallinn'
        topic.version += 1
        session.add(topic)
        session.flush()
        assert retag_topic(session, topic, since=utcnow() - timedelta(days=1), now=utcnow()) == 1
    match = matches(engine)["russian-disinformation"]
    assert match.text_source == "page"
    assert match.topic_version == 2


async def _poll_only(engine: Engine, settings: Settings) -> None:
    from monitor.operations import poll_feeds

    await poll_feeds(engine, settings)


async def _send_outbox(engine: Engine, settings: Settings) -> None:
    async with open_transport(settings.mail) as transport:
        await send_due_deliveries(engine, settings, transport, load_templates(settings))


def test_the_body_joins_an_article_to_the_story_of_its_copy(
    config: ConfigWriter, feed_server: FeedServer
) -> None:
    # One outlet's feed carries the whole text; another's only a title, its page the same text.
    full_text = " ".join(p.split(">", 1)[1].split("<", 1)[0] for p in BODY.split("<p")[1:])
    teaser_link = feed_server.add("/copy", BODY.encode(), content_type="text/html")
    canonical_link = feed_server.add(
        "/amp",
        BODY.replace("<head>", '<head><link rel="canonical" href="https://wire.example/orig">')
        .replace("Tallinn", "Tartu")
        .replace("troll farms", "bot networks")
        .encode(),
        content_type="text/html",
    )
    wire = teaser_feed(
        iter([("https://wire.example/orig", "Officials warn of election interference", full_text)])
    )
    outlet = teaser_feed(
        iter(
            [
                (teaser_link, "Vote probe", "Officials spoke."),
                (canonical_link, "Probe, mobile", "Short."),
            ]
        )
    )
    config.feeds = [feed_server.add("/wire.rss", wire), feed_server.add("/outlet.rss", outlet)]
    config.pages = {"enabled": "true", "per_host_interval": '"0s"'}
    settings = config.settings()
    engine = open_database(settings)
    sync_config(engine, settings, now=utcnow())

    poll_with_pages(engine, settings)

    with Session(engine) as session:
        stories = {a.url: a.story_id for a in session.exec(select(Article))}
    assert len(stories) == 3
    assert stories[teaser_link] == stories["https://wire.example/orig"]  # by the body's text
    assert stories[canonical_link] == stories["https://wire.example/orig"]  # by its canonical


RUSSIAN_BODY = (
    "<html><head><title>Итоги</title></head><body><article><h1>Итоги</h1>"
    "<p>Центральная избирательная комиссия сообщила о нарушениях на избирательных участках "
    "в нескольких регионах страны, где наблюдатели зафиксировали вбросы бюллетеней.</p>"
    "<p>По словам наблюдателей, нарушения затронули голосование в городах и сёлах, а жалобы "
    "были направлены в прокуратуру и в суд в течение нескольких часов после закрытия.</p>"
    "<p>Комиссия обещала проверить каждое сообщение и опубликовать результаты проверки до "
    "конца недели, когда будут подведены окончательные итоги голосования.</p>"
    "</article></body></html>"
)


def test_the_body_decides_the_language_a_teaser_was_too_short_to_tell(
    config: ConfigWriter, feed_server: FeedServer
) -> None:
    link = feed_server.add("/itogi", RUSSIAN_BODY.encode(), content_type="text/html; charset=utf-8")
    config.feeds = [feed_server.add("/ru.rss", teaser_feed(iter([(link, "Итоги", "Итоги.")])))]
    config.pages = {"enabled": "true", "per_host_interval": '"0s"'}
    config.topics += [{"slug": "russian-votes", "name": "Russian votes", "query": "lang:ru"}]
    settings = config.settings()
    engine = open_database(settings)
    sync_config(engine, settings, now=utcnow())
    asyncio.run(_poll_only(engine, settings))
    with Session(engine) as session:
        assert session.exec(select(Article.detected_language)).one() == ""  # "Итоги." alone
    assert "russian-votes" not in matches(engine)

    poll_with_pages(engine, settings)

    with Session(engine) as session:
        assert session.exec(select(Article.detected_language)).one() == "ru"
    assert matches(engine)["russian-votes"].text_source == "page"
