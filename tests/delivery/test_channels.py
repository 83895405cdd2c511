"""Channels through real parts: a webhook receiver on 127.0.0.1 that checks signatures with the
reference Standard Webhooks library and answers 200, 500, 429 with Retry-After, 410, 301 and
slowly; an Apprise json:// target; an ntfy-style server; SMTP beside them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from monitor.delivery.dispatch import SendReport
from monitor.models import (
    Channel,
    Delivery,
    DeliveryItem,
    DeliveryStatus,
    Match,
    Topic,
    TopicPriority,
)
from monitor.operations import open_database, send_digests, sync_config
from monitor.settings import Settings
from tests.utils.config import ConfigWriter
from tests.utils.factories import add_article
from tests.utils.hookserver import Answer, HookServer, running_hook_server
from tests.utils.smtpserver import SmtpServer

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
# Monday 9 September 2024, 04:00 UTC: 06:00 in Berlin, where the daily e-mail is at 08:00.
T0 = datetime(2024, 9, 9, 4, 0, tzinfo=UTC)
SEEN = T0 + timedelta(minutes=30)
LATER = T0 + timedelta(hours=1)
ELECTION, DISINFO = "election-interference", "russian-disinformation"
HOSTILE = "<!channel> @everyone [click here](https://evil.example/x) <@U0123> &lt;!here&gt;"


@dataclass
class World:
    """A synced configuration with channels, on a migrated database, beside SMTP."""

    engine: Engine
    settings: Settings
    hooks: HookServer
    smtp: SmtpServer
    topics: dict[str, int]
    reports: list[SendReport] = field(default_factory=list)

    def send(self, now: datetime) -> SendReport:
        report = asyncio.run(send_digests(self.engine, self.settings, scheduled=True, now=now))
        self.reports.append(report)
        return report

    def add_article(self, title: str, slug: str = ELECTION, *, seen: datetime = SEEN) -> int:
        with Session(self.engine) as session, session.begin():
            article = add_article(session, title, seen=seen, summary="What happened, briefly.")
            match = Match(article_id=article.id or 0, topic_id=self.topics[slug],
                          topic_version=1, score=2.0, terms=["election interference"],
                          snippet="election interference, briefly", matched_at=seen)  # fmt: skip
            session.add(match)
            return article.id or 0

    def deliveries(self) -> list[Delivery]:
        with Session(self.engine) as session:
            return list(session.exec(select(Delivery).order_by(col(Delivery.id))))

    def channel_deliveries(self) -> list[Delivery]:
        return [d for d in self.deliveries() if d.channel_id is not None]

    def channels(self) -> list[Channel]:
        with Session(self.engine) as session:
            return list(session.exec(select(Channel).order_by(col(Channel.id))))


@pytest.fixture
def hooks() -> Iterator[HookServer]:
    with running_hook_server(SECRET) as server:
        yield server


@pytest.fixture
def start(
    config: ConfigWriter, hooks: HookServer, smtp_server: SmtpServer
) -> Iterator[Callable[..., World]]:
    engines: list[Engine] = []

    def _start(*channels: dict[str, Any], extra: str = "") -> World:
        config.smtp_port = smtp_server.port
        config.subscribers[0]["channels"] = list(channels)
        config.extra_toml = (
            '[channels]\nallow_networks = ["127.0.0.0/8"]\ntimeout = "2s"\n'
            'retry_backoff = "1m"\n' + extra
        )
        settings = config.settings()
        engine = open_database(settings)
        engines.append(engine)
        sync_config(engine, settings, now=T0)
        with Session(engine) as session:
            topics = {t.slug: t.id or 0 for t in session.exec(select(Topic))}
        return World(engine, settings, hooks, smtp_server, topics)

    yield _start
    for engine in engines:
        engine.dispose()


def webhook(hooks: HookServer, path: str = "/hook", **extra: Any) -> dict[str, Any]:
    return {"url": hooks.url(path), "secret": SECRET, **extra}


def test_a_webhook_gets_a_signed_documented_payload_once(
    start: Callable[..., World], hooks: HookServer
) -> None:
    world = start(webhook(hooks, name="desk"))
    article = world.add_article("Election interference probe opens")

    report = world.send(LATER)
    world.send(LATER + timedelta(minutes=1))

    [received] = hooks.requests_to("/hook")
    assert received.verified, received.verify_error
    [delivery] = world.channel_deliveries()
    payload = received.json()
    assert received.headers["webhook-id"] == delivery.message_id == payload["id"]
    assert received.headers["idempotency-key"] == delivery.message_id
    assert received.headers["content-type"] == "application/json"
    assert payload["schema_version"] == 1
    assert payload["type"] == "digest"
    assert payload["idempotency_key"] == delivery.message_id
    assert payload["frequency"] == "instant"
    assert payload["period"] == "instant:2024-09-09T05:00:00Z"
    assert payload["channel"] == {"id": delivery.channel_id, "name": "desk"}
    assert payload["subscriber"]["email"] == "analyst@example.org"
    [topic] = payload["topics"]
    assert (topic["slug"], topic["priority"], topic["stories"]) == (ELECTION, "normal", 1)
    [item] = topic["articles"]
    assert item["title"] == "Election interference probe opens"
    assert item["terms"] == ["election interference"]
    assert item["snippet"] == "election interference, briefly"
    assert item["url"].startswith("https://news.example.com/")
    assert set(item) == {"title", "url", "outlet", "published_at", "first_seen_at",
                         "language", "snippet", "terms", "story"}  # fmt: skip
    assert delivery.status == DeliveryStatus.SENT
    assert f"channel {delivery.channel_id}" in report.sent_channels[0]
    assert "answered 200" in report.sent_channels[0]
    with Session(world.engine) as session:
        [channel_item] = session.exec(
            select(DeliveryItem).where(col(DeliveryItem.channel_id).is_not(None))
        ).all()
    # The channel's article is its own: the daily e-mail still has it to send.
    assert (channel_item.article_id, channel_item.subscriber_id) == (article, None)


def test_the_channel_and_the_daily_email_each_get_the_article(
    start: Callable[..., World], hooks: HookServer, smtp_server: SmtpServer
) -> None:
    world = start(webhook(hooks))
    world.add_article("Election interference probe opens")

    world.send(LATER)
    assert len(hooks.requests_to("/hook")) == 1
    assert smtp_server.messages == []
    world.send(T0 + timedelta(hours=2, minutes=1))  # 08:01 in Berlin

    assert len(smtp_server.messages) == 1
    assert "Election interference probe opens" in str(smtp_server.messages[0].message)
    assert len(hooks.requests_to("/hook")) == 1


def test_instant_high_priority_to_the_channel_while_the_email_stays_daily(
    start: Callable[..., World], hooks: HookServer, smtp_server: SmtpServer
) -> None:
    world = start(webhook(hooks, priority="high"))
    with Session(world.engine) as session, session.begin():
        topic = session.get(Topic, world.topics[ELECTION])
        assert topic is not None
        topic.priority = TopicPriority.HIGH
    world.add_article("Election interference probe opens", ELECTION)
    world.add_article("Troll farm exposed", DISINFO)

    world.send(LATER)

    [received] = hooks.requests_to("/hook")
    titles = [a["title"] for t in received.json()["topics"] for a in t["articles"]]
    assert titles == ["Election interference probe opens"]
    world.send(T0 + timedelta(hours=2, minutes=1))
    [mail] = smtp_server.messages
    text = str(mail.message)
    assert "Election interference probe opens" in text
    assert "Troll farm exposed" in text


@pytest.mark.parametrize(
    ("answer", "status", "attempts", "error", "retry_after"),
    [
        (Answer(500, body=b"database down"), DeliveryStatus.PENDING, 1,
         "answered 500 Internal Server Error: database down", None),
        (Answer(429, {"Retry-After": "600"}, b"slow down"), DeliveryStatus.PENDING, 1,
         "answered 429 Too Many Requests: slow down (Retry-After 600 s)", 600),
        (Answer(503, {"Retry-After": "120"}), DeliveryStatus.PENDING, 1,
         "answered 503 Service Unavailable: ok (Retry-After 120 s)", 120),
        (Answer(404, body=b"no such hook"), DeliveryStatus.FAILED, 1,
         "answered 404 Not Found: no such hook", None),
        (Answer(410, body=b"unsubscribed"), DeliveryStatus.FAILED, 1,
         "answered 410 Gone: unsubscribed (the channel is disabled)", None),
        (Answer(301, {"Location": "https://hooks.example.org/new/secret"}), DeliveryStatus.FAILED,
         1, "redirects are not followed: give the channel the URL it moved to, "
         "https://hooks.example.org/…)", None),
        (Answer(200, delay=4.0), DeliveryStatus.PENDING, 1, "no complete answer within 2 s",
         None),
    ],
)  # fmt: skip
def test_what_an_answer_does_to_the_delivery(
    start: Callable[..., World],
    hooks: HookServer,
    answer: Answer,
    status: DeliveryStatus,
    attempts: int,
    error: str,
    retry_after: int | None,
) -> None:
    world = start(webhook(hooks))
    hooks.script("/hook", answer)
    world.add_article("Election interference probe opens")

    world.send(LATER)

    [delivery] = world.channel_deliveries()
    assert (delivery.status, delivery.attempts) == (status, attempts)
    assert delivery.last_error is not None
    assert error in delivery.last_error
    assert SECRET not in delivery.last_error
    if status == DeliveryStatus.PENDING:
        wait = (delivery.next_attempt_at - LATER).total_seconds()
        if retry_after is None:
            assert 54 <= wait <= 66  # channels.retry_backoff, a tenth either way
        else:
            assert wait >= retry_after
    [channel] = world.channels()
    assert (channel.disabled_reason is not None) == (answer.status == 410)


def test_a_retry_carries_the_same_idempotency_key_and_a_fresh_signature(
    start: Callable[..., World], hooks: HookServer
) -> None:
    world = start(webhook(hooks))
    hooks.script("/hook", Answer(500), Answer(200))
    world.add_article("Election interference probe opens")

    world.send(LATER)
    world.send(LATER + timedelta(seconds=30))  # before its retry is due: nothing
    world.send(LATER + timedelta(minutes=2))

    first, second = hooks.requests_to("/hook")
    assert first.verified
    assert second.verified
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body
    [delivery] = world.channel_deliveries()
    assert (delivery.status, delivery.attempts, delivery.last_error) == (
        DeliveryStatus.SENT, 2, None,
    )  # fmt: skip


def test_a_gone_channel_gets_nothing_more(start: Callable[..., World], hooks: HookServer) -> None:
    world = start(webhook(hooks))
    hooks.script("/hook", Answer(410))
    world.add_article("Election interference probe opens")
    world.send(LATER)
    world.add_article("Second probe opens", seen=LATER + timedelta(minutes=1))

    world.send(LATER + timedelta(minutes=2))

    assert len(hooks.requests_to("/hook")) == 1
    assert len(world.channel_deliveries()) == 1


def test_a_delivery_failing_for_days_is_given_up(
    start: Callable[..., World], hooks: HookServer
) -> None:
    world = start(webhook(hooks), extra='give_up_after = "1h"\n')
    hooks.script("/hook", Answer(503))
    world.add_article("Election interference probe opens")

    world.send(LATER)
    world.send(LATER + timedelta(hours=2))

    [delivery] = world.channel_deliveries()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error is not None
    assert delivery.last_error.startswith("gave up after 2 attempts: webhook ")


def test_a_slow_channel_holds_up_neither_another_channel_nor_email(
    start: Callable[..., World], hooks: HookServer, smtp_server: SmtpServer
) -> None:
    world = start(webhook(hooks, "/slow"), webhook(hooks, "/fast"))
    hooks.script("/slow", Answer(200, delay=1.5))
    world.add_article("Election interference probe opens")
    world.send(LATER)

    [fast] = hooks.requests_to("/fast")
    [slow] = hooks.requests_to("/slow")
    # The fast one did not wait for the slow one's answer (1.5 s): they went side by side.
    assert fast.arrived - slow.arrived < 1.5
    assert {d.status for d in world.channel_deliveries()} == {DeliveryStatus.SENT}


def test_channels_go_while_the_mail_server_is_down(
    start: Callable[..., World], hooks: HookServer, smtp_server: SmtpServer
) -> None:
    world = start(webhook(hooks))
    smtp_server.stop()
    world.add_article("Election interference probe opens")

    report = world.send(T0 + timedelta(hours=2, minutes=1))

    assert len(hooks.requests_to("/hook")) == 1
    assert any("mail: cannot reach" in line for line in report.retrying)
    statuses = {d.channel_id is None: d.status for d in world.deliveries()}
    assert statuses == {True: DeliveryStatus.PENDING, False: DeliveryStatus.SENT}


def test_an_ntfy_channel_from_the_outbox(start: Callable[..., World], hooks: HookServer) -> None:
    world = start({"url": f"ntfy://127.0.0.1:{hooks.port}/election-desk"})
    world.add_article(HOSTILE)

    report = world.send(LATER)

    [received] = hooks.requests_to("/")
    body = received.json()
    assert body["topic"] == "election-desk"
    assert body["title"].startswith("[monitor] Election interference: <\u200b!channel> @\u200b")
    assert "@everyone" not in body["title"] + body["message"]
    assert "accepted (text)" in report.sent_channels[0]
    [delivery] = world.channel_deliveries()
    assert delivery.status == DeliveryStatus.SENT


def test_deliveries_list_names_the_channel(
    start: Callable[..., World], hooks: HookServer, config: ConfigWriter
) -> None:
    from typer.testing import CliRunner

    from monitor.cli import app

    world = start(webhook(hooks, name="desk"))
    hooks.script("/hook", Answer(429, {"Retry-After": "60"}, b"slow down"))
    world.add_article("Election interference probe opens")
    world.send(LATER)

    result = CliRunner().invoke(app, ["--config", str(config.directory), "deliveries", "list"])

    assert result.exit_code == 0, result.output
    [row] = [line for line in result.output.splitlines() if "analyst@example.org" in line]
    assert f"#1 desk (http://127.0.0.1:{hooks.port}/…)" in row
    assert "instant:2024-09-09T05:00:00Z" in row
    assert "ch1/" not in row
    assert "answered 429 Too Many Requests: slow down (Retry-After 60 s)" in result.output


def test_a_webhook_url_never_reaches_the_log(
    start: Callable[..., World], hooks: HookServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    world = start(webhook(hooks, "/hooks/T0KEN-s3cr3t-path"))
    hooks.script("/hooks/T0KEN-s3cr3t-path", Answer(500), Answer(200))
    world.add_article("Election interference probe opens")

    world.send(LATER)
    world.send(LATER + timedelta(minutes=5))

    assert len(hooks.requests_to("/hooks/T0KEN-s3cr3t-path")) == 2
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "channel sent channel_id=1" in logged
    assert "T0KEN-s3cr3t-path" not in logged
    assert SECRET not in logged
