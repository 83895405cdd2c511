"""The outbox end to end: plan, render and send digests through a real SMTP server."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import Engine, func, text, update
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from monitor.cli import app
from monitor.db import create_db_engine
from monitor.delivery.dispatch import (
    SendReport,
    _mark_failed,
    _mark_retry,
    _mark_sent,
    claim_due_deliveries,
    plan_digests_now,
    preview_digests,
    send_due_deliveries,
)
from monitor.delivery.mailer import RateLimiter, SmtpTransport
from monitor.delivery.render import build_environment
from monitor.errors import ConfigError, NotFoundError
from monitor.models import (
    Delivery,
    DeliveryItem,
    DeliveryStatus,
    Match,
    Subscriber,
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


def test_template_failing_on_one_digest_holds_that_one_and_sends_the_others(
    config: ConfigWriter, start: Callable[[], World]
) -> None:
    config.subscribers = subscribers(2)
    templates = config.directory / "templates"
    templates.mkdir(parents=True)
    # Fails only on reader01's digest: the sample digest it is checked on renders.
    subject = templates / "digest_subject.txt"
    subject.write_text(
        '{{ prefix }} news\n{% if digest.email == "reader01@example.org" %}{{ 1/0 }}{% endif %}\n'
    )
    world = start()
    world.add_article("Election interference probe opens", {ELECTION: 3.0})

    report = world.send(LATER)

    assert report.sent == ["reader00@example.org"]
    [waiting] = report.retrying
    assert re.fullmatch(
        r"delivery \d+: \S+/digest_subject\.txt:2: template error: "
        r"ZeroDivisionError: division by zero",
        waiting,
    )
    held = [d for d in world.deliveries() if d.status == DeliveryStatus.PENDING]
    [delivery] = held
    assert delivery.attempts == 1
    assert delivery.next_attempt_at == LATER + world.settings.mail.retry_backoff
    assert "digest_subject.txt:2" in (delivery.last_error or "")

    subject.write_text("{{ prefix }} news\n")
    retried = world.send(delivery.next_attempt_at, scheduled=True)

    assert retried.sent == ["reader01@example.org"]
    assert [m.message["Message-ID"] for m in world.smtp.messages][1] == delivery.message_id


def test_template_runtime_error_at_start_is_one_line(
    config: ConfigWriter, start: Callable[[], World]
) -> None:
    templates = config.directory / "templates"
    templates.mkdir(parents=True)
    (templates / "digest_subject.txt").write_text("{{ prefix }}\n{{ 1/0 }}\n")
    start()

    result = CliRunner().invoke(app, ["--config", str(config.directory), "digest", "send"])

    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"error: {templates / 'digest_subject.txt'}:2: template error: "
        "ZeroDivisionError: division by zero"
    ]


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
    assert previews[0].rendered.subject == "[monitor] Russian disinformation (1)"
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


def test_digest_on_demand_writes_nothing_for_those_with_nothing_new(
    config: ConfigWriter, start: Callable[[], World]
) -> None:
    config.subscribers = subscribers(3)
    world = start()

    for minute in range(3):
        report = world.send(LATER + timedelta(minutes=minute))
        assert report.sent == []

    assert world.deliveries() == []


@pytest.mark.parametrize("notify_empty", [False, True])
def test_dry_run_announces_what_the_real_send_sends(
    config: ConfigWriter, start: Callable[[], World], notify_empty: bool
) -> None:
    config.subscribers = [
        {"email": "quiet@example.org", "notify_empty": notify_empty, "topics": [ELECTION]},
        {"email": "busy@example.org", "topics": [DISINFO]},
    ]
    world = start()
    world.add_article("Troll farm exposed", {DISINFO: 3.0})
    runner = CliRunner()
    args = ["--config", str(config.directory), "digest", "send"]

    dry = runner.invoke(app, [*args, "--dry-run"])
    real = runner.invoke(app, args)

    assert dry.exit_code == real.exit_code == 0, dry.output + real.output
    assert dry.output == "would send to busy@example.org: [monitor] Russian disinformation (1)\n"
    assert real.output.startswith("sent to busy@example.org via")
    assert [r.recipients for r in world.smtp.messages] == [["busy@example.org"]]


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
    assert received.message["Subject"] == "[monitor] Election interference (3)"
    [body] = world.texts()
    lines = body.splitlines()
    assert [line for line in lines if line.startswith(("== ", "* "))] == [
        "== Election interference (3) ==",
        "* Newest probe",
        "* Middle probe",
    ]
    assert "  ... and 1 more story in this topic. Every story of this digest:" in lines


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


# Leases, several workers, the rate limit and `monitor deliveries list`.

WORKER, OTHER = "host:1:aaaa", "host:2:bbbb"
LEASE = timedelta(minutes=10)


def add_deliveries(engine: Engine, count: int, *, due: datetime = T0) -> list[int]:
    """``count`` pending deliveries (one subscriber each), due at ``due``; their ids."""
    with Session(engine) as session, session.begin():
        deliveries = []
        for number in range(count):
            subscriber = Subscriber(email=f"reader{number}@example.org")
            session.add(subscriber)
            session.flush()
            delivery = Delivery(
                subscriber_id=subscriber.id or 0,
                period_key="daily:2024-09-09",
                message_id=f"<digest.{number}@example.net>",
                next_attempt_at=due,
                created_at=due,
            )
            session.add(delivery)
            deliveries.append(delivery)
        session.flush()
        return [d.id or 0 for d in deliveries]


def delivery_row(engine: Engine, delivery_id: int) -> Delivery:
    with Session(engine) as session:
        found = session.get(Delivery, delivery_id)
        assert found is not None
        return found


@pytest.mark.parametrize(
    ("status", "next_attempt", "claimed_until", "claimable"),
    [
        (DeliveryStatus.PENDING, T0, None, True),
        (DeliveryStatus.PENDING, T0 - timedelta(hours=1), None, True),
        (DeliveryStatus.PENDING, T0 + timedelta(seconds=1), None, False),
        (DeliveryStatus.PENDING, T0, T0 + timedelta(seconds=1), False),
        (DeliveryStatus.PENDING, T0, T0, True),
        (DeliveryStatus.PENDING, T0, T0 - timedelta(minutes=1), True),
        (DeliveryStatus.SENT, T0, None, False),
        (DeliveryStatus.FAILED, T0, None, False),
        (DeliveryStatus.EMPTY, T0, None, False),
    ],
)
def test_claim_takes_only_due_deliveries_with_a_free_or_expired_lease(
    engine: Engine,
    status: DeliveryStatus,
    next_attempt: datetime,
    claimed_until: datetime | None,
    claimable: bool,
) -> None:
    [delivery_id] = add_deliveries(engine, 1)
    with Session(engine) as session, session.begin():
        session.execute(
            update(Delivery)
            .where(col(Delivery.id) == delivery_id)
            .values(
                status=status,
                next_attempt_at=next_attempt,
                claimed_by=OTHER if claimed_until else None,
                claimed_until=claimed_until,
            )
        )

    claimed = claim_due_deliveries(engine, worker=WORKER, now=T0, lease=LEASE)

    assert claimed == ([delivery_id] if claimable else [])
    row = delivery_row(engine, delivery_id)
    if claimable:
        assert (row.claimed_by, row.claimed_until) == (WORKER, T0 + LEASE)
    else:
        assert row.claimed_by == (OTHER if claimed_until else None)


def test_concurrent_claims_share_the_outbox_without_overlap(engine: Engine) -> None:
    ids = add_deliveries(engine, 24)
    workers = [f"host:{n}:cafe" for n in range(4)]
    claims: dict[str, list[int]] = {worker: [] for worker in workers}

    def claim_until_empty(worker: str) -> None:
        while batch := claim_due_deliveries(engine, worker=worker, now=T0, lease=LEASE, limit=2):
            claims[worker].extend(batch)

    threads = [threading.Thread(target=claim_until_empty, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    everything = [i for batch in claims.values() for i in batch]
    assert sorted(everything) == ids
    with Session(engine) as session:
        owners = dict(session.exec(select(Delivery.id, Delivery.claimed_by)).all())
    assert owners == {i: w for w, batch in claims.items() for i in batch}


@pytest.mark.parametrize("mark", ["sent", "failed", "retry"])
def test_a_mark_applies_only_while_the_worker_holds_the_lease(
    engine: Engine, settings_for_marks: Settings, mark: str
) -> None:
    [delivery_id] = add_deliveries(engine, 1)
    assert claim_due_deliveries(engine, worker=WORKER, now=T0, lease=LEASE) == [delivery_id]
    # The lease runs out and another worker takes the delivery over.
    later = T0 + LEASE
    assert claim_due_deliveries(engine, worker=OTHER, now=later, lease=LEASE) == [delivery_id]

    def apply(worker: str) -> bool:
        if mark == "sent":
            return _mark_sent(engine, delivery_id, worker, later)
        if mark == "failed":
            return _mark_failed(engine, delivery_id, worker, "550 no")
        return _mark_retry(engine, settings_for_marks, delivery_id, worker, "451 later", later)

    assert apply(WORKER) is False
    stale = delivery_row(engine, delivery_id)
    assert (stale.status, stale.attempts, stale.claimed_by) == (DeliveryStatus.PENDING, 0, OTHER)

    assert apply(OTHER) is True
    done = delivery_row(engine, delivery_id)
    expected = {"sent": DeliveryStatus.SENT, "failed": DeliveryStatus.FAILED}
    assert done.status == expected.get(mark, DeliveryStatus.PENDING)
    assert (done.attempts, done.claimed_by, done.claimed_until) == (1, None, None)


@pytest.fixture
def settings_for_marks() -> Settings:
    return Settings()


class FakeTransport:
    """Accepts every message; ``during_send`` runs inside each send (to move time, or race)."""

    name = "fake"

    def __init__(self, during_send: Callable[[EmailMessage], None]) -> None:
        self.during_send = during_send
        self.sent: list[str] = []

    async def send(self, message: EmailMessage) -> None:
        self.during_send(message)
        self.sent.append(str(message["Message-ID"]))


def plan_now(world: World, now: datetime) -> list[Delivery]:
    plan_digests_now(world.engine, world.settings, now=now)
    return [d for d in world.deliveries() if d.status == DeliveryStatus.PENDING]


def subscribers(count: int) -> list[dict[str, Any]]:
    return [
        {"email": f"reader{n:02d}@example.org", "timezone": "UTC", "topics": [ELECTION]}
        for n in range(count)
    ]


def test_slow_batch_renews_its_leases_and_leaves_what_another_worker_took(
    config: ConfigWriter, start: Callable[[], World]
) -> None:
    config.subscribers = subscribers(3)
    world = start()
    world.add_article("Election interference probe opens", {ELECTION: 3.0})
    first, second, third = plan_now(world, LATER)
    clock = [LATER]
    taken: list[int] = []

    def six_minutes_each(message: EmailMessage) -> None:
        clock[0] += timedelta(minutes=6)
        if message["Message-ID"] == first.message_id:
            # The second lease ran out meanwhile (6 < 10 < 12 minutes); another worker takes it.
            clock[0] += timedelta(minutes=6)
            taken.extend(
                claim_due_deliveries(
                    world.engine,
                    worker=OTHER,
                    now=clock[0],
                    lease=world.settings.mail.lease,
                    subscriber_id=second.subscriber_id,
                )
            )

    transport = FakeTransport(six_minutes_each)
    report = asyncio.run(
        send_due_deliveries(
            world.engine,
            world.settings,
            transport,
            build_environment(),
            clock=lambda: clock[0],
            worker=WORKER,
        )
    )

    assert taken == [second.id]
    assert transport.sent == [first.message_id, third.message_id]
    assert len(report.sent) == 2
    statuses = {d.id: (d.status, d.claimed_by) for d in world.deliveries()}
    assert statuses[first.id] == (DeliveryStatus.SENT, None)
    assert statuses[second.id] == (DeliveryStatus.PENDING, OTHER)
    assert statuses[third.id] == (DeliveryStatus.SENT, None)


def test_two_workers_send_each_message_exactly_once(
    config: ConfigWriter, start: Callable[[], World]
) -> None:
    config.subscribers = subscribers(12)
    world = start()
    world.add_article("Election interference probe opens", {ELECTION: 3.0})
    planned = plan_now(world, LATER)
    # Both workers' first messages wait at DATA for each other: they really overlap.
    world.smtp.handler.rendezvous = 2
    reports: dict[str, SendReport] = {}

    def run_worker(worker: str) -> None:
        engine = create_db_engine(str(world.engine.url.render_as_string(hide_password=False)))
        try:
            transport = SmtpTransport(world.settings.mail)
            reports[worker] = asyncio.run(
                send_all(engine, world.settings, transport, worker=worker)
            )
        finally:
            engine.dispose()

    threads = [threading.Thread(target=run_worker, args=(w,)) for w in (WORKER, OTHER)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(world.smtp.handler.message_ids()) == sorted(d.message_id for d in planned)
    assert world.smtp.handler.peak_in_flight == 2
    assert all(reports[w].sent for w in (WORKER, OTHER))
    assert sum(len(r.sent) for r in reports.values()) == len(planned)
    assert {(d.status, d.attempts, d.claimed_by) for d in world.deliveries()} == {
        (DeliveryStatus.SENT, 1, None)
    }


async def send_all(
    engine: Engine, settings: Settings, transport: SmtpTransport, *, worker: str
) -> SendReport:
    """One worker's run, claiming one delivery at a time so that workers interleave."""
    try:
        return await send_due_deliveries(
            engine, settings, transport, build_environment(), now=LATER, worker=worker, batch=1
        )
    finally:
        await transport.close()


