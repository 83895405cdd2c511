"""subscriptions.yaml, syncing it, and which daily and weekly digests are due (across DST too)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from monitor.delivery.digest import plan_delivery
from monitor.delivery.subscriptions import (
    DueGroup,
    SubscriberSpec,
    SubscriptionSync,
    due_groups,
    local_instant,
    read_subscriptions_file,
    sync_subscriptions,
    unsubscribe,
)
from monitor.errors import ConfigError
from monitor.models import Delivery, Frequency, Subscriber, Subscription, Topic

LOOKBACK = timedelta(days=1)
BERLIN = ZoneInfo("Europe/Berlin")
KNOWN = {"banks", "votes", "trolls"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "subscriptions.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_read_subscriptions_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "subscribers:\n"
        "  - email: Ada@Example.ORG\n"
        "    name: Ada Analyst\n"
        "    timezone: Europe/Berlin\n"
        '    daily: "07:30"\n'
        "    topics: [banks, votes, banks]\n"
        "  - email: bob@example.org\n"
        "    topics: [trolls]\n",
    )

    specs = read_subscriptions_file(path, topics=KNOWN)

    assert specs == [
        SubscriberSpec(
            email="Ada@example.org",
            name="Ada Analyst",
            timezone="Europe/Berlin",
            daily="07:30",
            topics=["banks", "votes"],
        ),
        SubscriberSpec(email="bob@example.org", topics=["trolls"]),
    ]
    assert (specs[1].timezone, specs[1].schedule.describe()) == ("UTC", "daily 08:00")


@pytest.mark.parametrize(
    ("written", "daily"),
    [("08:30", "08:30"), ("18:30", "18:30"), ("8:05", "08:05"), ('"23:59"', "23:59")],
)
def test_daily_time_may_be_unquoted(tmp_path: Path, written: str, daily: str) -> None:
    # YAML 1.1 reads an unquoted 18:30 as the base-60 number 1110, but 08:30 as a string.
    path = write(
        tmp_path,
        f"subscribers:\n  - email: a@example.org\n    daily: {written}\n    topics: [banks]\n",
    )

    [spec] = read_subscriptions_file(path, topics=KNOWN)

    assert spec.daily == daily


def test_absent_subscriptions_file_defines_none(tmp_path: Path) -> None:
    assert read_subscriptions_file(tmp_path / "missing.yaml", topics=KNOWN) == []


ADA = "subscribers:\n  - email: ada@example.org\n"


@pytest.mark.parametrize(
    ("text", "line", "complaint"),
    [
        pytest.param(
            ADA + "    topics: [banks, nope]\n",
            3,
            "subscribers[0].topics[1]: unknown topic 'nope'",
            id="unknown-topic",
        ),
        pytest.param(
            ADA + "    topics:\n      - banks\n      - votes\n      - nope\n",
            6,
            "unknown topic 'nope'",
            id="unknown-topic-block",
        ),
        pytest.param(
            ADA + "    timezone: Europe/Nowhere\n    topics: [banks]\n",
            3,
            "subscribers[0].timezone: unknown time zone 'Europe/Nowhere'",
            id="bad-time-zone",
        ),
        pytest.param(
            ADA + '    daily: "25:00"\n    topics: [banks]\n',
            3,
            "subscribers[0].daily: not a time of day: '25:00'",
            id="bad-time",
        ),
        pytest.param(
            ADA + "    daily: 25:00\n    topics: [banks]\n",
            3,
            "not a time of day: '25:00'",
            id="bad-time-unquoted",
        ),
        pytest.param(
            ADA + '    daily: "8am"\n    topics: [banks]\n',
            3,
            "not a time of day",
            id="bad-time-words",
        ),
        pytest.param(
            ADA + "    topics: [banks]\n  - email: not-an-address\n    topics: [banks]\n",
            4,
            "subscribers[1].email: not an e-mail address",
            id="bad-email",
        ),
        pytest.param(
            'subscribers:\n  - email: "Ada <ada@example.org>"\n    topics: [banks]\n',
            2,
            "not an e-mail address",
            id="email-with-name",
        ),
        pytest.param(
            ADA + "    topics: [banks]\n  - email: ADA@example.org\n    topics: [votes]\n",
            4,
            "subscribers[1].email: subscriber 'ADA@example.org' is listed twice",
            id="duplicate-email",
        ),
        pytest.param(
            ADA + "    topics: []\n",
            3,
            "subscribers[0].topics",
            id="no-topics",
        ),
        pytest.param(
            ADA + "    topics: [banks]\n    monthly: 1\n",
            4,
            "subscribers[0].monthly: unknown key",
            id="unknown-key",
        ),
        pytest.param(
            ADA + "    topics: [banks\n",
            4,
            "not valid YAML",
            id="invalid-yaml",
        ),
    ],
)
def test_subscriptions_file_errors_name_file_and_line(
    tmp_path: Path, text: str, line: int, complaint: str
) -> None:
    path = write(tmp_path, text)

    with pytest.raises(ConfigError) as caught:
        read_subscriptions_file(path, topics=KNOWN)

    assert caught.value.source == str(path)
    assert caught.value.line == line
    assert str(caught.value).startswith(f"{path}:{line}: ")
    assert complaint in str(caught.value)


# --- syncing -------------------------------------------------------------------------------------

T0 = datetime(2024, 9, 9, 4, 0, tzinfo=UTC)


def add_topics(engine: Engine, *slugs: str) -> dict[str, int]:
    with Session(engine) as session, session.begin():
        topics = [Topic(slug=slug, name=slug.title(), query=slug) for slug in slugs]
        session.add_all(topics)
        session.flush()
        return {topic.slug: topic.id or 0 for topic in topics}


def sub_spec(email: str, *topics: str, daily: str = "08:00", name: str = "") -> SubscriberSpec:
    return SubscriberSpec(
        email=email, name=name, timezone="Europe/Berlin", daily=daily, topics=list(topics)
    )


def sync(engine: Engine, specs: list[SubscriberSpec], now: datetime = T0) -> SubscriptionSync:
    with Session(engine) as session, session.begin():
        return sync_subscriptions(session, specs, now=now)


def subscriptions(engine: Engine) -> dict[str, set[tuple[str, str]]]:
    """Each subscriber's (topic slug, send time) pairs."""
    with Session(engine) as session:
        rows = session.exec(
            select(Subscriber.email, Topic.slug, Subscription.send_time)
            .join(Subscription, col(Subscription.subscriber_id) == Subscriber.id)
            .join(Topic, col(Topic.id) == Subscription.topic_id)
        ).all()
    found: dict[str, set[tuple[str, str]]] = {}
    for email, slug, send_time in rows:
        found.setdefault(email, set()).add((slug, send_time))
    return found


