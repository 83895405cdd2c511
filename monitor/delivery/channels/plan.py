"""Which channel periods are due: each active channel is a stream of its own, planned into the
outbox exactly as e-mail is (``plan_delivery``), with keys of its own (``ch3/instant:...``).

A channel follows its own topics, or its subscriber's active subscriptions when it names none,
only the high-priority ones when its ``priority`` is ``high``, on its own schedule: instant
ones every tick, the others once per hour, local day (the subscriber's time zone) or week.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from monitor.delivery.digest import channel_period_key
from monitor.delivery.subscriptions import (
    DueGroup,
    _last_in_stream,
    current_period,
    make_schedule,
)
from monitor.models import (
    Channel,
    Delivery,
    Frequency,
    Subscriber,
    Subscription,
    Topic,
    TopicPriority,
)


def channel_topic_ids(session: Session, channel: Channel) -> tuple[int, ...]:
    """The topics a channel follows now: its own, or its subscriber's active subscriptions;
    only high-priority ones when it asks for those."""
    if channel.topic_ids:
        ids = set(channel.topic_ids)
    else:
        ids = set(
            session.exec(
                select(Subscription.topic_id).where(
                    Subscription.subscriber_id == channel.subscriber_id,
                    col(Subscription.unsubscribed_at).is_(None),
                )
            ).all()
        )
    if channel.priority == TopicPriority.HIGH and ids:
        high = session.exec(
            select(Topic.id).where(col(Topic.id).in_(ids), Topic.priority == TopicPriority.HIGH)
        ).all()
        ids = {i for i in high if i is not None}
    return tuple(sorted(ids))


def active_channels(session: Session) -> list[tuple[Channel, Subscriber]]:
    """Channels that send: neither ended nor disabled, with their subscriber."""
    return [
        (channel, subscriber)
        for channel, subscriber in session.exec(
            select(Channel, Subscriber)
            .join(Subscriber, col(Subscriber.id) == Channel.subscriber_id)
            .where(col(Channel.ended_at).is_(None), col(Channel.disabled_reason).is_(None))
            .order_by(col(Channel.id))
        )
    ]


def due_channel_groups(session: Session, *, now: datetime, lookback: timedelta) -> list[DueGroup]:
    """One group per active channel whose period has begun and is not planned yet."""
    candidates: list[tuple[Channel, str, datetime | None]] = []
    for channel, subscriber in active_channels(session):
        schedule = make_schedule(Frequency(channel.frequency), channel.send_time, channel.weekday)
        period = current_period(schedule, ZoneInfo(subscriber.timezone), now)
        if period.due_at < channel.created_at:
            continue
        key = channel_period_key(channel.id or 0, period.key)
        candidates.append((channel, key, period.previous_at))
    planned = _planned(session, [key for _, key, _ in candidates])
    groups = []
    for channel, key, previous_at in candidates:
        if key in planned:
            continue
        topic_ids = channel_topic_ids(session, channel)
        if not topic_ids:
            continue
        start = channel.created_at
        last = _last_in_stream(session, channel.subscriber_id, key) or previous_at
        if last is not None:
            start = max(start, last)
        instant = channel.frequency == Frequency.INSTANT
        groups.append(
            DueGroup(
                subscriber_id=channel.subscriber_id,
                period_key=key,
                topic_ids=topic_ids,
                since=start - lookback,
                # A chat never gets "nothing new"; an instant period with nothing leaves no row.
                notify_empty=False,
                record_empty=not instant,
                channel_id=channel.id,
            )
        )
    return groups


def _planned(session: Session, keys: list[str]) -> set[str]:
    if not keys:
        return set()
    rows = session.exec(
        select(Delivery.period_key).where(
            col(Delivery.channel_id).is_not(None), col(Delivery.period_key).in_(keys)
        )
    ).all()
    return set(rows)
