"""The outbox end to end: plan, render and send digests through a real SMTP server."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, text
from sqlmodel import Session, col, select

from monitor.delivery.dispatch import SendReport, preview_digests
from monitor.delivery.render import build_environment
from monitor.errors import ConfigError, NotFoundError
from monitor.models import (
    Delivery,
    DeliveryItem,
    DeliveryStatus,
    Match,
    Topic,
    table_names,
)
from monitor.operations import open_database, retag_pending_topics, send_digests, sync_config
from monitor.settings import Settings
from monitor.topics.catalog import apply_changes, require_topic
from monitor.topics.tagging import load_matcher, save_matches, tag_articles
from tests.utils.config import ConfigWriter
from tests.utils.factories import add_article
from tests.utils.smtpserver import SmtpServer, running_smtp_server

# Monday 9 September 2024, 04:00 UTC: 06:00 in Berlin, where the subscriber wants 08:00.
T0 = datetime(2024, 9, 9, 4, 0, tzinfo=UTC)
SEEN = T0 + timedelta(minutes=30)
LATER = T0 + timedelta(hours=1)
SUBSCRIBER = "analyst@example.org"
ELECTION, DISINFO, BANKS = "election-interference", "russian-disinformation", "central-banks"


@dataclass
class World:
    """A synced configuration on a migrated database, mailing to the test's SMTP server."""

    engine: Engine
    settings: Settings
    smtp: SmtpServer
    topics: dict[str, int]

    def send(self, now: datetime, *, scheduled: bool = False) -> SendReport:
        return asyncio.run(send_digests(self.engine, self.settings, scheduled=scheduled, now=now))

    def add_article(self, title: str, scores: dict[str, float], *, seen: datetime = SEEN) -> int:
        """An article first seen at ``seen``, matched by topics with the given scores."""
        with Session(self.engine) as session, session.begin():
            article = add_article(
                session, title, seen=seen, summary="What happened, in a sentence."
            )
            for slug, score in scores.items():
                session.add(
                    Match(
                        article_id=article.id or 0,
                        topic_id=self.topics[slug],
                        topic_version=1,
                        score=score,
                        terms=[slug.replace("-", " ")],
                        matched_at=seen,
                    )
                )
            return article.id or 0

    def tag_article(self, title: str, *, summary: str = "", seen: datetime = SEEN) -> int:
        """An article first seen at ``seen``, tagged by the real matcher as polling does."""
        with Session(self.engine) as session, session.begin():
            article = add_article(session, title, seen=seen, summary=summary)
            save_matches(session, tag_articles(load_matcher(session), [article]), now=seen)
            return article.id or 0

    def edit_query(self, slug: str, query: str, *, now: datetime) -> None:
        """Change a topic's query as ``monitor topics edit`` does."""
        with Session(self.engine) as session, session.begin():
            topic = require_topic(session, slug)
            apply_changes(topic, query=query, now=now)
            session.add(topic)

    def match_versions(self, slug: str) -> dict[int, int]:
        """Article id -> the version of ``slug`` that matched it."""
        with Session(self.engine) as session:
            rows = session.exec(
                select(Match.article_id, Match.topic_version).where(
                    Match.topic_id == self.topics[slug]
                )
            ).all()
        return dict(rows)

    def deliveries(self) -> list[Delivery]:
        with Session(self.engine) as session:
            return list(session.exec(select(Delivery).order_by(col(Delivery.id))).all())

    def items(self) -> dict[int, int]:
        """Delivered article id -> the topic id it was delivered under."""
        with Session(self.engine) as session:
            rows = session.exec(select(DeliveryItem.article_id, DeliveryItem.topic_id)).all()
        return dict(rows)

    def texts(self) -> list[str]:
        """The plain-text body of every message received, in order."""
        bodies = []
        for received in self.smtp.messages:
            part = received.message.get_body(("plain",))
            assert part is not None
            bodies.append(part.get_content())
        return bodies

    def row_counts(self) -> dict[str, int]:
        with self.engine.connect() as connection:
            return {
                name: connection.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one()
                for name in table_names()
            }


@pytest.fixture
def start(config: ConfigWriter, smtp_server: SmtpServer) -> Iterator[Callable[[], World]]:
    """Write the configuration, open and sync the database; call after adjusting ``config``."""
    engines: list[Engine] = []

    def _start() -> World:
        config.smtp_port = smtp_server.port
        settings = config.settings()
        engine = open_database(settings)
        engines.append(engine)
        sync_config(engine, settings, now=T0)
        with Session(engine) as session:
            topics = {t.slug: t.id or 0 for t in session.exec(select(Topic)).all()}
        return World(engine, settings, smtp_server, topics)

    yield _start
    for engine in engines:
        engine.dispose()


