"""Subscribers and their subscriptions: ``subscriptions.yaml``, syncing it, the command line's
subscribe and unsubscribe, and which periods are due (instant, hourly, daily, weekly)."""

from __future__ import annotations

import functools
import os
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from sqlmodel import Session, col, func, select

from monitor.configfile import read_yaml_config
from monitor.delivery.channels.store import ChannelSync, ChannelWanted, sync_channels
from monitor.delivery.channels.targets import check_channel_url, check_secret
from monitor.errors import UsageError
from monitor.models import Delivery, Frequency, Subscriber, Subscription, Topic, TopicPriority
from monitor.sources.guard import AddressPolicy

_EMAIL = re.compile(r"^[^@\s<>(),;:\"\[\]\\]+@[^@\s<>(),;:\"\[\]\\]+$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
# Validation context key: addresses seen so far in one file, so a repeat is reported at its line.
_SEEN_EMAILS = "seen_emails"
# Validation context key: the address policy channel URLs are checked against.
CHANNEL_POLICY = "channel_policy"
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_TEMPLATE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")


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


@functools.cache
def time_zones() -> tuple[str, ...]:
    """Every IANA time zone this system knows (UTC first, then by name), for zone menus."""
    zones = sorted(zone for zone in available_timezones() if "/" in zone and zone != "UTC")
    return ("UTC", *zones)


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


_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAYS = tuple(name[:3] for name in _DAY_NAMES)
_SCHEDULE_KEYS = ("instant", "hourly", "daily", "weekly")
DEFAULT_SEND_TIME = "08:00"


def _weekday(word: str) -> int | None:
    """0 for "mon" or "monday" (any case), ..., 6 for Sunday; None for anything else."""
    word = word.lower()
    for index, name in enumerate(_DAY_NAMES):
        if word in (name[:3], name):
            return index
    return None


def check_weekly(value: str) -> tuple[int, str]:
    """(weekday, HH:MM) of a weekly time such as ``mon 08:00``; Monday is 0."""
    parts = value.split()
    weekday = _weekday(parts[0]) if len(parts) == 2 else None
    if weekday is None:
        raise UsageError(f"not a weekly time: {value!r} (use a day and HH:MM, as 'mon 08:00')")
    return weekday, check_send_time(parts[1])


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a subscription's digest goes out; ``send_time`` and ``weekday`` as stored."""

    frequency: Frequency
    send_time: str = "00:00"
    weekday: int = 0

    @classmethod
    def of(cls, subscription: Subscription) -> Schedule:
        """The schedule a stored subscription follows, normalised."""
        return make_schedule(
            Frequency(subscription.frequency), subscription.send_time, subscription.weekday
        )

    def describe(self) -> str:
        """``instant``, ``hourly``, ``daily 08:00`` or ``weekly mon 08:00``."""
        if self.frequency is Frequency.DAILY:
            return f"daily {self.send_time}"
        if self.frequency is Frequency.WEEKLY:
            return f"weekly {_WEEKDAYS[self.weekday]} {self.send_time}"
        return str(self.frequency)

    def apply(self, subscription: Subscription) -> bool:
        """Give ``subscription`` this schedule; whether anything changed."""
        if Schedule.of(subscription) == self:
            return False
        subscription.frequency = self.frequency
        subscription.send_time, subscription.weekday = self.send_time, self.weekday
        return True


def make_schedule(frequency: Frequency, send_time: str = "00:00", weekday: int = 0) -> Schedule:
    """A schedule with the fields its frequency ignores set to fixed values, so equal ones match."""
    if frequency in (Frequency.INSTANT, Frequency.HOURLY):
        return Schedule(frequency)
    if frequency is Frequency.DAILY:
        return Schedule(frequency, send_time)
    return Schedule(frequency, send_time, weekday)


DEFAULT_SCHEDULE = make_schedule(Frequency.DAILY, DEFAULT_SEND_TIME)


def parse_schedule(
    *,
    instant: bool = False,
    hourly: bool = False,
    daily: str | None = None,
    weekly: str | None = None,
) -> Schedule | None:
    """The one schedule given (None when none is); more than one is a UsageError."""
    given = [
        name
        for name, value in zip(_SCHEDULE_KEYS, (instant, hourly, daily, weekly), strict=True)
        if value
    ]
    if len(given) > 1:
        raise UsageError(f"give one schedule, not {' and '.join(given)}")
    if instant:
        return make_schedule(Frequency.INSTANT)
    if hourly:
        return make_schedule(Frequency.HOURLY)
    if daily:
        return make_schedule(Frequency.DAILY, check_send_time(daily))
    if weekly:
        weekday, send_time = check_weekly(weekly)
        return make_schedule(Frequency.WEEKLY, send_time, weekday)
    return None


def _sexagesimal(value: Any) -> Any:
    # YAML 1.1 reads an unquoted 18:30 as the base-60 integer 1110 (but 08:30 as a string).
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return f"{value // 60:02d}:{value % 60:02d}"
    return value


class _ScheduleKeys(BaseModel):
    """The schedule keys a subscriber and each of their topics may give, at most one of them."""

    model_config = ConfigDict(extra="forbid")

    instant: bool = False
    hourly: bool = False
    daily: str | None = None
    weekly: str | None = None

    @field_validator("daily", mode="before")
    @classmethod
    def _daily_number(cls, value: Any) -> Any:
        return _sexagesimal(value)

    @field_validator("daily")
    @classmethod
    def _daily(cls, value: str | None) -> str | None:
        return None if value is None else _as_value_error(check_send_time, value)

    @field_validator("weekly")
    @classmethod
    def _weekly(cls, value: str | None) -> str | None:
        if value is not None:
            _as_value_error(lambda v: str(check_weekly(v)), value)
        return value

    @model_validator(mode="after")
    def _one_schedule(self) -> _ScheduleKeys:
        try:
            self.own_schedule()
        except UsageError as exc:
            raise ValueError(str(exc)) from None
        return self

    def own_schedule(self) -> Schedule | None:
        """The schedule given here, if any."""
        return parse_schedule(
            instant=self.instant, hourly=self.hourly, daily=self.daily, weekly=self.weekly
        )


class TopicEntry(_ScheduleKeys):
    """One entry of a subscriber's ``topics``: a slug, or a slug with its own schedule."""

    topic: Annotated[str, AfterValidator(_known_topic)]


def expand_environment(value: str) -> str:
    """``value`` with each ``${NAME}`` replaced by that environment variable, so a file can
    name a credential without holding it."""

    def variable(found: re.Match[str]) -> str:
        name = found.group(1)
        if name not in os.environ:
            raise ValueError(f"environment variable {name} is not set")
        return os.environ[name]

    return _ENV_REFERENCE.sub(variable, value)


def check_template_name(name: str) -> str:
    """``name`` if it can name a template of config/templates/ (letters, digits, - and _)."""
    if name and not _TEMPLATE_NAME.match(name):
        raise UsageError(f"not a template name: {name!r} (letters, digits, - and _)")
    return name


class ChannelSpec(_ScheduleKeys):
    """One of a subscriber's ``channels``: a webhook or Apprise URL, what it follows, when.

    Without ``topics`` it follows the subscriber's topics; ``priority: high`` keeps only the
    high-priority ones; without a schedule it is instant. ``url`` and ``secret`` may name
    environment variables as ``${NAME}``.
    """

    url: str
    name: str = ""
    secret: str | None = None
    topics: list[Annotated[str, AfterValidator(_known_topic)]] = Field(default_factory=list)
    priority: TopicPriority | None = None
    template: str = ""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str, info: ValidationInfo) -> str:
        url = expand_environment(value)
        policy = (info.context or {}).get(CHANNEL_POLICY)
        try:
            check_channel_url(url, policy)
        except UsageError as exc:
            raise ValueError(str(exc)) from None
        return url

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        return None if value is None else _as_value_error(check_secret, expand_environment(value))

    @field_validator("template")
    @classmethod
    def _template(cls, value: str) -> str:
        return _as_value_error(check_template_name, value)

    def wanted(self, topic_ids: dict[str, int]) -> ChannelWanted:
        """The channel this entry asks for, its topics as ids."""
        schedule = self.own_schedule() or make_schedule(Frequency.INSTANT)
        return ChannelWanted(
            target=check_channel_url(self.url, None),
            name=self.name,
            secret=self.secret,
            topic_ids=tuple(sorted({topic_ids[s] for s in self.topics if s in topic_ids})),
            priority="high" if self.priority == TopicPriority.HIGH else "",
            frequency=schedule.frequency,
            send_time=schedule.send_time,
            weekday=schedule.weekday,
            template=self.template,
        )


