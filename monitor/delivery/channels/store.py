"""The channel table: adding, syncing from subscriptions.yaml, listing, ending, disabling,
and signing secrets (made once and shown once; lists show only their last characters)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, col, func, select

from monitor.delivery.channels.targets import ChannelTarget, new_secret, shown_secret
from monitor.errors import NotFoundError, UsageError
from monitor.models import (
    Channel,
    ChannelKind,
    Delivery,
    DeliveryStatus,
    Frequency,
    Subscriber,
    Topic,
)


@dataclass(frozen=True, slots=True)
class ChannelWanted:
    """A channel as a file, the command line, the web or the API asks for it."""

    target: ChannelTarget
    name: str = ""
    # None: keep the stored secret (or make one for a new webhook).
    secret: str | None = None
    topic_ids: tuple[int, ...] = ()
    priority: str = ""
    frequency: Frequency = Frequency.INSTANT
    send_time: str = "00:00"
    weekday: int = 0
    template: str = ""


@dataclass(frozen=True, slots=True)
class SavedChannel:
    """A channel saved: the row, whether it is new, and a secret made now (shown once)."""

    channel: Channel
    created: bool
    changed: bool
    new_secret: str | None = None


def find_channel(session: Session, subscriber_id: int, target: ChannelTarget) -> Channel | None:
    """The subscriber's channel with this URL, ended or not."""
    return session.exec(
        select(Channel).where(
            Channel.subscriber_id == subscriber_id, Channel.url_hash == target.url_hash
        )
    ).first()


def save_channel(
    session: Session, *, subscriber_id: int, wanted: ChannelWanted, now: datetime
) -> SavedChannel:
    """Add the channel, or bring the subscriber's channel of that URL in line (an ended one
    starts again, counting from now); a disabled one stays disabled (see ``enable_channel``)."""
    channel = find_channel(session, subscriber_id, wanted.target)
    created = channel is None
    if channel is None:
        channel = Channel(
            subscriber_id=subscriber_id,
            kind=wanted.target.kind,
            url=wanted.target.url,
            url_hash=wanted.target.url_hash,
            shown_url=wanted.target.shown_url,
            created_at=now,
            updated_at=now,
        )
    before = _settings_of(channel)
    made = None
    if wanted.target.kind is ChannelKind.WEBHOOK:
        if wanted.secret is not None:
            channel.secret = wanted.secret
        elif not channel.secret:
            channel.secret = made = new_secret()
    if channel.ended_at is not None:
        # Counting from now: what matched while it was ended is not owed to it.
        channel.ended_at, channel.created_at = None, now
    channel.shown_url = wanted.target.shown_url
    channel.name = wanted.name
    channel.topic_ids = list(wanted.topic_ids)
    channel.priority = wanted.priority
    channel.frequency = wanted.frequency
    channel.send_time, channel.weekday = wanted.send_time, wanted.weekday
    channel.template = wanted.template
    changed = not created and _settings_of(channel) != before
    if created or changed:
        channel.updated_at = now
    session.add(channel)
    session.flush()
    return SavedChannel(channel, created, changed, made)


def _settings_of(channel: Channel) -> tuple[object, ...]:
    return (channel.secret, channel.name, list(channel.topic_ids), channel.priority,
            channel.frequency, channel.send_time, channel.weekday, channel.template,
            channel.ended_at)  # fmt: skip


@dataclass(slots=True)
class ChannelSync:
    """What syncing the channels of the subscribers a file names changed."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)
    # Channels the file lists that stay disabled (an endpoint said 410, or someone disabled
    # them): ``monitor channels enable`` starts them again.
    kept_disabled: list[str] = field(default_factory=list)
    # Webhooks the file gives no secret, for which one was made (never shown: rotate it).
    secrets_made: list[str] = field(default_factory=list)


def sync_channels(
    session: Session,
    subscriber: Subscriber,
    wanted: list[ChannelWanted],
    *,
    now: datetime,
    outcome: ChannelSync,
) -> None:
    """Make the subscriber's channels exactly ``wanted``: others end (their history stays)."""
    keep: set[int] = set()
    for item in wanted:
        saved = save_channel(session, subscriber_id=subscriber.id or 0, wanted=item, now=now)
        channel = saved.channel
        keep.add(channel.id or 0)
        label = f"{subscriber.email} {channel.shown_url}"
        if saved.created:
            outcome.added.append(label)
        elif saved.changed:
            outcome.changed.append(label)
        if channel.disabled_reason:
            outcome.kept_disabled.append(f"{label}: {channel.disabled_reason}")
        if saved.new_secret:
            outcome.secrets_made.append(
                f"{label} (channel {channel.id}): `monitor channels rotate-secret {channel.id}` "
                "shows a new one, or give it `secret:` in the file"
            )
    for channel in session.exec(
        select(Channel).where(
            Channel.subscriber_id == subscriber.id, col(Channel.ended_at).is_(None)
        )
    ):
        if channel.id not in keep:
            end_channel(session, channel, now=now)
            outcome.ended.append(f"{subscriber.email} {channel.shown_url}")


def end_channel(session: Session, channel: Channel, *, now: datetime) -> None:
    """End a channel: nothing more is planned for it; what is pending still goes."""
    channel.ended_at = now
    channel.updated_at = now
    session.add(channel)
    session.flush()


