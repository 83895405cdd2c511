"""``monitor subscribe``, ``monitor unsubscribe`` and ``monitor subscriptions list``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from sqlmodel import Session

from monitor.cli.common import prepare, say, settings_of, show, user_errors
from monitor.delivery.channels.manage import subscribe_channel, unsubscribe_channel
from monitor.delivery.channels.store import channel_schedule, list_topic_slugs
from monitor.delivery.render import load_templates
from monitor.delivery.subscriptions import (
    Schedule,
    check_email,
    check_timezone,
    get_subscriber,
    list_subscriptions,
    parse_schedule,
    subscribe_topics,
    unsubscribe,
)
from monitor.errors import NotFoundError, UsageError
from monitor.models import utcnow
from monitor.operations import channel_policy
from monitor.topics.catalog import require_topic

subscriptions_app = typer.Typer(help="List subscriptions.", no_args_is_help=True)

EmailArgument = Annotated[str, typer.Argument(help="The subscriber's e-mail address.")]


@user_errors
def subscribe(
    ctx: typer.Context,
    email: EmailArgument,
    topics: Annotated[
        list[str] | None,
        typer.Argument(help="Topic slugs (see `monitor topics list`); with --channel, optional."),
    ] = None,
    instant: Annotated[
        bool, typer.Option("--instant", help="Every new match at the next tick.")
    ] = False,
    hourly: Annotated[bool, typer.Option("--hourly", help="Once an hour, on the hour.")] = False,
    daily: Annotated[
        str | None, typer.Option("--daily", metavar="HH:MM", help="Once a day at this local time.")
    ] = None,
    weekly: Annotated[
        str | None,
        typer.Option("--weekly", metavar="'DAY HH:MM'", help="Once a week, as 'mon 08:00'."),
    ] = None,
    tz: Annotated[
        str | None, typer.Option("--tz", help="IANA time zone, as Europe/Berlin [new: UTC].")
    ] = None,
    name: Annotated[str | None, typer.Option(help="The subscriber's name.")] = None,
    channel: Annotated[
        str | None,
        typer.Option(
            "--channel",
            metavar="URL",
            help="Send to this webhook (https://...) or Apprise URL (slack://, tgram://, ...) "
            "instead of e-mail [default schedule: instant; no topic: the address's topics].",
        ),
    ] = None,
    priority: Annotated[
        str | None, typer.Option(help="With --channel: 'high' for high-priority topics only.")
    ] = None,
    channel_name: Annotated[
        str | None, typer.Option("--channel-name", help="With --channel: a label for it.")
    ] = None,
    secret: Annotated[
        str | None,
        typer.Option(help="With a webhook: its signing secret (whsec_...) [default: one is made]."),
    ] = None,
    template: Annotated[
        str | None,
        typer.Option(help="With --channel: a template name of config/templates/ to use."),
    ] = None,
) -> None:
    """Subscribe an address to topics (default daily 08:00); starts an ended subscription again.

    With --channel, the topics go to that channel (instant unless a schedule is given), and the
    address's e-mail subscriptions stay as they are.
    """
    address = check_email(email)
    schedule = parse_schedule(instant=instant, hourly=hourly, daily=daily, weekly=weekly)
    zone = check_timezone(tz) if tz is not None else None
    if channel is not None:
        _subscribe_channel(ctx, address, topics or [], schedule, channel, priority=priority,
                           name=channel_name, secret=secret, template=template)  # fmt: skip
        return
    if not topics:
        raise UsageError("give at least one topic (or --channel URL)")
    if priority or channel_name or secret or template:
        raise UsageError("--priority, --channel-name, --secret and --template go with --channel")
    engine = prepare(ctx)
    with Session(engine) as session, session.begin():
        found = [require_topic(session, slug) for slug in dict.fromkeys(topics)]
        result = subscribe_topics(
            session, email=address, topics=found, schedule=schedule, timezone=zone, name=name,
            now=utcnow(),
        )  # fmt: skip
    if result.subscriber_added:
        say(f"new subscriber {address}")
    for label, slugs in (
        ("subscribed", result.added),
        ("subscribed again", result.reactivated),
        ("rescheduled", result.changed),
        ("already subscribed", result.unchanged),
    ):
        if slugs:
            say(f"{label}: {', '.join(slugs)}")


def _subscribe_channel(
    ctx: typer.Context,
    address: str,
    topics: list[str],
    schedule: Schedule | None,
    url: str,
    *,
    priority: str | None,
    name: str | None,
    secret: str | None,
    template: str | None,
) -> None:
    settings = settings_of(ctx)
    env = load_templates(settings) if template else None
    engine = prepare(ctx)
    with Session(engine) as session, session.begin():
        found = [require_topic(session, slug) for slug in dict.fromkeys(topics)]
        saved = subscribe_channel(session, email=address, url=url, topics=found,
                                  schedule=schedule, policy=channel_policy(settings),
                                  now=utcnow(), env=env, priority=priority, name=name,
                                  secret=secret, template=template)  # fmt: skip
        channel = saved.channel
        state = "added" if saved.created else "changed" if saved.changed else "unchanged"
        say(f"channel {channel.id} of {address} {state}: {channel.shown_url}, "
            f"{channel_schedule(channel)}, "
            f"{', '.join(list_topic_slugs(session, channel)) or 'their topics'}"
            f"{', high priority only' if channel.priority else ''}")  # fmt: skip
    if saved.new_secret:
        say(f"signing secret (shown once, keep it now): {saved.new_secret}")


@user_errors
def unsubscribe_command(
    ctx: typer.Context,
    email: EmailArgument,
    topics: Annotated[
        list[str] | None, typer.Argument(help="Topic slugs [default: every topic].")
    ] = None,
    channel: Annotated[
        str | None,
        typer.Option(
            "--channel",
            metavar="ID|URL",
            help="End this channel of the address (with topics: drop them from it).",
        ),
    ] = None,
) -> None:
    """End an address's subscriptions to these topics (all when none given)."""
    address = check_email(email)
    engine = prepare(ctx)
    if channel is not None:
        with Session(engine) as session, session.begin():
            found = [require_topic(session, slug) for slug in topics or []]
            say(unsubscribe_channel(session, email=address, ref=channel, topics=found,
                                    now=utcnow()))  # fmt: skip
        return
    with Session(engine) as session, session.begin():
        subscriber = get_subscriber(session, address)
        if subscriber is None:
            raise NotFoundError(f"no subscriber {address!r} (see `monitor subscriptions list`)")
        topic_ids = None
        if topics:
            topic_ids = [require_topic(session, slug).id or 0 for slug in topics]
        ended = unsubscribe(
            session, subscriber_id=subscriber.id or 0, topic_ids=topic_ids, now=utcnow()
        )
    which = ", ".join(topics) if topics else "every topic"
    if ended:
        say(f"unsubscribed {address} from {which} ({ended} subscriptions ended)")
    else:
        say(f"{address} had no active subscription to {which}")


@subscriptions_app.command("list")
@user_errors
def subscriptions_list(
    ctx: typer.Context,
    email: Annotated[str | None, typer.Option(help="Only this subscriber.")] = None,
) -> None:
    """List subscriptions: address, time zone, topic, frequency, when, and whether active."""
    address = check_email(email) if email is not None else None
    engine = prepare(ctx)
    with Session(engine) as session:
        rows = list_subscriptions(session, email=address)
    table = Table(show_header=True)
    for column in ("email", "tz", "topic", "frequency", "when", "state"):
        table.add_column(column, overflow="fold")
    for row in rows:
        when = row.schedule.describe().removeprefix(str(row.schedule.frequency)).strip()
        state = "active" if row.unsubscribed_at is None else "unsubscribed"
        table.add_row(row.email, row.timezone, row.topic, str(row.schedule.frequency), when, state)
    show(table)
    say(f"{len(rows)} subscriptions")