def test_rate_limit_spaces_the_whole_batch(
    config: ConfigWriter, start: Callable[[], World]
) -> None:
    config.subscribers = subscribers(4)
    world = start()
    world.add_article("Election interference probe opens", {ELECTION: 3.0})
    plan_now(world, LATER)
    world.smtp.handler.replies = ["451 4.3.0 try later"]
    fake = {"now": 0.0}
    started: list[float] = []

    async def sleep(seconds: float) -> None:
        fake["now"] += seconds

    limiter = RateLimiter(2, clock=lambda: fake["now"], sleep=sleep)
    transport = SmtpTransport(world.settings.mail, limiter=limiter)
    world.smtp.handler.handle_MAIL = record_start(started, fake)  # type: ignore[attr-defined]

    report = asyncio.run(send_all(world.engine, world.settings, transport, worker=WORKER))

    # Two a minute, refused attempts included, in one batch that never waits on the wall clock.
    assert started == [0.0, 30.0, 60.0, 90.0]
    assert (len(report.sent), len(report.retrying)) == (3, 1)


def record_start(started: list[float], fake: dict[str, float]) -> Any:
    async def handle_MAIL(
        server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        started.append(fake["now"])
        envelope.mail_from = address
        return "250 OK"

    return handle_MAIL


def test_server_down_delays_delivery_and_keeps_the_message_id(world: World) -> None:
    world.add_article("Election interference probe opens", {ELECTION: 3.0})
    world.smtp.stop()

    down = world.send(LATER)

    assert down.sent == []
    [waiting] = world.deliveries()
    assert (waiting.status, waiting.attempts, waiting.claimed_by) == (
        DeliveryStatus.PENDING,
        1,
        None,
    )
    assert "cannot reach" in (waiting.last_error or "")
    assert world.send(waiting.next_attempt_at - timedelta(seconds=1), scheduled=True).sent == []

    with running_smtp_server(world.smtp.port) as revived:
        back = world.send(waiting.next_attempt_at, scheduled=True)

    assert back.sent == [SUBSCRIBER]
    assert revived.handler.message_ids() == [waiting.message_id]
    [sent] = world.deliveries()
    assert (sent.status, sent.attempts, sent.last_error) == (DeliveryStatus.SENT, 2, None)


def list_deliveries_cli(config: ConfigWriter, *args: str) -> list[str]:
    """``monitor deliveries list ARGS``: the table's rows (lines with a subscriber's address)."""
    result = CliRunner().invoke(
        app, ["--config", str(config.directory), "deliveries", "list", *args]
    )
    assert result.exit_code == 0, result.output
    return [line for line in result.output.splitlines() if "@example.org" in line]


STATUSES = {"pending", "failed", "sent", "empty"}


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        ((), ["sent", "pending", "failed"]),
        (("--failed",), ["failed"]),
        (("--pending",), ["pending"]),
        (("--failed", "--pending"), ["pending", "failed"]),
        (("--limit", "1"), ["sent"]),
    ],
)
def test_deliveries_list_shows_status_attempts_and_the_servers_reason(
    config: ConfigWriter, start: Callable[[], World], args: tuple[str, ...], shown: list[str]
) -> None:
    config.subscribers = subscribers(3)
    world = start()
    world.add_article("Election interference probe opens", {ELECTION: 3.0})
    # In delivery order: reader00 refused for good, reader01 put off, reader02 accepted.
    world.smtp.handler.replies = ["550 5.7.1 rejected by local policy", "451 4.3.0 come back later"]
    world.send(LATER)

    rows = list_deliveries_cli(config, *args)

    assert [next(w for w in row.split() if w in STATUSES) for row in rows] == shown
    by_status = {next(w for w in row.split() if w in STATUSES): row for row in rows}
    if "failed" in by_status:
        assert "reader00@example.org" in by_status["failed"]
        assert "550 5.7.1 rejected by local policy" in by_status["failed"]
    if "pending" in by_status:
        retry = LATER + world.settings.mail.retry_backoff
        assert "reader01@example.org" in by_status["pending"]
        assert f"{retry:%Y-%m-%d %H:%M} UTC" in by_status["pending"]
        assert "451 4.3.0 come back later" in by_status["pending"]
    if "sent" in by_status:
        assert "reader02@example.org" in by_status["sent"]
