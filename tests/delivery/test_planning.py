"""Planning deliveries at every frequency: period keys, instant batches, per-stream "since",
"nothing new" notices, ended subscriptions, and each story once per person."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from monitor.delivery.digest import PlannedDelivery, plan_delivery
from monitor.delivery.subscriptions import (
    DueGroup,
    all_subscription_groups,
    due_groups,
    make_schedule,
)
from monitor.models import (
    Delivery,
    DeliveryItem,
    DeliveryStatus,
    Frequency,
    Match,
    Subscriber,
    Subscription,
    TopicPriority,
)
from monitor.operations import open_database, send_digests, sync_config
from tests.utils.config import ConfigWriter
from tests.utils.factories import add_article, add_topic

LOOKBACK = timedelta(days=1)
# Monday 23 November 2026, 09:00 UTC (10:00 in Berlin).
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
TICK = timedelta(seconds=60)

INSTANT = make_schedule(Frequency.INSTANT)
HOURLY = make_schedule(Frequency.HOURLY)
DAILY = make_schedule(Frequency.DAILY, "08:00")
WEEKLY = make_schedule(Frequency.WEEKLY, "08:00", 0)


@dataclass
class Desk:
    """One subscriber on a migrated database, and helpers to feed and plan it."""

    engine: Engine
    subscriber_id: int
    topics: dict[str, int]

    def subscribe(
        self, slug: str, frequency: Frequency, *, at: datetime = T0, send_time: str = "08:00"
    ) -> None:
        schedule = make_schedule(frequency, send_time, 0)
        with Session(self.engine) as session, session.begin():
            sub = Subscription(
                subscriber_id=self.subscriber_id, topic_id=self.topics[slug], created_at=at
            )
            schedule.apply(sub)
            session.add(sub)

    def article(self, title: str, slugs: list[str], *, seen: datetime) -> int:
        with Session(self.engine) as session, session.begin():
            article = add_article(session, title, seen=seen)
            for slug in slugs:
                session.add(
                    Match(
                        article_id=article.id or 0,
                        topic_id=self.topics[slug],
                        topic_version=1,
                        score=1.0,
                        matched_at=seen,
                    )
                )
            return article.id or 0

    def due(self, now: datetime) -> list[DueGroup]:
        with Session(self.engine) as session:
            return due_groups(session, now=now, lookback=LOOKBACK)

    def plan(self, now: datetime) -> list[PlannedDelivery]:
        """Plan what is due at ``now``, as the digest job does on a tick."""
        planned = []
        for group in self.due(now):
            with Session(self.engine) as session, session.begin():
                result = plan_delivery(session, group, message_domain="example.net", now=now)
            if result is not None:
                planned.append(result)
        return planned

    def deliveries(self) -> list[tuple[str, DeliveryStatus, list[str]]]:
        """Each delivery's period key, status and article titles."""
        with Session(self.engine) as session:
            found = []
            for delivery in session.exec(select(Delivery).order_by(col(Delivery.id))):
                titles = session.exec(
                    select(DeliveryItem.article_id).where(DeliveryItem.delivery_id == delivery.id)
                ).all()
                found.append((delivery.period_key, DeliveryStatus(delivery.status), titles))
        return [(key, status, [str(t) for t in sorted(ids)]) for key, status, ids in found]


@pytest.fixture
def desk(engine: Engine) -> Desk:
    with Session(engine) as session, session.begin():
        topics = {
            slug: add_topic(session, slug, slug, priority=priority).id or 0
            for slug, priority in (
                ("alerts", TopicPriority.HIGH),
                ("banks", TopicPriority.NORMAL),
                ("votes", TopicPriority.NORMAL),
            )
        }
        subscriber = Subscriber(email="ada@example.org", timezone="Europe/Berlin", created_at=T0)
        session.add(subscriber)
        session.flush()
        return Desk(engine, subscriber.id or 0, topics)


def keys(groups: list[DueGroup]) -> list[str]:
    return [group.period_key for group in groups]


# --- period keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(T0 + timedelta(minutes=59), [], id="before-first-hour"),
        pytest.param(T0 + timedelta(hours=1), ["hourly:2026-11-23T10Z"], id="on-the-hour"),
        pytest.param(
            T0 + timedelta(hours=1, minutes=59), ["hourly:2026-11-23T10Z"], id="late-in-hour"
        ),
        pytest.param(T0 + timedelta(hours=15), ["hourly:2026-11-24T00Z"], id="next-day"),
    ],
)
def test_hourly_period_keys(desk: Desk, now: datetime, expected: list[str]) -> None:
    # Subscribed at 09:20: the 09:00 hour had begun, so the first period is 10:00.
    desk.subscribe("banks", Frequency.HOURLY, at=T0 + timedelta(minutes=20))

    assert keys(desk.due(now)) == expected