@pytest.fixture
def world(start: Callable[[], World]) -> World:
    return start()


def section_of(body: str, title: str) -> str:
    """The ``== name (n) ==`` heading under which ``title`` appears in a text digest."""
    heading = ""
    for line in body.splitlines():
        if line.startswith("== "):
            heading = line
        elif line == f"* {title}":
            return heading
    raise AssertionError(f"{title!r} is not in the digest")


@pytest.mark.parametrize(
    ("scores", "best", "heading"),
    [
        ({ELECTION: 1.0, DISINFO: 4.0}, DISINFO, "== Russian disinformation (1) =="),
        ({ELECTION: 4.0, DISINFO: 1.0}, ELECTION, "== Election interference (1) =="),
    ],
)
def test_article_of_two_topics_is_delivered_once_under_its_best(
    world: World, scores: dict[str, float], best: str, heading: str
) -> None:
    article_id = world.add_article("Troll farms meddle in the election", scores)

    report = world.send(LATER)

    assert report.sent == [SUBSCRIBER]
    [body] = world.texts()
    assert body.count("Troll farms meddle in the election") == 1
    assert section_of(body, "Troll farms meddle in the election") == heading
    assert world.items() == {article_id: world.topics[best]}


def test_digest_leaves_out_topics_not_subscribed(world: World) -> None:
    world.add_article("Central bank holds rates", {BANKS: 5.0})
    world.add_article("Election interference probe opens", {ELECTION: 3.0})

    world.send(LATER)

    [body] = world.texts()
    assert "Election interference probe opens" in body
    assert "Central bank holds rates" not in body


def test_temporary_failure_is_retried_with_the_same_items_and_message_id(world: World) -> None:
    first = world.add_article("Election interference probe opens", {ELECTION: 3.0})
    second = world.add_article("Troll farm exposed", {DISINFO: 3.0})
    world.smtp.handler.replies = ["451 4.3.0 try later"]

    report = world.send(LATER)

    assert (report.sent, len(report.retrying)) == ([], 1)
    [delivery] = world.deliveries()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.attempts == 1
    assert "451" in (delivery.last_error or "")
    assert delivery.next_attempt_at == LATER + world.settings.mail.retry_backoff
    assert world.smtp.messages == []

    too_early = world.send(delivery.next_attempt_at - timedelta(seconds=1), scheduled=True)
    retried = world.send(delivery.next_attempt_at + timedelta(seconds=1), scheduled=True)

    assert too_early.sent == []
    assert retried.sent == [SUBSCRIBER]
    [received] = world.smtp.messages
    assert received.message["Message-ID"] == delivery.message_id
    [body] = world.texts()
    assert "Election interference probe opens" in body
    assert "Troll farm exposed" in body
    [after] = world.deliveries()
    assert (after.status, after.attempts, after.last_error) == (DeliveryStatus.SENT, 2, None)
    assert set(world.items()) == {first, second}


def test_permanent_failure_marks_the_delivery_failed_and_is_not_retried(world: World) -> None:
    world.add_article("Election interference probe opens", {ELECTION: 3.0})
    world.smtp.handler.replies = ["550 5.7.1 rejected by local policy"]

    report = world.send(LATER)

    assert report.sent == []
    assert len(report.failed) == 1
    [delivery] = world.deliveries()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 1
    assert "rejected by local policy" in (delivery.last_error or "")

    world.send(LATER + timedelta(days=1), scheduled=True)
    world.send(LATER + timedelta(days=1, hours=1))

    assert world.smtp.handler.attempts == 1
    assert world.smtp.messages == []
    assert world.deliveries()[0].status == DeliveryStatus.FAILED


def test_one_failed_delivery_does_not_stop_the_others(
    config: ConfigWriter, start: Callable[[], World]
) -> None:
    config.subscribers.append({"email": "bob@example.org", "timezone": "UTC", "topics": [ELECTION]})
    world = start()
    world.add_article("Election interference probe opens", {ELECTION: 3.0})
    world.smtp.handler.replies = ["550 5.1.1 no such mailbox"]

    report = world.send(LATER)

    assert len(report.failed) == 1
    assert len(report.sent) == 1
    assert [r.recipients for r in world.smtp.messages] == [report.sent]