def _entry(value: Any, info: ValidationInfo) -> Any:
    # A bare slug is the short form of {topic: slug}; checked here, it is blamed as itself.
    return {"topic": _known_topic(value, info)} if isinstance(value, str) else value


class SubscriberSpec(_ScheduleKeys):
    """One subscriber in ``subscriptions.yaml``: time zone, default schedule and topics."""

    email: str
    name: str = ""
    timezone: str = "UTC"
    notify_empty: bool = False
    # Webhooks and Apprise URLs beside e-mail (a team may have channels and no e-mail topics).
    # Validated before ``topics``, which may be empty only beside a channel.
    channels: list[ChannelSpec] = Field(default_factory=list)
    # Checked one by one, so an unknown topic is reported at its own line.
    topics: list[Annotated[TopicEntry, BeforeValidator(_entry)]] = Field(default_factory=list)

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: list[ChannelSpec]) -> list[ChannelSpec]:
        urls = [c.url for c in value]
        if len(set(urls)) != len(urls):
            raise ValueError("a channel URL is listed twice for this subscriber")
        return value

    @model_validator(mode="after")
    def _something_to_send(self) -> SubscriberSpec:
        if not self.topics and not self.channels:
            raise ValueError("give at least one topic (or a channel)")
        return self

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

    @field_validator("topics")
    @classmethod
    def _topics(cls, value: list[TopicEntry], info: ValidationInfo) -> list[TopicEntry]:
        if not value and not info.data.get("channels"):
            # Reported at the key, as the file's reader looks for it there.
            raise ValueError("give at least one topic (or a channel)")
        unique: dict[str, TopicEntry] = {}
        for entry in value:
            if unique.setdefault(entry.topic, entry) != entry:
                raise ValueError(f"topic {entry.topic!r} is listed twice with different schedules")
        return list(unique.values())

    @property
    def schedule(self) -> Schedule:
        """The subscriber's default schedule: the one given, else daily at 08:00."""
        return self.own_schedule() or DEFAULT_SCHEDULE

    def wanted(self) -> dict[str, Schedule]:
        """Each topic slug with the schedule it follows."""
        return {entry.topic: entry.own_schedule() or self.schedule for entry in self.topics}


