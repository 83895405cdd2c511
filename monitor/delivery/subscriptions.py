"""Subscribers and their subscriptions: ``subscriptions.yaml``, syncing it, and who is due."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from sqlmodel import Session, col, func, select

from monitor.configfile import read_yaml_config
from monitor.errors import UsageError
from monitor.models import Delivery, Frequency, Subscriber, Subscription, Topic

_EMAIL = re.compile(r"^[^@\s<>(),;:\"\[\]\\]+@[^@\s<>(),;:\"\[\]\\]+$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
# Validation context key: addresses seen so far in one file, so a repeat is reported at its line.
_SEEN_EMAILS = "seen_emails"


def check_email(address: str) -> str:
    """``address`` trimmed and lower-cased, if it is a plain e-mail address."""
    address = address.strip()
    if not _EMAIL.match(address):
        raise UsageError(f"not an e-mail address: {address!r}")
    local, domain = address.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


def check_timezone(name: str) -> str:
    """``name`` if it is an IANA time zone, such as Europe/Berlin."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(
            f"unknown time zone {name!r} (use an IANA name such as Europe/Berlin)"
        ) from None
    return name


def check_send_time(value: str) -> str:
    """``value`` if it is a 24-hour local time HH:MM."""
    if not _HHMM.match(value.strip()):
        raise UsageError(f"not a time of day: {value!r} (use HH:MM, as 08:00)")
    return value.strip()


def _as_value_error(check: Any, value: str) -> str:
    try:
        return str(check(value))
    except UsageError as exc:
        raise ValueError(str(exc)) from None


def _known_topic(slug: str, info: ValidationInfo) -> str:
    known = (info.context or {}).get("topics")
    if known is not None and slug not in known:
        raise ValueError(f"unknown topic {slug!r} (known: {', '.join(sorted(known))})")
    return slug


