"""What the command line, the web pages and the API do with channels: subscribe one, end it,
send it a test message. One copy of each rule, whichever front door is used."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from jinja2 import Environment
from sqlalchemy import Engine
from sqlmodel import Session

from monitor.delivery.channels.compose import check_channel_templates, check_webhook_template
from monitor.delivery.channels.send import ChannelSender, trial_job
from monitor.delivery.channels.store import (
    ChannelWanted,
    SavedChannel,
    end_channel,
    find_channel,
    require_channel,
    save_channel,
)
from monitor.delivery.channels.targets import ChannelTarget, check_channel_url, check_secret
from monitor.delivery.subscriptions import (
    Schedule,
    check_template_name,
    get_subscriber,
    make_schedule,
)
from monitor.errors import NotFoundError, UsageError
from monitor.models import Channel, ChannelKind, Frequency, Subscriber, Topic, TopicPriority, utcnow
from monitor.settings import Settings
from monitor.sources.admission import HostResolver, system_addresses
from monitor.sources.guard import AddressPolicy


def subscribe_channel(
    session: Session,
    *,
    email: str,
    url: str,
    topics: list[Topic],
    schedule: Schedule | None,
    policy: AddressPolicy,
    now: datetime,
    priority: str | None = None,
    name: str | None = None,
    secret: str | None = None,
    template: str | None = None,
    env: Environment | None = None,
    resolve: HostResolver = system_addresses,
) -> SavedChannel:
    """Give ``email`` (made a subscriber if new) the channel ``url``: ``topics`` are added to
    what it follows (none: a new channel follows the subscriber's topics), and what is not
    given stays as it was (a new channel is instant)."""
    target = check_channel_url(url, policy, resolve)
    if secret is not None:
        if target.kind is not ChannelKind.WEBHOOK:
            raise UsageError("a signing secret is for webhooks (http and https URLs) only")
        secret = check_secret(secret)
    if template:
        check_template_name(template)
        if env is not None:
            _check_template(env, target.kind, template)
    subscriber = get_subscriber(session, email)
    if subscriber is None:
        subscriber = Subscriber(email=email, created_at=now)
        session.add(subscriber)
        session.flush()
    existing = find_channel(session, subscriber.id or 0, target)
    wanted = _wanted_now(existing, target)
    ids = {t.id or 0 for t in topics}
    wanted = replace(
        wanted,
        secret=secret,
        topic_ids=tuple(sorted(set(wanted.topic_ids) | ids)) if ids else wanted.topic_ids,
        name=wanted.name if name is None else name,
        priority=wanted.priority if priority is None else _priority(priority),
        template=wanted.template if template is None else template,
    )
    if schedule is not None:
        wanted = replace(wanted, frequency=schedule.frequency, send_time=schedule.send_time,
                         weekday=schedule.weekday)  # fmt: skip
    return save_channel(session, subscriber_id=subscriber.id or 0, wanted=wanted, now=now)


def _priority(value: str) -> str:
    value = value.strip().lower()
    if value in ("", "any", "normal"):
        return ""
    if value == TopicPriority.HIGH:
        return "high"
    raise UsageError(f"not a priority: {value!r} (high, or any)")


def _wanted_now(existing: Channel | None, target: ChannelTarget) -> ChannelWanted:
    if existing is None:
        return ChannelWanted(target=target)
    return ChannelWanted(
        target=target,
        name=existing.name,
        topic_ids=tuple(existing.topic_ids),
        priority=existing.priority,
        frequency=Frequency(existing.frequency),
        send_time=existing.send_time,
        weekday=existing.weekday,
        template=existing.template,
    )


def _check_template(env: Environment, kind: ChannelKind, template: str) -> None:
    """The channel's own template exists and renders the sample digest."""
    if kind is ChannelKind.WEBHOOK:
        check_webhook_template(env, template)
    else:
        check_channel_templates(env, (template,))


def unsubscribe_channel(
    session: Session, *, email: str, ref: str, topics: list[Topic], now: datetime
) -> str:
    """End a subscriber's channel (by id or URL), or drop ``topics`` from what it follows
    (ending it when none is left); what was done, in words."""
    subscriber = get_subscriber(session, email)
    if subscriber is None:
        raise NotFoundError(f"no subscriber {email!r} (see `monitor channels list`)")
    channel = require_channel(session, ref, email=email)
    if channel.subscriber_id != subscriber.id:
        raise NotFoundError(f"{email} has no channel {ref}")
    if channel.ended_at is not None:
        return f"channel {channel.id} ({channel.shown_url}) had already ended"
    if topics:
        if not channel.topic_ids:
            raise UsageError(
                f"channel {channel.id} follows {email}'s topics: unsubscribe the address from "
                "them, or end the channel (no topic)"
            )
        left = [i for i in channel.topic_ids if i not in {t.id for t in topics}]
        if left:
            channel.topic_ids = left
            channel.updated_at = now
            session.add(channel)
            session.flush()
            return f"channel {channel.id} ({channel.shown_url}) no longer follows " + ", ".join(
                t.slug for t in topics
            )
    end_channel(session, channel, now=now)
    return f"channel {channel.id} ({channel.shown_url}) ended"


def schedule_or_instant(schedule: Schedule | None) -> Schedule:
    """A channel's schedule: the one given, or instant."""
    return schedule or make_schedule(Frequency.INSTANT)


async def send_test_message(
    engine: Engine,
    settings: Settings,
    env: Environment,
    channel_id: int,
    *,
    sender: ChannelSender | None = None,
) -> str:
    """Send a channel a test message now, outside the outbox (nothing is recorded); what
    the channel answered, or the DeliveryError saying why it did not take it."""
    with Session(engine) as session:
        channel = session.get(Channel, channel_id)
        if channel is None:
            raise NotFoundError(f"no channel {channel_id} (see `monitor channels list`)")
        subscriber = session.get(Subscriber, channel.subscriber_id)
        email = subscriber.email if subscriber is not None else ""
        session.expunge(channel)
    own = sender is None
    sender = sender or ChannelSender(settings, env)
    try:
        return await sender.send(trial_job(channel, email=email, now=utcnow()))
    finally:
        if own:
            await sender.aclose()