def test_sync_adds_subscribers_and_subscriptions(engine: Engine) -> None:
    add_topics(engine, "banks", "votes", "trolls")

    result = sync(
        engine,
        [
            sub_spec("ada@example.org", "banks", "votes", name="Ada"),
            sub_spec("bob@x.org", "trolls"),
        ],
    )

    assert result == SubscriptionSync(
        subscribers_added=2, subscriptions_added=3, subscriptions_removed=0
    )
    assert subscriptions(engine) == {
        "ada@example.org": {("banks", "08:00"), ("votes", "08:00")},
        "bob@x.org": {("trolls", "08:00")},
    }
    with Session(engine) as session:
        ada = session.exec(select(Subscriber).where(Subscriber.email == "ada@example.org")).one()
    assert (ada.name, ada.timezone, ada.created_at) == ("Ada", "Europe/Berlin", T0)


def test_sync_subscriptions_is_idempotent(engine: Engine) -> None:
    add_topics(engine, "banks", "votes")
    specs = [sub_spec("ada@example.org", "banks", "votes")]
    sync(engine, specs)
    with Session(engine) as session:
        ids_before = sorted(s.id or 0 for s in session.exec(select(Subscription)).all())

    again = sync(engine, specs, now=T0 + timedelta(days=1))

    assert again == SubscriptionSync(0, 0, 0)
    with Session(engine) as session:
        after = session.exec(select(Subscription)).all()
    assert sorted(s.id or 0 for s in after) == ids_before
    assert {s.created_at for s in after} == {T0}