class SubscriptionsFile(BaseModel):
    """The whole of ``subscriptions.yaml``."""

    model_config = ConfigDict(extra="forbid")

    subscribers: list[SubscriberSpec] = Field(default_factory=list)


def read_subscriptions_file(
    path: Path, *, topics: set[str], channel_policy: AddressPolicy | None = None
) -> list[SubscriberSpec]:
    """The subscribers defined in ``path``, checked against the known topic slugs (and their
    channel URLs against ``channel_policy``, the address guard's)."""
    if not path.exists():
        return []
    context = {"topics": topics, _SEEN_EMAILS: set(), CHANNEL_POLICY: channel_policy}
    return read_yaml_config(path, SubscriptionsFile, context=context).subscribers


@dataclass(frozen=True, slots=True)
class SubscriptionSync:
    """What syncing a subscriptions file changed; ``kept_unsubscribed`` lists ``email topic``
    pairs the file names but their subscriber ended, which stay ended."""

    subscribers_added: int
    subscriptions_added: int
    subscriptions_removed: int
    subscriptions_changed: int = 0
    kept_unsubscribed: tuple[str, ...] = ()
    channels: ChannelSync = field(default_factory=ChannelSync)


def sync_subscriptions(
    session: Session, specs: list[SubscriberSpec], *, now: datetime
) -> SubscriptionSync:
    """Make each listed subscriber's subscriptions exactly those of the file; others untouched.

    An ended subscription (``unsubscribed_at`` set) stays ended even when the file lists it:
    the person asked to stop, and only they (``monitor subscribe``) start it again.
    """
    topic_ids = {topic.slug: topic.id or 0 for topic in session.exec(select(Topic))}
    subscribers_added = added = removed = changed = 0
    kept: list[str] = []
    channel_sync = ChannelSync()
    for spec in specs:
        subscriber = get_subscriber(session, spec.email)
        if subscriber is None:
            subscriber = Subscriber(email=spec.email, created_at=now)
            subscribers_added += 1
        subscriber.name, subscriber.timezone = spec.name, spec.timezone
        subscriber.notify_empty = spec.notify_empty
        session.add(subscriber)
        session.flush()
        current = {
            sub.topic_id: sub
            for sub in session.exec(
                select(Subscription).where(Subscription.subscriber_id == subscriber.id)
            )
        }
        slugs = {topic_id: slug for slug, topic_id in topic_ids.items()}
        wanted = {topic_ids[s]: plan for s, plan in spec.wanted().items() if s in topic_ids}
        for topic_id, sub in current.items():
            if topic_id not in wanted:
                if sub.unsubscribed_at is None:
                    session.delete(sub)
                    removed += 1
            elif sub.unsubscribed_at is not None:
                kept.append(f"{spec.email} {slugs.get(topic_id, topic_id)}")
            elif wanted[topic_id].apply(sub):
                session.add(sub)
                changed += 1
        for topic_id in wanted.keys() - current.keys():
            sub = Subscription(subscriber_id=subscriber.id or 0, topic_id=topic_id, created_at=now)
            wanted[topic_id].apply(sub)
            session.add(sub)
            added += 1
        channels = [entry.wanted(topic_ids) for entry in spec.channels]
        sync_channels(session, subscriber, channels, now=now, outcome=channel_sync)
    session.flush()
    return SubscriptionSync(
        subscribers_added, added, removed, changed, tuple(kept), channels=channel_sync
    )


