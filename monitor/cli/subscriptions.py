"""``monitor subscribe``, ``monitor unsubscribe`` and ``monitor subscriptions list``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from sqlmodel import Session

from monitor.cli.common import prepare, say, show, user_errors
from monitor.delivery.subscriptions import (
    check_email,
    check_timezone,
    get_subscriber,
    list_subscriptions,
    parse_schedule,
    subscribe_topics,
    unsubscribe,
)
from monitor.errors import NotFoundError
from monitor.models import utcnow
from monitor.topics.catalog import require_topic

subscriptions_app = typer.Typer(help="List subscriptions.", no_args_is_help=True)

EmailArgument = Annotated[str, typer.Argument(help="The subscriber's e-mail address.")]


@user_errors
def subscribe(
    ctx: typer.Context,
    email: EmailArgument,
    topics: Annotated[list[str], typer.Argument(help="Topic slugs (see `monitor topics list`).")],
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
) -> None:
    """Subscribe an address to topics (default daily 08:00); starts an ended subscription again."""
    address = check_email(email)
    schedule = parse_schedule(instant=instant, hourly=hourly, daily=daily, weekly=weekly)
    zone = check_timezone(tz) if tz is not None else None
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


@user_errors
def unsubscribe_command(
    ctx: typer.Context,
    email: EmailArgument,
    topics: Annotated[
        list[str] | None, typer.Argument(help="Topic slugs [default: every topic].")
    ] = None,
) -> None:
    """End an address's subscriptions to these topics (all when none given)."""
    address = check_email(email)
    engine = prepare(ctx)
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
