"""Digests group by story: the lead article once, then the other outlets that carried it;
a later copy of a story the reader was already given does not come again.

Regenerate the golden files with ``UPDATE_GOLDEN=1`` and read the diff before committing it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from monitor.delivery.digest import AlsoCarried, load_digest
from monitor.delivery.dispatch import plan_due_digests
from monitor.delivery.render import build_environment, render_digest
from monitor.ingest.store import save_new_articles
from monitor.models import Article, Delivery, DeliveryItem, Subscriber
from monitor.operations import open_database, send_digests, sync_config
from monitor.settings import Settings
from monitor.sources.feeds import add_feed
from monitor.sources.parse import ParsedEntry
from monitor.topics.tagging import load_matcher, save_matches, tag_articles
from tests.utils.config import ConfigWriter
from tests.utils.factories import add_topic
from tests.utils.smtpserver import SmtpServer

GOLDEN = Path(__file__).parent / "golden"
NOW = datetime(2024, 9, 10, 8, 0, tzinfo=UTC)
WIRE_TEXT = (
    "Election officials in the northern province said on Monday that a cyberattack had briefly "
    "taken down the website used to publish preliminary results, and that no votes were "
    "affected.\n\nThe electoral commission said its systems were restored within two hours and "
    "that the count would continue as planned, with final results expected on Thursday.\n\n"
    "Investigators are examining whether the attack came from abroad, a spokesperson said."
)
# (outlet, path, title, text): the wire story, two syndicated copies, an unrelated story.
ITEMS = [
    ("Wire Service", "wire/1", "Cyberattack hits election results website", WIRE_TEXT),
    (
        "Daily Courier",
        "courier/7",
        "Election results site hit by cyberattack | Daily Courier",
        "By Ann Lee\n\n" + WIRE_TEXT + "\n\nSign up for our newsletter.",
    ),
    ("Evening Post", "post/3", "Cyberattack hits election results website", WIRE_TEXT),
    (
        "Evening Post",
        "post/4",
        "Election observers praise orderly vote in the south",
        "International election observers said voting in the southern districts had been "
        "orderly and transparent, with turnout above sixty percent in most polling stations.",
    ),
]


def store_item(session: Session, item: tuple[str, str, str, str], seen: datetime) -> list[Article]:
    """Store one outlet's item from that outlet's feed, as polling does (stories assigned)."""
    outlet, path, title, text = item
    feed, _ = add_feed(
        session,
        url=f"https://{outlet.split()[0].lower()}.example/feed",
        title=outlet,
        interval=timedelta(minutes=15),
        now=seen,
    )
    entry = ParsedEntry(
        guid=None,
        link=f"https://news.example/{path}",
        title=title,
        summary="",
        content=text,
        author="",
        published_at=None,
        updated_at=None,
    )
    return save_new_articles(session, feed_id=feed.id or 0, entries=[entry], now=seen)


def planned_digest(engine: Engine) -> int:
    """Store the items as their outlets' feeds deliver them, and plan one delivery of all."""
    article_ids = []
    for minutes, item in enumerate(ITEMS):
        with Session(engine) as session, session.begin():
            saved = store_item(session, item, NOW + timedelta(minutes=minutes))
            article_ids.append(saved[0].id or 0)
    with Session(engine) as session, session.begin():
        topic = add_topic(session, "elections", "election*")
        subscriber = Subscriber(email="reader@example.org", name="Reader")
        session.add(subscriber)
        session.flush()
        delivery = Delivery(
            subscriber_id=subscriber.id or 0,
            period_key="daily:2024-09-10",
            message_id="<digest.test@example.net>",
            created_at=NOW + timedelta(hours=1),
        )
        session.add(delivery)
        session.flush()
        for article_id in article_ids:
            session.add(
                DeliveryItem(
                    delivery_id=delivery.id or 0,
                    subscriber_id=subscriber.id or 0,
                    article_id=article_id,
                    topic_id=topic.id or 0,
                )
            )
        return delivery.id or 0


def assert_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(actual, encoding="utf-8", newline="\n")
    assert path.exists(), f"{path} is missing: run with UPDATE_GOLDEN=1 to create it"
    assert actual == path.read_text(encoding="utf-8"), f"{name} differs from {path}"


def test_a_story_is_listed_once_with_the_outlets_that_also_carried_it(engine: Engine) -> None:
    delivery_id = planned_digest(engine)

    with Session(engine) as session:
        digest = load_digest(session, delivery_id, max_articles=50, excerpt_chars=120)

    [section] = digest.sections
    assert [(a.title, a.outlet) for a in section.articles] == [
        ("Election observers praise orderly vote in the south", "Evening Post"),
        ("Cyberattack hits election results website", "Wire Service"),
    ]
    assert section.articles[1].also == (
        AlsoCarried("Daily Courier", "https://news.example/courier/7"),
        AlsoCarried("Evening Post", "https://news.example/post/3"),
    )
    assert section.articles[0].also == ()
    assert digest.total == 2