def test_hourly_plans_once_per_hour(desk: Desk) -> None:
    desk.subscribe("banks", Frequency.HOURLY, at=T0 - timedelta(minutes=1))
    ticks = [T0 + n * TICK * 15 for n in range(9)]  # 09:00 to 11:00 every 15 minutes

    planned = [key for now in ticks for key in keys(desk.due(now)) if desk.plan(now)]

    assert planned == [
        "hourly:2026-11-23T09Z",
        "hourly:2026-11-23T10Z",
        "hourly:2026-11-23T11Z",
    ]
    assert [status for _, status, _ in desk.deliveries()] == [DeliveryStatus.EMPTY] * 3


def berlin(day: int, hour: int, minute: int = 0) -> datetime:
    """A time in November 2026 in Berlin (CET, UTC+1), as UTC."""
    return datetime(2026, 11, day, hour - 1, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(berlin(23, 7, 59), [], id="monday-before"),
        pytest.param(berlin(23, 8), ["weekly:2026-W48@mon 08:00"], id="monday-on-time"),
        pytest.param(berlin(29, 23, 59), ["weekly:2026-W48@mon 08:00"], id="sunday-after"),
        pytest.param(berlin(30, 7, 59), ["weekly:2026-W48@mon 08:00"], id="next-monday-before"),
        pytest.param(berlin(30, 8), ["weekly:2026-W49@mon 08:00"], id="next-monday"),
    ],
)
def test_weekly_period_keys(desk: Desk, now: datetime, expected: list[str]) -> None:
    desk.subscribe("banks", Frequency.WEEKLY, at=berlin(23, 7))

    assert keys(desk.due(now)) == expected


def test_weekly_plans_once_per_week(desk: Desk) -> None:
    desk.subscribe("banks", Frequency.WEEKLY, at=berlin(23, 7))

    assert desk.plan(berlin(23, 8))[0].items == 0
    desk.article("Bank rates", ["banks"], seen=berlin(24, 12))
    assert desk.plan(berlin(27, 8)) == []
    [second] = desk.plan(berlin(30, 8, 1))

    assert second.items == 1
    assert [key for key, _, _ in desk.deliveries()] == [
        "weekly:2026-W48@mon 08:00",
        "weekly:2026-W49@mon 08:00",
    ]


# --- instant -------------------------------------------------------------------------------------


@pytest.mark.parametrize("slug", ["alerts", "banks"], ids=["high-priority", "normal-priority"])
def test_instant_arrives_at_the_next_tick_in_one_batch(desk: Desk, slug: str) -> None:
    desk.subscribe(slug, Frequency.INSTANT, at=T0)
    first = desk.article("First", [slug], seen=T0 + timedelta(seconds=5))
    second = desk.article("Second", [slug], seen=T0 + timedelta(seconds=20))

    [planned] = desk.plan(T0 + TICK)

    assert planned.items == 2
    assert desk.deliveries() == [
        ("instant:2026-11-23T09:01:00Z", DeliveryStatus.PENDING, sorted([str(first), str(second)]))
    ]


def test_instant_with_nothing_new_writes_nothing(desk: Desk) -> None:
    desk.subscribe("alerts", Frequency.INSTANT, at=T0)
    desk.article("First", ["alerts"], seen=T0 + timedelta(seconds=5))
    desk.plan(T0 + TICK)

    quiet = [desk.plan(T0 + n * TICK) for n in range(2, 5)]
    third = desk.article("Third", ["alerts"], seen=T0 + 4 * TICK + timedelta(seconds=1))
    [later] = desk.plan(T0 + 5 * TICK)

    assert quiet == [[], [], []]
    assert later.items == 1
    assert [(key, ids) for key, _, ids in desk.deliveries()][1:] == [
        ("instant:2026-11-23T09:05:00Z", [str(third)])
    ]


def test_instant_and_daily_streams_send_each_story_once(desk: Desk) -> None:
    desk.subscribe("alerts", Frequency.INSTANT, at=T0)
    desk.subscribe("banks", Frequency.DAILY, at=T0)
    both = desk.article("Bank hit by an alert", ["alerts", "banks"], seen=T0 + TICK / 2)
    banks = desk.article("Bank rates", ["banks"], seen=T0 + TICK / 2)

    [instant] = desk.plan(T0 + TICK)
    [daily] = desk.plan(berlin(24, 8))

    assert (instant.items, daily.items) == (1, 1)
    assert [(key.split(":")[0], ids) for key, _, ids in desk.deliveries()] == [
        ("instant", [str(both)]),
        ("daily", [str(banks)]),
    ]