def test_unreachable_server_stops_the_batch_and_loses_nothing(
    config: ConfigWriter, start: Callable[[], World]
) -> None:
    config.subscribers.append({"email": "bob@example.org", "timezone": "UTC", "topics": [ELECTION]})
    world = start()
    world.add_article("Election interference probe opens", {ELECTION: 3.0})
    world.smtp.stop()

    report = world.send(LATER)

    # One attempt, then the rest wait for the server instead of each timing out in turn.
    assert report.sent == []
    assert "cannot reach 127.0.0.1" in report.retrying[0]
    assert report.retrying[1].startswith("1 more waiting for the mail server")
    assert sorted(d.attempts for d in world.deliveries()) == [0, 1]
    assert {d.status for d in world.deliveries()} == {DeliveryStatus.PENDING}
    waiting = [d.id for d in world.deliveries()]

    with running_smtp_server(world.smtp.port) as revived:
        later = world.send(LATER + world.settings.mail.max_retry_backoff)

    assert sorted(later.sent) == ["analyst@example.org", "bob@example.org"]
    assert {d.status for d in world.deliveries() if d.id in waiting} == {DeliveryStatus.SENT}
    assert sorted(r.recipients[0] for r in revived.messages) == later.sent


def test_broken_template_override_is_a_config_error_and_sends_nothing(
    config: ConfigWriter, world: World
) -> None:
    world.add_article("Election interference probe opens", {ELECTION: 3.0})
    templates = config.directory / "templates"
    templates.mkdir()
    (templates / "digest.html").write_text("<p>{{ digest.email }</p>\n")

    with pytest.raises(ConfigError, match=r"digest.html:1: template error: unexpected '}'"):
        world.send(LATER)

    assert world.smtp.messages == []
    [delivery] = world.deliveries()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 0)


def test_period_without_new_matches_is_recorded_empty_and_sends_nothing(world: World) -> None:
    eight_in_berlin = datetime(2024, 9, 9, 6, 0, tzinfo=UTC)

    report = world.send(eight_in_berlin, scheduled=True)

    assert report == SendReport()
    [delivery] = world.deliveries()
    assert delivery.status == DeliveryStatus.EMPTY
    assert world.smtp.handler.attempts == 0


def test_second_send_sends_nothing_new(world: World) -> None:
    world.add_article("Election interference probe opens", {ELECTION: 3.0})
    world.send(LATER)

    again = world.send(LATER + timedelta(minutes=5))

    assert again.sent == []
    assert len(world.smtp.messages) == 1

    world.add_article("Troll farm exposed", {DISINFO: 3.0}, seen=LATER + timedelta(minutes=10))
    third = world.send(LATER + timedelta(minutes=15))

    assert third.sent == [SUBSCRIBER]
    newest = world.texts()[-1]
    assert "Troll farm exposed" in newest
    assert "Election interference probe opens" not in newest


def test_scheduled_digest_waits_for_the_local_send_time(world: World) -> None:
    world.add_article("Election interference probe opens", {ELECTION: 3.0})
    berlin_0745 = datetime(2024, 9, 9, 5, 45, tzinfo=UTC)
    berlin_0800 = datetime(2024, 9, 9, 6, 0, tzinfo=UTC)

    before = world.send(berlin_0745, scheduled=True)

    assert before.sent == []
    assert world.deliveries() == []

    at_eight = world.send(berlin_0800, scheduled=True)
    after = world.send(berlin_0800 + timedelta(minutes=15), scheduled=True)

    assert at_eight.sent == [SUBSCRIBER]
    assert after.sent == []
    assert len(world.smtp.messages) == 1
    assert len(world.deliveries()) == 1


def test_send_to_unknown_subscriber_is_not_found(world: World) -> None:
    with pytest.raises(NotFoundError, match=r"nobody@example\.org"):
        asyncio.run(
            send_digests(world.engine, world.settings, scheduled=False, email="nobody@example.org")
        )


def test_preview_writes_nothing_and_returns_the_subject(world: World) -> None:
    world.add_article("Troll farms meddle in the election", {ELECTION: 1.0, DISINFO: 4.0})
    counts = world.row_counts()

    previews = preview_digests(
        world.engine, world.settings, build_environment(), now=LATER, email=None
    )

    assert [(p.email, p.articles) for p in previews] == [(SUBSCRIBER, 1)]
    assert previews[0].rendered.subject == "[monitor] 1 new article: Russian disinformation"
    assert "Troll farms meddle in the election" in previews[0].rendered.text
    assert world.row_counts() == counts
    assert world.smtp.handler.attempts == 0

    # The preview took nothing away from the real digest.
    assert world.send(LATER).sent == [SUBSCRIBER]
    assert "Troll farms meddle in the election" in world.texts()[0]