# --- who is due ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DueGroup:
    """Subscriptions of one subscriber that share a period, and so one e-mail.

    ``record_empty``: a period with nothing new is still written to the outbox (as empty, or
    as a "nothing new" notice when ``notify_empty``), so it is not considered again. Instant
    groups leave nothing behind instead: their period is a tick, and one is never reconsidered.
    """

    subscriber_id: int
    period_key: str
    topic_ids: tuple[int, ...]
    since: datetime
    notify_empty: bool = False
    record_empty: bool = True
    # The channel the group goes to; None: the subscriber's e-mail.
    channel_id: int | None = None


@dataclass(frozen=True, slots=True)
class Period:
    """One occurrence of a schedule: its outbox key, when it fell due, and the one before."""

    key: str
    due_at: datetime
    previous_at: datetime | None


def local_instant(day: date, send_time: str, zone: ZoneInfo) -> datetime:
    """The first instant (UTC) at or after the wall-clock time ``send_time`` on ``day``.

    In a fall-back hour the time happens twice: the first one counts. In a spring-forward gap
    it never happens: the first instant after the gap counts (03:00 for 02:30 in Berlin).
    """
    wall = datetime.combine(day, time.fromisoformat(send_time))
    first = wall.replace(tzinfo=zone).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # A gap: fold=1 maps the missing wall time with the later offset, so before the transition;
    # fold=0 with the earlier one, so after it. Find the transition's second between the two.
    low = int(wall.replace(tzinfo=zone, fold=1).timestamp())
    high = int(first.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def current_period(schedule: Schedule, zone: ZoneInfo, now: datetime) -> Period:
    """The latest period of ``schedule`` that has begun by ``now`` (``now`` itself if instant)."""
    if schedule.frequency is Frequency.INSTANT:
        # Each tick is its own period; seconds are enough, a tick is far longer.
        return Period(f"instant:{now.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}", now, None)
    if schedule.frequency is Frequency.HOURLY:
        # UTC hours: the same for every zone, and no daylight-saving change touches them.
        hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        return Period(f"hourly:{hour:%Y-%m-%dT%H}Z", hour, hour - timedelta(hours=1))
    today = now.astimezone(zone).date()
    step = timedelta(days=1)
    day = today
    if schedule.frequency is Frequency.WEEKLY:
        step = timedelta(days=7)
        day = today - timedelta(days=today.weekday() - schedule.weekday)
    if local_instant(day, schedule.send_time, zone) > now:
        day -= step
    due_at = local_instant(day, schedule.send_time, zone)
    previous = local_instant(day - step, schedule.send_time, zone)
    if schedule.frequency is Frequency.DAILY:
        return Period(f"daily:{day.isoformat()}@{schedule.send_time}", due_at, previous)
    year, week, _ = day.isocalendar()
    key = f"weekly:{year}-W{week:02d}@{_WEEKDAYS[schedule.weekday]} {schedule.send_time}"
    return Period(key, due_at, previous)


def _stream_pattern(period_key: str) -> str:
    """A LIKE pattern for every period of the same stream: same frequency, same send time."""
    frequency, _, rest = period_key.partition(":")
    _, at, when = rest.partition("@")
    return f"{frequency}:%{at}{when}"


def _last_in_stream(session: Session, subscriber_id: int, period_key: str) -> datetime | None:
    """When this subscriber's latest delivery of the same stream as ``period_key`` was planned."""
    # max() keeps its argument's type, so the time comes back as an aware UTC datetime.
    return session.exec(
        select(func.max(Delivery.created_at)).where(
            Delivery.subscriber_id == subscriber_id,
            col(Delivery.period_key).like(_stream_pattern(period_key)),
        )
    ).one()


def _since(
    session: Session,
    subscriber_id: int,
    stream_key: str,
    previous_at: datetime | None,
    subscriptions: list[Subscription],
    lookback: timedelta,
) -> datetime:
    # A digest covers what was first seen since the stream's previous one (else since its
    # previous period, or since subscribing), and ``lookback`` before that: an article matched
    # late, say by a retag after a query edit, still arrives if it is recent, while a month of
    # newly matched archive does not. Other streams (an instant one beside a weekly one) do not
    # count: each covers its own topics, and a weekly digest must not start at yesterday's.
    start = min(sub.created_at for sub in subscriptions)
    last = _last_in_stream(session, subscriber_id, stream_key)
    if last is None:
        last = previous_at
    if last is not None:
        start = max(start, last)
    return start - lookback


def _active_rows(
    session: Session, email: str | None = None
) -> list[tuple[Subscription, Subscriber]]:
    statement = (
        select(Subscription, Subscriber)
        .join(Subscriber, col(Subscriber.id) == Subscription.subscriber_id)
        .where(col(Subscription.unsubscribed_at).is_(None))
    )
    if email is not None:
        statement = statement.where(Subscriber.email == email)
    return [(sub, subscriber) for sub, subscriber in session.exec(statement)]


def due_groups(session: Session, *, now: datetime, lookback: timedelta) -> list[DueGroup]:
    """Active subscriptions whose period has begun and is not planned, grouped per e-mail.

    Instant subscriptions are due on every call (the scheduler calls once a tick), whatever
    their topic's priority; the others once per hour, local day or local week, from their
    first send time after subscribing.
    """
    groups: dict[tuple[int, str], list[Subscription]] = defaultdict(list)
    periods: dict[tuple[int, str], Period] = {}
    notify: dict[int, bool] = {}
    for subscription, subscriber in _active_rows(session):
        period = current_period(Schedule.of(subscription), ZoneInfo(subscriber.timezone), now)
        if period.due_at >= subscription.created_at:
            groups[(subscriber.id or 0, period.key)].append(subscription)
            periods[(subscriber.id or 0, period.key)] = period
            notify[subscriber.id or 0] = subscriber.notify_empty
    planned = _planned_periods(session, {key for _, key in groups})
    due = []
    for (subscriber_id, key), subs in sorted(groups.items()):
        if (subscriber_id, key) in planned:
            continue
        instant = key.startswith(f"{Frequency.INSTANT}:")
        due.append(
            DueGroup(
                subscriber_id=subscriber_id,
                period_key=key,
                topic_ids=tuple(sorted(sub.topic_id for sub in subs)),
                since=_since(
                    session,
                    subscriber_id,
                    key,
                    periods[(subscriber_id, key)].previous_at,
                    subs,
                    lookback,
                ),
                # A "nothing new" notice every tick would be noise: instant never sends one.
                notify_empty=notify[subscriber_id] and not instant,
                record_empty=not instant,
            )
        )
    return due


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
    """Every subscriber's active subscriptions as one group each, for a digest sent on demand.

    A digest on demand sends what is new, or nothing: a subscriber with nothing new gets no
    "nothing new" notice (the operator asked to send news, not the period's mail), and nothing
    is written to the outbox for them.
    """
    groups: dict[int, list[Subscription]] = defaultdict(list)
    for subscription, subscriber in _active_rows(session, email):
        groups[subscriber.id or 0].append(subscription)
    result = []
    for subscriber_id, subs in sorted(groups.items()):
        # Reach back as far as the furthest behind of the subscriber's streams.
        starts = [
            _since(session, subscriber_id, _stream_key(sub), None, [sub], lookback) for sub in subs
        ]
        result.append(
            DueGroup(
                subscriber_id=subscriber_id,
                period_key=period_key,
                topic_ids=tuple(sorted(sub.topic_id for sub in subs)),
                since=min(starts),
                record_empty=False,
            )
        )
    return result


def _stream_key(subscription: Subscription) -> str:
    """A period key of the subscription's stream (its period part is a placeholder)."""
    schedule = Schedule.of(subscription)
    if schedule.frequency in (Frequency.DAILY, Frequency.WEEKLY):
        at = schedule.send_time
        if schedule.frequency is Frequency.WEEKLY:
            at = f"{_WEEKDAYS[schedule.weekday]} {at}"
        return f"{schedule.frequency}:-@{at}"
    return f"{schedule.frequency}:-"


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


@dataclass(frozen=True, slots=True)
class SubscribeResult:
    """What ``subscribe_topics`` changed."""

    subscriber_added: bool
    added: tuple[str, ...]
    reactivated: tuple[str, ...]
    changed: tuple[str, ...]
    unchanged: tuple[str, ...]


def subscribe_topics(
    session: Session,
    *,
    email: str,
    topics: list[Topic],
    schedule: Schedule | None,
    timezone: str | None,
    name: str | None,
    now: datetime,
) -> SubscribeResult:
    """Subscribe ``email`` (made a subscriber if need be) to ``topics`` on ``schedule``.

    An ended subscription starts again, counting from now; without a schedule, an existing
    subscription keeps its own and a new one is daily at 08:00.
    """
    subscriber = get_subscriber(session, email)
    created = subscriber is None
    if subscriber is None:
        subscriber = Subscriber(email=email, created_at=now)
    if timezone is not None:
        subscriber.timezone = timezone
    if name is not None:
        subscriber.name = name
    session.add(subscriber)
    session.flush()
    current = {
        sub.topic_id: sub
        for sub in session.exec(
            select(Subscription).where(Subscription.subscriber_id == subscriber.id)
        )
    }
    outcome: dict[str, list[str]] = defaultdict(list)
    for topic in topics:
        sub = current.get(topic.id or 0)
        if sub is None:
            sub = Subscription(subscriber_id=subscriber.id or 0, topic_id=topic.id or 0)
            sub.created_at, kind = now, "added"
            (schedule or DEFAULT_SCHEDULE).apply(sub)
        elif sub.unsubscribed_at is not None:
            # Counting from now: the weeks spent unsubscribed are not owed a digest.
            sub.unsubscribed_at, sub.created_at, kind = None, now, "reactivated"
            if schedule is not None:
                schedule.apply(sub)
        else:
            kind = "changed" if schedule is not None and schedule.apply(sub) else "unchanged"
        session.add(sub)
        outcome[kind].append(topic.slug)
    session.flush()
    return SubscribeResult(
        created, *(tuple(outcome[k]) for k in ("added", "reactivated", "changed", "unchanged"))
    )


@dataclass(frozen=True, slots=True)
class SubscriptionRow:
    """One subscription as ``monitor subscriptions list`` shows it."""

    email: str
    timezone: str
    topic: str
    schedule: Schedule
    unsubscribed_at: datetime | None


def list_subscriptions(session: Session, *, email: str | None = None) -> list[SubscriptionRow]:
    """Every subscription (or one subscriber's), ended ones too, by address then topic."""
    statement = (
        select(Subscriber, Subscription, Topic)
        .join(Subscription, col(Subscription.subscriber_id) == Subscriber.id)
        .join(Topic, col(Topic.id) == Subscription.topic_id)
        .order_by(col(Subscriber.email), col(Topic.slug))
    )
    if email is not None:
        statement = statement.where(Subscriber.email == email)
    return [
        SubscriptionRow(
            subscriber.email, subscriber.timezone, topic.slug, Schedule.of(sub), sub.unsubscribed_at
        )
        for subscriber, sub, topic in session.exec(statement)
    ]