def test_sync_removes_subscriptions_dropped_from_the_file(engine: Engine) -> None:
    add_topics(engine, "banks", "votes", "trolls")
    sync(engine, [sub_spec("ada@example.org", "banks", "votes")])

    result = sync(engine, [sub_spec("ada@example.org", "votes", "trolls", daily="07:15")])

    # votes moved to 07:15, trolls came, banks went.
    assert result == SubscriptionSync(0, 1, 1, 1)
    assert subscriptions(engine) == {"ada@example.org": {("votes", "07:15"), ("trolls", "07:15")}}


def test_sync_leaves_unlisted_subscribers_alone(engine: Engine) -> None:
    add_topics(engine, "banks", "votes")
    sync(engine, [sub_spec("ada@example.org", "banks"), sub_spec("bob@x.org", "votes")])

    result = sync(engine, [sub_spec("ada@example.org", "banks")])

    assert result == SubscriptionSync(0, 0, 0)
    assert subscriptions(engine) == {
        "ada@example.org": {("banks", "08:00")},
        "bob@x.org": {("votes", "08:00")},
    }


# --- due daily groups ----------------------------------------------------------------------------


def subscribe(
    engine: Engine,
    *,
    timezone: str,
    send_time: str = "08:00",
    created_at: datetime,
    topics: tuple[str, ...] = ("banks", "votes"),
) -> tuple[int, tuple[int, ...]]:
    """A subscriber with daily subscriptions; returns its id and the topic ids."""
    topic_ids = add_topics(engine, *topics)
    with Session(engine) as session, session.begin():
        subscriber = Subscriber(email="ada@example.org", timezone=timezone, created_at=created_at)
        session.add(subscriber)
        session.flush()
        for topic_id in topic_ids.values():
            session.add(
                Subscription(
                    subscriber_id=subscriber.id or 0,
                    topic_id=topic_id,
                    send_time=send_time,
                    created_at=created_at,
                )
            )
        return subscriber.id or 0, tuple(sorted(topic_ids.values()))


def due(engine: Engine, now: datetime) -> list[DueGroup]:
    with Session(engine) as session:
        return due_groups(session, now=now, lookback=LOOKBACK)


def plan(engine: Engine, group: DueGroup, now: datetime) -> bool:
    with Session(engine) as session, session.begin():
        return plan_delivery(session, group, message_domain="example.net", now=now) is not None


def berlin(day: int, hour: int, minute: int = 0) -> datetime:
    """A time in September 2024 in Berlin (CEST, UTC+2), as UTC."""
    return datetime(2024, 9, day, hour, minute, tzinfo=BERLIN).astimezone(UTC)


def test_not_due_before_the_local_send_time(engine: Engine) -> None:
    subscribe(engine, timezone="Europe/Berlin", created_at=berlin(9, 5))

    # 06:59 UTC would be past 08:00 in London; in Berlin it is 07:59.
    assert due(engine, berlin(9, 7, 59)) == []


@pytest.mark.parametrize("local", [(8, 0), (8, 1), (23, 59)])
def test_due_after_the_local_send_time(engine: Engine, local: tuple[int, int]) -> None:
    created = berlin(9, 5)
    subscriber_id, topic_ids = subscribe(engine, timezone="Europe/Berlin", created_at=created)

    [group] = due(engine, berlin(9, *local))

    assert group.subscriber_id == subscriber_id
    assert group.topic_ids == topic_ids
    assert group.since == created - LOOKBACK


def test_one_period_per_local_day(engine: Engine) -> None:
    subscribe(engine, timezone="Europe/Berlin", created_at=berlin(9, 5))

    [morning] = due(engine, berlin(9, 8))
    [night] = due(engine, berlin(9, 23, 59))
    [next_day] = due(engine, berlin(10, 8))

    assert morning.period_key == night.period_key
    assert next_day.period_key != morning.period_key