class SubscriberSpec(BaseModel):
    """One subscriber in ``subscriptions.yaml`` and the topics they get daily."""

    model_config = ConfigDict(extra="forbid")

    email: str
    name: str = ""
    timezone: str = "UTC"
    daily: str = "08:00"
    # Checked one by one, so an unknown topic is reported at its own line.
    topics: list[Annotated[str, AfterValidator(_known_topic)]] = Field(min_length=1)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str, info: ValidationInfo) -> str:
        email = _as_value_error(check_email, value)
        seen = (info.context or {}).get(_SEEN_EMAILS)
        if seen is not None:
            # Mail systems treat local parts case-insensitively, so must a duplicate check.
            if email.casefold() in seen:
                raise ValueError(f"subscriber {email!r} is listed twice")
            seen.add(email.casefold())
        return email

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return _as_value_error(check_timezone, value)

    @field_validator("daily", mode="before")
    @classmethod
    def _sexagesimal(cls, value: Any) -> Any:
        # YAML 1.1 reads an unquoted 18:30 as the base-60 integer 1110 (but 08:30 as a string).
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return f"{value // 60:02d}:{value % 60:02d}"
        return value

    @field_validator("daily")
    @classmethod
    def _daily(cls, value: str) -> str:
        return _as_value_error(check_send_time, value)

    @field_validator("topics")
    @classmethod
    def _topics(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class SubscriptionsFile(BaseModel):
    """The whole of ``subscriptions.yaml``."""

    model_config = ConfigDict(extra="forbid")

    subscribers: list[SubscriberSpec] = Field(default_factory=list)


def read_subscriptions_file(path: Path, *, topics: set[str]) -> list[SubscriberSpec]:
    """The subscribers defined in ``path``, checked against the known topic slugs."""
    if not path.exists():
        return []
    context = {"topics": topics, _SEEN_EMAILS: set()}
    return read_yaml_config(path, SubscriptionsFile, context=context).subscribers


@dataclass(frozen=True, slots=True)
class SubscriptionSync:
    """What syncing a subscriptions file changed."""

    subscribers_added: int
    subscriptions_added: int
    subscriptions_removed: int


def sync_subscriptions(
    session: Session, specs: list[SubscriberSpec], *, now: datetime
) -> SubscriptionSync:
    """Make each listed subscriber's subscriptions exactly those of the file; others untouched."""
    topic_ids = {topic.slug: topic.id for topic in session.exec(select(Topic))}
    subscribers_added = added = removed = 0
    for spec in specs:
        subscriber = session.exec(select(Subscriber).where(Subscriber.email == spec.email)).first()
        if subscriber is None:
            subscriber = Subscriber(email=spec.email, created_at=now)
            subscribers_added += 1
        subscriber.name, subscriber.timezone = spec.name, spec.timezone
        session.add(subscriber)
        session.flush()
        current = {
            sub.topic_id: sub
            for sub in session.exec(
                select(Subscription).where(Subscription.subscriber_id == subscriber.id)
            )
        }
        wanted = {topic_ids[slug] or 0 for slug in spec.topics if slug in topic_ids}
        for topic_id, sub in current.items():
            if topic_id not in wanted:
                session.delete(sub)
                removed += 1
            elif sub.send_time != spec.daily or sub.frequency != "daily":
                sub.frequency, sub.send_time = Frequency.DAILY, spec.daily
                session.add(sub)
        for topic_id in wanted - current.keys():
            session.add(
                Subscription(
                    subscriber_id=subscriber.id or 0,
                    topic_id=topic_id or 0,
                    frequency=Frequency.DAILY,
                    send_time=spec.daily,
                    created_at=now,
                )
            )
            added += 1
    session.flush()
    return SubscriptionSync(subscribers_added, added, removed)


@dataclass(frozen=True, slots=True)
class DueGroup:
    """Subscriptions of one subscriber that share a period, and so one e-mail."""

    subscriber_id: int
    period_key: str
    topic_ids: tuple[int, ...]
    since: datetime


def _group(
    subscriber_id: int,
    period_key: str,
    subscriptions: list[Subscription],
    lookback: timedelta,
    last_planned: datetime | None,
) -> DueGroup:
    # A digest covers what was first seen since the previous one (or since subscribing), and
    # ``lookback`` before that: an article matched late, say by a retag after a query edit,
    # still arrives if it is recent, while a month of newly matched archive does not.
    start = min(sub.created_at for sub in subscriptions)
    if last_planned is not None:
        start = max(start, last_planned)
    return DueGroup(
        subscriber_id=subscriber_id,
        period_key=period_key,
        topic_ids=tuple(sorted(sub.topic_id for sub in subscriptions)),
        since=start - lookback,
    )


def _last_planned(session: Session, subscriber_ids: set[int]) -> dict[int, datetime]:
    """When each subscriber's latest delivery was planned."""
    rows = session.exec(
        select(Delivery.subscriber_id, func.max(Delivery.created_at))
        .where(col(Delivery.subscriber_id).in_(subscriber_ids))
        .group_by(col(Delivery.subscriber_id))
    ).all()
    # max() keeps its argument's type, so the times come back as aware UTC datetimes.
    return dict(rows)


def due_daily_groups(session: Session, *, now: datetime, lookback: timedelta) -> list[DueGroup]:
    """Subscriptions whose local send time has passed today and whose period is not planned."""
    rows = session.exec(
        select(Subscription, Subscriber)
        .join(Subscriber, col(Subscriber.id) == Subscription.subscriber_id)
        .where(Subscription.frequency == "daily")
    ).all()
    groups: dict[tuple[int, str], list[Subscription]] = defaultdict(list)
    for subscription, subscriber in rows:
        zone = ZoneInfo(subscriber.timezone)
        local_day = now.astimezone(zone).date()
        due_at = datetime.combine(local_day, time.fromisoformat(subscription.send_time), zone)
        # The first period is the first send time after subscribing, not one already past.
        if now >= due_at >= subscription.created_at:
            key = f"daily:{local_day.isoformat()}@{subscription.send_time}"
            groups[(subscriber.id or 0, key)].append(subscription)
    planned = _planned_periods(session, {key for _, key in groups})
    last = _last_planned(session, {subscriber_id for subscriber_id, _ in groups})
    return [
        _group(subscriber_id, key, subs, lookback, last.get(subscriber_id))
        for (subscriber_id, key), subs in sorted(groups.items())
        if (subscriber_id, key) not in planned
    ]


def _planned_periods(session: Session, keys: set[str]) -> set[tuple[int, str]]:
    """The (subscriber, period) pairs among ``keys`` that already have a delivery."""
    if not keys:
        return set()
    rows = session.exec(
        select(Delivery.subscriber_id, Delivery.period_key).where(
            col(Delivery.period_key).in_(keys)
        )
    ).all()
    return {(subscriber_id, key) for subscriber_id, key in rows}


def all_subscription_groups(
    session: Session, *, period_key: str, lookback: timedelta, email: str | None = None
) -> list[DueGroup]:
    """Every subscriber's subscriptions as one group each, for a digest sent on demand."""
    statement = select(Subscription, Subscriber).join(
        Subscriber, col(Subscriber.id) == Subscription.subscriber_id
    )
    if email is not None:
        statement = statement.where(Subscriber.email == email)
    groups: dict[int, list[Subscription]] = defaultdict(list)
    for subscription, subscriber in session.exec(statement):
        groups[subscriber.id or 0].append(subscription)
    last = _last_planned(session, set(groups))
    return [
        _group(subscriber_id, period_key, subs, lookback, last.get(subscriber_id))
        for subscriber_id, subs in sorted(groups.items())
    ]


def get_subscriber(session: Session, email: str) -> Subscriber | None:
    """The subscriber with this address, if any."""
    return session.exec(select(Subscriber).where(Subscriber.email == email)).first()


def unsubscribe(
    session: Session, *, subscriber_id: int, topic_ids: Iterable[int] | None, now: datetime
) -> int:
    """End a subscriber's subscriptions to ``topic_ids`` (all of them when None); how many
    were active. The rows stay, marked, so a config sync does not subscribe them again."""
    statement = select(Subscription).where(
        Subscription.subscriber_id == subscriber_id,
        col(Subscription.unsubscribed_at).is_(None),
    )
    if topic_ids is not None:
        statement = statement.where(col(Subscription.topic_id).in_(list(topic_ids)))
    ended = 0
    for subscription in session.exec(statement):
        subscription.unsubscribed_at = now
        session.add(subscription)
        ended += 1
    session.flush()
    return ended
