"""Digests group by story: the lead article once, then the other outlets that carried it.

Regenerate the golden files with ``UPDATE_GOLDEN=1`` and read the diff before committing it.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from monitor.delivery.digest import AlsoCarried, load_digest
from monitor.delivery.render import build_environment, render_digest
from monitor.ingest.store import save_new_articles
from monitor.models import Delivery, DeliveryItem, Subscriber
from monitor.sources.feeds import add_feed
from monitor.sources.parse import ParsedEntry
from tests.utils.factories import add_topic

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


def planned_digest(engine: Engine) -> int:
    """Store the items as their outlets' feeds deliver them, and plan one delivery of all."""
    article_ids = []
    for minutes, (outlet, path, title, text) in enumerate(ITEMS):
        with Session(engine) as session, session.begin():
            feed, _ = add_feed(
                session,
                url=f"https://{outlet.split()[0].lower()}.example/feed",
                title=outlet,
                interval=timedelta(minutes=15),
                now=NOW,
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
            saved = save_new_articles(
                session, feed_id=feed.id or 0, entries=[entry], now=NOW + timedelta(minutes=minutes)
            )
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