def test_not_due_again_once_planned(engine: Engine) -> None:
    subscribe(engine, timezone="Europe/Berlin", created_at=berlin(9, 5))
    [group] = due(engine, berlin(9, 8))

    assert plan(engine, group, berlin(9, 8))

    assert due(engine, berlin(9, 8)) == []
    assert due(engine, berlin(9, 23, 59)) == []
    assert len(due(engine, berlin(10, 8))) == 1


@pytest.mark.parametrize(
    ("subscribed", "first_due"),
    [
        (berlin(9, 7, 59), berlin(9, 8)),
        (berlin(9, 8), berlin(9, 8)),
        (berlin(9, 8, 1), berlin(10, 8)),
        (berlin(9, 21), berlin(10, 8)),
    ],
)
def test_first_period_is_the_first_send_time_after_subscribing(
    engine: Engine, subscribed: datetime, first_due: datetime
) -> None:
    subscribe(engine, timezone="Europe/Berlin", created_at=subscribed)
    earlier = [subscribed, first_due - timedelta(minutes=1), berlin(9, 23, 59)]

    for now in (t for t in earlier if t < first_due):
        assert due(engine, now) == [], f"due at {now}, before {first_due}"
    assert len(due(engine, first_due)) == 1


# Hand-checked calendar facts: the 2024 DST changes.
DST_CHANGES = [
    pytest.param("Europe/Berlin", date(2024, 3, 31), id="berlin-spring"),
    pytest.param("Europe/Berlin", date(2024, 10, 27), id="berlin-autumn"),
    pytest.param("America/New_York", date(2024, 3, 10), id="new-york-spring"),
    pytest.param("America/New_York", date(2024, 11, 3), id="new-york-autumn"),
]
STEP = timedelta(minutes=15)


def simulate_days(
    engine: Engine, zone: ZoneInfo, start: datetime, end: datetime, step: timedelta = STEP
) -> list[datetime]:
    """Step a clock from ``start`` to ``end``, planning what is due; local plan times."""
    planned = []
    now = start
    while now < end:
        for group in due(engine, now):
            assert plan(engine, group, now), f"due at {now} but already planned"
            planned.append(now.astimezone(zone))
        now += step
    return planned


@pytest.mark.parametrize(("timezone", "change"), DST_CHANGES)
def test_daily_digest_due_once_per_local_day_across_dst(
    engine: Engine, timezone: str, change: date
) -> None:
    zone = ZoneInfo(timezone)
    start = datetime.combine(change - timedelta(days=2), datetime.min.time(), zone)
    end = datetime.combine(change + timedelta(days=3), datetime.min.time(), zone)
    assert start.utcoffset() != end.utcoffset(), "the window must span a DST change"
    subscribe(engine, timezone=timezone, created_at=start.astimezone(UTC))

    planned = simulate_days(engine, zone, start.astimezone(UTC), end.astimezone(UTC))

    days = [change + timedelta(days=n) for n in range(-2, 3)]
    assert Counter(p.date() for p in planned) == dict.fromkeys(days, 1)
    assert {(p.hour, p.minute) for p in planned} == {(8, 0)}


@pytest.mark.parametrize("send_time", ["02:30", "00:00"])
@pytest.mark.parametrize(("timezone", "change"), DST_CHANGES)
def test_digest_at_awkward_times_due_once_per_local_day_across_dst(
    engine: Engine, timezone: str, change: date, send_time: str
) -> None:
    zone = ZoneInfo(timezone)
    start = datetime.combine(change - timedelta(days=1), datetime.min.time(), zone)
    end = datetime.combine(change + timedelta(days=2), datetime.min.time(), zone)
    subscribe(engine, timezone=timezone, send_time=send_time, created_at=start.astimezone(UTC))

    planned = simulate_days(engine, zone, start.astimezone(UTC), end.astimezone(UTC))

    days = [change + timedelta(days=n) for n in range(-1, 2)]
    assert Counter(p.date() for p in planned) == dict.fromkeys(days, 1)