def set_disabled(session: Session, channel_id: int, reason: str | None, *, now: datetime) -> bool:
    """Disable a channel with ``reason`` (None: enable it again); whether it changed."""
    channel = session.get(Channel, channel_id)
    if channel is None or channel.disabled_reason == reason:
        return False
    channel.disabled_reason = reason
    channel.updated_at = now
    if reason is None:
        # Counting from now: what matched while it was off is not owed to it.
        channel.created_at = now
    session.add(channel)
    session.flush()
    return True


def rotate_secret(session: Session, channel: Channel, *, now: datetime) -> str:
    """A new signing secret for a webhook channel, returned once."""
    if channel.kind != ChannelKind.WEBHOOK:
        raise UsageError(f"channel {channel.id} is not a webhook: it has no signing secret")
    channel.secret = new_secret()
    channel.updated_at = now
    session.add(channel)
    session.flush()
    return channel.secret


def require_channel(session: Session, ref: str, *, email: str | None = None) -> Channel:
    """The channel named by its id, or by its URL (with its subscriber's address)."""
    ref = ref.strip()
    if ref.isdigit():
        channel = session.get(Channel, int(ref))
        if channel is not None:
            return channel
        raise NotFoundError(f"no channel {ref} (see `monitor channels list`)")
    statement = select(Channel).join(Subscriber, col(Subscriber.id) == Channel.subscriber_id)
    statement = statement.where(col(Channel.url) == ref)
    if email is not None:
        statement = statement.where(Subscriber.email == email)
    found = list(session.exec(statement))
    if len(found) == 1:
        return found[0]
    if not found:
        raise NotFoundError("no channel with that URL (see `monitor channels list`)")
    raise UsageError("several subscribers have a channel with that URL: name it by its id")


@dataclass(frozen=True, slots=True)
class ChannelRow:
    """One channel as lists show it: never its URL or secret in full."""

    id: int
    email: str
    kind: str
    shown_url: str
    name: str
    schedule: str
    topics: tuple[str, ...]
    priority: str
    template: str
    state: str
    secret: str
    last_status: str
    last_error: str
    last_at: datetime | None


def channel_schedule(channel: Channel) -> str:
    """``instant``, ``hourly``, ``daily 08:00`` or ``weekly mon 08:00``."""
    from monitor.delivery.subscriptions import make_schedule  # here: it imports this module

    return make_schedule(
        Frequency(channel.frequency), channel.send_time, channel.weekday
    ).describe()


def list_topic_slugs(session: Session, channel: Channel) -> list[str]:
    """The slugs of the topics a channel names (empty: it follows its subscriber's)."""
    if not channel.topic_ids:
        return []
    rows = session.exec(select(Topic.slug).where(col(Topic.id).in_(channel.topic_ids)))
    return sorted(rows)


def channel_state(channel: Channel) -> str:
    """``active``, ``disabled: why`` or ``ended``."""
    if channel.ended_at is not None:
        return "ended"
    if channel.disabled_reason:
        return f"disabled: {channel.disabled_reason}"
    return "active"


def list_channels(
    session: Session, *, email: str | None = None, include_ended: bool = True
) -> list[ChannelRow]:
    """Every channel (or one subscriber's), by address then id, with its last delivery."""
    statement = (
        select(Channel, Subscriber.email)
        .join(Subscriber, col(Subscriber.id) == Channel.subscriber_id)
        .order_by(col(Subscriber.email), col(Channel.id))
    )
    if email is not None:
        statement = statement.where(Subscriber.email == email)
    if not include_ended:
        statement = statement.where(col(Channel.ended_at).is_(None))
    rows = list(session.exec(statement))
    slugs = {t.id: t.slug for t in session.exec(select(Topic))}
    last = _last_deliveries(session, [channel.id or 0 for channel, _ in rows])
    result = []
    for channel, address in rows:
        delivery = last.get(channel.id or 0)
        topics = tuple(slugs.get(i, str(i)) for i in channel.topic_ids) or ("(their topics)",)
        result.append(
            ChannelRow(
                id=channel.id or 0,
                email=address,
                kind=str(channel.kind),
                shown_url=channel.shown_url,
                name=channel.name,
                schedule=channel_schedule(channel),
                topics=topics,
                priority=channel.priority or "any",
                template=channel.template,
                state=channel_state(channel),
                secret=shown_secret(channel.secret),
                last_status=str(delivery.status) if delivery else "",
                last_error=(delivery.last_error or "") if delivery else "",
                last_at=(delivery.sent_at or delivery.created_at) if delivery else None,
            )
        )
    return result


def _last_deliveries(session: Session, channel_ids: list[int]) -> dict[int, Delivery]:
    """Each channel's latest delivery that was not empty."""
    if not channel_ids:
        return {}
    latest = (
        select(func.max(Delivery.id))
        .where(col(Delivery.channel_id).in_(channel_ids), Delivery.status != DeliveryStatus.EMPTY)
        .group_by(col(Delivery.channel_id))
    )
    found = session.exec(select(Delivery).where(col(Delivery.id).in_(latest))).all()
    return {d.channel_id or 0: d for d in found}