@pytest.mark.parametrize("part", ["text", "html"])
def test_story_digest_matches_golden(engine: Engine, part: str) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("one golden file; the database only feeds it")
    delivery_id = planned_digest(engine)
    with Session(engine) as session:
        digest = load_digest(session, delivery_id, max_articles=50, excerpt_chars=120)

    rendered = render_digest(build_environment(), digest, subject_prefix="[monitor]")

    assert_golden(f"digest_stories.{'txt' if part == 'text' else 'html'}", getattr(rendered, part))


# Monday 9 September 2024, 04:00 UTC: the reader wants a daily digest at 08:00 in Berlin.
DAY_ONE = datetime(2024, 9, 9, 4, 0, tzinfo=UTC)
FIRST_DIGEST = DAY_ONE + timedelta(hours=3)
SECOND_DIGEST = FIRST_DIGEST + timedelta(days=1)
READER = "analyst@example.org"
OBSERVERS = ITEMS[3]


@dataclass
class Newsroom:
    """A synced configuration mailing daily digests of one topic to the test's SMTP server."""

    engine: Engine
    settings: Settings
    smtp: SmtpServer

    def publish(self, item: tuple[str, str, str, str], *, seen: datetime) -> int:
        """Store one outlet's item as polling does (stories assigned) and tag it."""
        with Session(self.engine) as session, session.begin():
            saved = store_item(session, item, seen)
            save_matches(session, tag_articles(load_matcher(session), saved), now=seen)
            return (saved[0].id or 0) if saved else 0

    def plan(self, now: datetime) -> None:
        """Plan the digests due at ``now`` without sending them (they stay pending)."""
        plan_due_digests(self.engine, self.settings, now=now)

    def send(self, now: datetime) -> list[str]:
        """Plan what is due and send it; the plain text of each message sent."""
        before = len(self.smtp.messages)
        asyncio.run(send_digests(self.engine, self.settings, scheduled=True, now=now))
        bodies = []
        for received in self.smtp.messages[before:]:
            part = received.message.get_body(("plain",))
            assert part is not None
            bodies.append(part.get_content())
        return bodies

    def delivered(self) -> set[int]:
        """Every article planned for the reader so far."""
        with Session(self.engine) as session:
            return set(session.exec(select(DeliveryItem.article_id)).all())


@pytest.fixture
def newsroom(config: ConfigWriter, smtp_server: SmtpServer) -> Iterator[Newsroom]:
    config.smtp_port = smtp_server.port
    config.topics = [{"slug": "elections", "name": "Elections", "query": "election*"}]
    config.subscribers[0]["topics"] = ["elections"]
    settings = config.settings()
    engine = open_database(settings)
    sync_config(engine, settings, now=DAY_ONE)
    try:
        yield Newsroom(engine, settings, smtp_server)
    finally:
        engine.dispose()


def edit_wire_story(newsroom: Newsroom) -> None:
    """The wire service corrects its delivered story in place (same link, new text)."""
    outlet, path, title, text = ITEMS[0]
    corrected = (outlet, path, f"{title} (corrected)", f"{text}\n\nThe count resumed at noon.")
    newsroom.publish(corrected, seen=FIRST_DIGEST + timedelta(hours=1))


@pytest.mark.parametrize(
    ("case", "sent_first", "edit_first"),
    [
        ("copy of a sent story", True, False),
        ("copy of a story whose digest is still pending", False, False),
        ("copy of a sent story whose lead was edited", True, True),
    ],
)
def test_a_later_copy_of_a_story_already_given_to_the_reader_is_left_out(
    newsroom: Newsroom, case: str, sent_first: bool, edit_first: bool
) -> None:
    wire = newsroom.publish(ITEMS[0], seen=DAY_ONE)
    if sent_first:
        assert len(newsroom.send(FIRST_DIGEST)) == 1
    else:
        newsroom.plan(FIRST_DIGEST)
    assert newsroom.delivered() == {wire}, case
    if edit_first:
        edit_wire_story(newsroom)
    later = FIRST_DIGEST + timedelta(hours=2)
    copy = newsroom.publish(ITEMS[1], seen=later)
    other = newsroom.publish(OBSERVERS, seen=later)

    bodies = newsroom.send(SECOND_DIGEST)

    assert newsroom.delivered() == {wire, other}, case
    assert copy not in newsroom.delivered()
    [latest] = [body for body in bodies if "observers" in body]
    assert "Election observers praise orderly vote in the south" in latest
    assert "cyberattack" not in latest.lower()
    assert "1 new article matches" in latest


def test_copies_arriving_before_the_digest_are_one_story_of_it(newsroom: Newsroom) -> None:
    ids = [
        newsroom.publish(item, seen=DAY_ONE + timedelta(minutes=minutes))
        for minutes, item in enumerate(ITEMS)
    ]

    [body] = newsroom.send(FIRST_DIGEST)

    assert newsroom.delivered() == set(ids)
    assert "2 new stories (4 articles) match the topics you follow." in body
    assert body.count("* Cyberattack hits election results website") == 1
    assert "Also carried by:" in body