@pytest.mark.parametrize(
    ("timezone", "change", "send_time", "expected"),
    [
        # The skipped hour: sent once, at the first instant after the gap (03:00 local).
        pytest.param("Europe/Berlin", date(2024, 3, 31), "02:30", (1, 0), id="berlin-gap"),
        pytest.param("America/New_York", date(2024, 3, 10), "02:30", (7, 0), id="new-york-gap"),
        # The repeated hour: sent once, at the first of the two (summer time still).
        pytest.param("Europe/Berlin", date(2024, 10, 27), "02:30", (0, 30), id="berlin-twice"),
        pytest.param("America/New_York", date(2024, 11, 3), "01:30", (5, 30), id="new-york-twice"),
    ],
)
def test_daily_digest_in_a_skipped_or_repeated_hour(
    engine: Engine, timezone: str, change: date, send_time: str, expected: tuple[int, int]
) -> None:
    zone = ZoneInfo(timezone)
    start = datetime.combine(change - timedelta(days=1), datetime.min.time(), zone)
    end = datetime.combine(change + timedelta(days=1), datetime.min.time(), zone)
    subscribe(engine, timezone=timezone, send_time=send_time, created_at=start.astimezone(UTC))

    planned = simulate_days(engine, zone, start.astimezone(UTC), end.astimezone(UTC))

    on_the_day = [p.astimezone(UTC) for p in planned if p.date() == change]
    assert on_the_day == [datetime.combine(change, time(*expected), UTC)]


@pytest.mark.parametrize(
    ("timezone", "wall", "fold_utc"),
    [
        ("Europe/Berlin", datetime(2024, 3, 31, 2, 30), datetime(2024, 3, 31, 1, 0)),
        ("Europe/Berlin", datetime(2024, 3, 31, 2, 0), datetime(2024, 3, 31, 1, 0)),
        ("Europe/Berlin", datetime(2024, 3, 31, 3, 0), datetime(2024, 3, 31, 1, 0)),
        ("Europe/Berlin", datetime(2024, 10, 27, 2, 30), datetime(2024, 10, 27, 0, 30)),
        ("Europe/Berlin", datetime(2024, 9, 9, 8, 0), datetime(2024, 9, 9, 6, 0)),
        ("America/New_York", datetime(2024, 3, 10, 2, 59), datetime(2024, 3, 10, 7, 0)),
        ("America/New_York", datetime(2024, 11, 3, 1, 0), datetime(2024, 11, 3, 5, 0)),
        ("Australia/Lord_Howe", datetime(2024, 10, 6, 2, 15), datetime(2024, 10, 5, 15, 30)),
    ],
)
def test_local_instant(timezone: str, wall: datetime, fold_utc: datetime) -> None:
    found = local_instant(wall.date(), f"{wall:%H:%M}", ZoneInfo(timezone))

    assert found == fold_utc.replace(tzinfo=UTC)


WEEKLY_DST = [
    pytest.param("Europe/Berlin", date(2024, 3, 31), "02:30", id="berlin-spring-gap"),
    pytest.param("Europe/Berlin", date(2024, 10, 27), "02:30", id="berlin-autumn-twice"),
    pytest.param("Europe/Berlin", date(2024, 10, 27), "08:00", id="berlin-autumn"),
    pytest.param("America/New_York", date(2024, 3, 10), "02:30", id="new-york-spring-gap"),
    pytest.param("America/New_York", date(2024, 11, 3), "01:30", id="new-york-autumn-twice"),
    pytest.param("America/New_York", date(2024, 11, 3), "08:00", id="new-york-autumn"),
]


@pytest.mark.parametrize(("timezone", "change", "send_time"), WEEKLY_DST)
def test_weekly_digest_due_once_per_week_across_dst(
    engine: Engine, timezone: str, change: date, send_time: str
) -> None:
    zone = ZoneInfo(timezone)
    start = datetime.combine(change - timedelta(days=8), datetime.min.time(), zone)
    end = datetime.combine(change + timedelta(days=8), datetime.min.time(), zone)
    subscribe(engine, timezone=timezone, send_time=send_time, created_at=start.astimezone(UTC))
    with Session(engine) as session, session.begin():
        for sub in session.exec(select(Subscription)):
            sub.frequency, sub.weekday = Frequency.WEEKLY, change.weekday()
            session.add(sub)

    # Every half hour: the send times and the changes all fall on one.
    planned = simulate_days(engine, zone, start.astimezone(UTC), end.astimezone(UTC), 2 * STEP)

    weeks = [change + timedelta(days=n) for n in (-7, 0, 7)]
    assert [p.date() for p in planned] == weeks
    assert planned[1].astimezone(UTC) == local_instant(change, send_time, zone)
    with Session(engine) as session:
        keys = session.exec(select(Delivery.period_key).order_by(col(Delivery.id))).all()
    day = f"{change:%a}".lower()
    assert [k.split("@")[1] for k in keys] == [f"{day} {send_time}"] * 3
    assert len(set(keys)) == 3