# --- since, per stream ---------------------------------------------------------------------------


def test_since_counts_from_the_same_stream_only(desk: Desk) -> None:
    start = berlin(16, 7)
    desk.subscribe("votes", Frequency.WEEKLY, at=start)
    desk.subscribe("alerts", Frequency.INSTANT, at=start)
    desk.plan(berlin(16, 8))  # last week's weekly period, empty
    midweek = desk.article("Midweek vote", ["votes"], seen=berlin(19, 12))
    desk.article("Alert", ["alerts"], seen=berlin(22, 23))
    desk.plan(berlin(22, 23, 1))  # an instant delivery the evening before

    [weekly] = [g for g in desk.due(berlin(23, 8)) if g.period_key.startswith("weekly:")]
    [planned] = desk.plan(berlin(23, 8))

    # From last week's digest, not from yesterday's instant e-mail.
    assert weekly.since == berlin(16, 8) - LOOKBACK
    assert planned.items == 1
    assert desk.deliveries()[-1][2] == [str(midweek)]


def test_first_period_of_a_stream_reaches_back_one_period(desk: Desk) -> None:
    # Long-standing subscriptions moved to weekly: the first weekly digest covers one week
    # (and the lookback), not everything since the subscription began.
    desk.subscribe("votes", Frequency.WEEKLY, at=berlin(2, 7))

    [group] = desk.due(berlin(23, 8))

    assert group.since == berlin(16, 8) - LOOKBACK


# --- nothing new ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frequency", "notify_empty", "expected"),
    [
        (Frequency.DAILY, False, [DeliveryStatus.EMPTY]),
        (Frequency.DAILY, True, [DeliveryStatus.PENDING]),
        (Frequency.HOURLY, True, [DeliveryStatus.PENDING]),
        (Frequency.WEEKLY, True, [DeliveryStatus.PENDING]),
        # A notice every tick would be noise: instant never sends one.
        (Frequency.INSTANT, True, []),
        (Frequency.INSTANT, False, []),
    ],
)
def test_period_without_news(
    desk: Desk, frequency: Frequency, notify_empty: bool, expected: list[DeliveryStatus]
) -> None:
    with Session(desk.engine) as session, session.begin():
        subscriber = session.get(Subscriber, desk.subscriber_id)
        assert subscriber is not None
        subscriber.notify_empty = notify_empty
        session.add(subscriber)
    desk.subscribe("banks", frequency, at=berlin(23, 7))

    planned = desk.plan(berlin(23, 8))

    assert [status for _, status, _ in desk.deliveries()] == expected
    assert [p.items for p in planned] == [0] * len(expected)


# --- ended subscriptions -------------------------------------------------------------------------


@pytest.mark.parametrize("frequency", list(Frequency))
def test_ended_subscriptions_are_never_planned(desk: Desk, frequency: Frequency) -> None:
    desk.subscribe("banks", frequency, at=berlin(23, 7))
    desk.article("Bank rates", ["banks"], seen=berlin(23, 7, 30))
    with Session(desk.engine) as session, session.begin():
        for sub in session.exec(select(Subscription)):
            sub.unsubscribed_at = berlin(23, 7, 45)
            session.add(sub)

    assert desk.due(berlin(23, 8)) == []
    with Session(desk.engine) as session:
        on_demand = all_subscription_groups(session, period_key="manual:x", lookback=LOOKBACK)
    assert on_demand == []


# --- through the digest job ----------------------------------------------------------------------


def test_digest_job_sends_a_high_priority_match_within_one_tick(config: ConfigWriter) -> None:
    config.topics[0]["priority"] = "high"
    config.subscribers = [
        {
            "email": "desk@example.org",
            "timezone": "America/New_York",
            "weekly": "mon 07:00",
            "topics": [
                config.topics[1]["slug"],
                {"topic": config.topics[0]["slug"], "instant": True},
            ],
        }
    ]
    settings = config.settings()
    engine = open_database(settings)
    try:
        sync_config(engine, settings, now=T0)
        with Session(engine) as session, session.begin():
            topic_id = session.exec(
                select(Subscription.topic_id).where(Subscription.frequency == Frequency.INSTANT)
            ).one()
            article = add_article(session, "Election interference probe", seen=T0 + TICK / 3)
            session.add(
                Match(article_id=article.id or 0, topic_id=topic_id, topic_version=1, score=1.0)
            )
        tick = T0 + settings.schedule.tick

        report = asyncio.run(send_digests(engine, settings, scheduled=True, now=tick))

        assert report.sent == ["desk@example.org"]
        assert len(list(config.outbox.glob("*.eml"))) == 1
    finally:
        engine.dispose()