def test_preview_with_nothing_new_is_empty(world: World) -> None:
    counts = world.row_counts()

    assert preview_digests(world.engine, world.settings, build_environment(), now=LATER) == []
    assert world.row_counts() == counts


def test_delivery_rows_per_send(world: World) -> None:
    world.add_article("Election interference probe opens", {ELECTION: 3.0})

    world.send(LATER)

    with Session(world.engine) as session:
        deliveries = session.exec(select(func.count()).select_from(Delivery)).one()
        sent = session.exec(select(Delivery).where(Delivery.status == DeliveryStatus.SENT)).one()
    assert deliveries == 1
    assert sent.sent_at == LATER
    assert sent.attempts == 1


def test_long_digest_shows_the_newest_and_counts_the_rest(
    config: ConfigWriter, start: Callable[[], World]
) -> None:
    config.extra_toml = "[digest]\nmax_articles = 2\n"
    world = start()
    for minute, title in enumerate(["Oldest probe", "Middle probe", "Newest probe"]):
        world.add_article(title, {ELECTION: 3.0}, seen=SEEN + timedelta(minutes=minute))

    world.send(LATER)

    [received] = world.smtp.messages
    assert received.message["Subject"] == "[monitor] 3 new articles: Election interference"
    [body] = world.texts()
    lines = body.splitlines()
    assert [line for line in lines if line.startswith(("== ", "* "))] == [
        "== Election interference (3) ==",
        "* Newest probe",
        "* Middle probe",
    ]
    assert "  ... and 1 more in this topic." in lines


def test_retagged_article_already_delivered_is_not_delivered_again(world: World) -> None:
    delivered = world.tag_article("Election interference probe opens")
    unmatched = world.add_article("Foreign meddling alleged in the vote", {})
    assert world.send(LATER).sent == [SUBSCRIBER]
    assert world.items() == {delivered: world.topics[ELECTION]}

    world.edit_query(ELECTION, '"election interference" OR meddling', now=LATER)
    retagged = retag_pending_topics(world.engine, world.settings, now=LATER)

    # The topics synced from the file had never tagged the archive either: they are due too.
    assert retagged == {ELECTION: 2, DISINFO: 0, BANKS: 0}
    assert world.match_versions(ELECTION) == {delivered: 2, unmatched: 2}
    report = world.send(LATER + timedelta(minutes=5))
    assert report.sent == [SUBSCRIBER]
    newest = world.texts()[-1]
    assert "Foreign meddling alleged in the vote" in newest
    assert "Election interference probe opens" not in newest
    assert world.items() == {delivered: world.topics[ELECTION], unmatched: world.topics[ELECTION]}
    assert world.send(LATER + timedelta(minutes=10)).sent == []
    assert len(world.smtp.messages) == 2


def test_digest_marks_the_matched_words(world: World) -> None:
    world.tag_article(
        "Election interference probe opens",
        summary="Officials say a troll farm spread claims of election interference.",
    )

    world.send(LATER)

    [received] = world.smtp.messages
    html = received.message.get_body(("html",))
    assert html is not None
    found = re.findall(r"<mark[^>]*>(.*?)</mark>", html.get_content())
    # The title's words, then the snippet's: the excerpt is the snippet around the match.
    assert found == ["Election interference", "election interference"]
    [body] = world.texts()
    assert "Officials say a troll farm spread claims of election interference." in body
    assert "<mark" not in body


def test_retry_after_a_retag_still_carries_the_planned_articles(world: World) -> None:
    first = world.tag_article("Election interference probe opens")
    world.smtp.handler.replies = ["451 4.3.0 try later"]
    assert len(world.send(LATER).retrying) == 1

    # Before the retry, the query changes so that the planned article no longer matches.
    world.edit_query(ELECTION, "referendum", now=LATER)
    retag_pending_topics(world.engine, world.settings, now=LATER)
    assert world.match_versions(ELECTION) == {}
    [delivery] = world.deliveries()
    retried = world.send(delivery.next_attempt_at, scheduled=True)

    assert retried.sent == [SUBSCRIBER]
    [body] = world.texts()
    assert "Election interference probe opens" in body
    assert world.items() == {first: world.topics[ELECTION]}