# --- the schedule keys of subscriptions.yaml -----------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "wanted"),
    [
        pytest.param("    topics: [banks]\n", {"banks": "daily 08:00"}, id="default-daily"),
        pytest.param(
            "    instant: true\n    topics: [banks]\n", {"banks": "instant"}, id="instant"
        ),
        pytest.param("    hourly: true\n    topics: [banks]\n", {"banks": "hourly"}, id="hourly"),
        pytest.param(
            '    weekly: "mon 08:00"\n    topics: [banks]\n',
            {"banks": "weekly mon 08:00"},
            id="weekly",
        ),
        pytest.param(
            "    weekly: Sunday 18:30\n    topics: [banks]\n",
            {"banks": "weekly sun 18:30"},
            id="weekly-unquoted-full-day",
        ),
        pytest.param(
            "    instant: false\n    daily: 18:30\n    topics: [banks]\n",
            {"banks": "daily 18:30"},
            id="instant-false-is-absent",
        ),
        pytest.param(
            '    daily: "07:00"\n'
            "    topics:\n"
            "      - banks\n"
            "      - topic: votes\n"
            "        instant: true\n"
            "      - {topic: trolls, weekly: fri 17:00}\n",
            {"banks": "daily 07:00", "votes": "instant", "trolls": "weekly fri 17:00"},
            id="per-topic-overrides",
        ),
    ],
)
def test_schedule_keys(tmp_path: Path, lines: str, wanted: dict[str, str]) -> None:
    path = write(tmp_path, ADA + lines)

    [spec] = read_subscriptions_file(path, topics=KNOWN)

    assert {slug: s.describe() for slug, s in spec.wanted().items()} == wanted


@pytest.mark.parametrize(
    ("text", "line", "complaint"),
    [
        pytest.param(
            ADA + '    instant: true\n    daily: "08:00"\n    topics: [banks]\n',
            2,
            "subscribers[0]: give one schedule, not instant and daily",
            id="two-schedules",
        ),
        pytest.param(
            ADA + '    weekly: "someday 08:00"\n    topics: [banks]\n',
            3,
            "subscribers[0].weekly: not a weekly time: 'someday 08:00'",
            id="bad-weekday",
        ),
        pytest.param(
            ADA + '    weekly: "mon"\n    topics: [banks]\n',
            3,
            "not a weekly time",
            id="weekly-without-time",
        ),
        pytest.param(
            ADA + '    weekly: "mon 25:00"\n    topics: [banks]\n',
            3,
            "not a time of day: '25:00'",
            id="weekly-bad-time",
        ),
        pytest.param(
            ADA + "    topics:\n      - banks\n      - topic: nope\n        instant: true\n",
            5,
            "subscribers[0].topics[1].topic: unknown topic 'nope'",
            id="unknown-topic-in-mapping",
        ),
        pytest.param(
            ADA
            + "    topics:\n      - topic: banks\n        hourly: true\n        daily: '09:00'\n",
            4,
            "subscribers[0].topics[0]: give one schedule, not hourly and daily",
            id="two-schedules-for-a-topic",
        ),
        pytest.param(
            ADA + "    topics:\n      - topic: banks\n        every: day\n",
            5,
            "subscribers[0].topics[0].every: unknown key",
            id="unknown-key-in-mapping",
        ),
        pytest.param(
            ADA + "    topics:\n      - {instant: true}\n",
            4,
            "subscribers[0].topics[0].topic: Field required",
            id="mapping-without-topic",
        ),
        pytest.param(
            ADA + "    topics: [banks, {topic: banks, hourly: true}]\n",
            3,
            "topic 'banks' is listed twice with different schedules",
            id="conflicting-duplicate",
        ),
        pytest.param(
            ADA + "    notify_empty: sometimes\n    topics: [banks]\n",
            3,
            "subscribers[0].notify_empty",
            id="bad-notify-empty",
        ),
    ],
)
def test_schedule_key_errors_name_file_and_line(
    tmp_path: Path, text: str, line: int, complaint: str
) -> None:
    path = write(tmp_path, text)

    with pytest.raises(ConfigError) as caught:
        read_subscriptions_file(path, topics=KNOWN)

    assert (caught.value.source, caught.value.line) == (str(path), line)
    assert complaint in str(caught.value)


def test_example_configuration_is_valid() -> None:
    example = Path(__file__).parents[2] / "config" / "subscriptions.yaml"
    known = {"election-interference", "russian-disinformation", "us-2024-election"}

    specs = read_subscriptions_file(example, topics=known)

    assert [spec.email for spec in specs] == ["analyst@example.org", "desk@example.org"]
    assert {s.describe() for s in specs[0].wanted().values()} == {"daily 08:00"}
    assert specs[1].notify_empty


# --- syncing schedules and ended subscriptions ---------------------------------------------------


def schedules(engine: Engine) -> dict[str, tuple[str, str, int, bool]]:
    """Topic slug -> (frequency, send time, weekday, active) of every subscription."""
    with Session(engine) as session:
        rows = session.exec(
            select(Topic.slug, Subscription).join(
                Subscription, col(Subscription.topic_id) == Topic.id
            )
        ).all()
    return {
        slug: (str(s.frequency), s.send_time, s.weekday, s.unsubscribed_at is None)
        for slug, s in rows
    }


def parsed(tmp_path: Path, lines: str) -> list[SubscriberSpec]:
    return read_subscriptions_file(write(tmp_path, ADA + lines), topics=KNOWN)


def test_sync_stores_each_topic_schedule(engine: Engine, tmp_path: Path) -> None:
    add_topics(engine, "banks", "votes", "trolls")
    specs = parsed(
        tmp_path,
        "    timezone: America/New_York\n    notify_empty: true\n    weekly: tue 06:45\n"
        "    topics: [banks, {topic: votes, instant: true}, {topic: trolls, hourly: true}]\n",
    )

    first = sync(engine, specs)
    again = sync(engine, specs, now=T0 + timedelta(hours=1))

    assert first == SubscriptionSync(1, 3, 0)
    assert again == SubscriptionSync(0, 0, 0)
    assert schedules(engine) == {
        "banks": ("weekly", "06:45", 1, True),
        "votes": ("instant", "00:00", 0, True),
        "trolls": ("hourly", "00:00", 0, True),
    }
    with Session(engine) as session:
        ada = session.exec(select(Subscriber)).one()
    assert (ada.timezone, ada.notify_empty) == ("America/New_York", True)


def test_sync_never_resubscribes_an_ended_subscription(engine: Engine, tmp_path: Path) -> None:
    topic_ids = add_topics(engine, "banks", "votes")
    specs = parsed(tmp_path, "    topics: [banks, votes]\n")
    sync(engine, specs)
    with Session(engine) as session, session.begin():
        ada = session.exec(select(Subscriber)).one()
        unsubscribe(session, subscriber_id=ada.id or 0, topic_ids=[topic_ids["votes"]], now=T0)

    kept = sync(engine, specs, now=T0 + timedelta(hours=1))
    kept_again = sync(engine, specs, now=T0 + timedelta(hours=2))
    dropped = sync(engine, parsed(tmp_path, "    topics: [banks]\n"))
    listed_again = sync(engine, specs)

    assert kept == kept_again == SubscriptionSync(0, 0, 0, 0, ("ada@example.org votes",))
    # Leaving the file does not erase the unsubscribe: listing the topic again changes nothing.
    assert dropped == SubscriptionSync(0, 0, 0)
    assert listed_again == kept
    assert schedules(engine) == {
        "banks": ("daily", "08:00", 0, True),
        "votes": ("daily", "08:00", 0, False),
    }
