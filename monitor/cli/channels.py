"""``monitor channels ...``: list channels, send one a test message, disable, enable, end one,
and make a webhook a new signing secret. Subscribing a channel is ``monitor subscribe
EMAIL [TOPIC...] --channel URL``."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.table import Table
from sqlmodel import Session

from monitor.cli.common import prepare, say, settings_of, show, tell, user_errors
from monitor.delivery.channels.manage import send_test_message
from monitor.delivery.channels.store import (
    end_channel,
    list_channels,
    require_channel,
    rotate_secret,
    set_disabled,
)
from monitor.delivery.render import load_templates
from monitor.delivery.subscriptions import check_email
from monitor.errors import DeliveryError
from monitor.models import utcnow

channels_app = typer.Typer(
    help="Channels beside e-mail: webhooks and Apprise URLs (Slack, Teams, Telegram, ...).",
    no_args_is_help=True,
)
ChannelArgument = Annotated[str, typer.Argument(help="The channel's id (see `channels list`).")]


@channels_app.command("list")
@user_errors
def channels_list(
    ctx: typer.Context,
    email: Annotated[str | None, typer.Option(help="Only this subscriber's.")] = None,
    ended: Annotated[bool, typer.Option("--ended", help="Ended channels too.")] = False,
) -> None:
    """List channels: id, subscriber, URL (secrets masked), schedule, topics, state, last send."""
    address = check_email(email) if email is not None else None
    engine = prepare(ctx)
    with Session(engine) as session:
        rows = list_channels(session, email=address, include_ended=ended)
    table = Table(show_header=True)
    for column in ("id", "subscriber", "kind", "url", "schedule", "topics", "priority", "state",
                   "last", "last error"):  # fmt: skip
        table.add_column(column, overflow="fold")
    for row in rows:
        url = f"{row.name}: {row.shown_url}" if row.name else row.shown_url
        last = f"{row.last_status} {row.last_at:%Y-%m-%d %H:%M}" if row.last_at else ""
        table.add_row(str(row.id), row.email, row.kind, url, row.schedule, ", ".join(row.topics),
                      row.priority, row.state, last, row.last_error)  # fmt: skip
    show(table)
    say(f"{len(rows)} channels")


@channels_app.command("test")
@user_errors
def channels_test(ctx: typer.Context, channel: ChannelArgument) -> None:
    """Send the channel a test message now (records nothing) and say what it answered."""
    settings = settings_of(ctx)
    env = load_templates(settings)
    engine = prepare(ctx)
    with Session(engine) as session:
        found = require_channel(session, channel)
        shown, channel_id = found.shown_url, found.id or 0
    try:
        answer = asyncio.run(send_test_message(engine, settings, env, channel_id))
    except DeliveryError as exc:
        tell("failed:", "bold red", str(exc))
        raise typer.Exit(1) from None
    say(f"test message sent to channel {channel_id} ({shown}): {answer}")


@channels_app.command("disable")
@user_errors
def channels_disable(
    ctx: typer.Context,
    channel: ChannelArgument,
    reason: Annotated[str, typer.Option(help="Why, as lists show it.")] = "disabled by hand",
) -> None:
    """Stop sending to a channel (its pending deliveries fail, saying why) until enabled."""
    engine = prepare(ctx)
    with Session(engine) as session, session.begin():
        channel_id = require_channel(session, channel).id or 0
        changed = set_disabled(session, channel_id, reason, now=utcnow())
    say(
        f"channel {channel_id} disabled"
        if changed
        else f"channel {channel_id} was disabled already"
    )


@channels_app.command("enable")
@user_errors
def channels_enable(ctx: typer.Context, channel: ChannelArgument) -> None:
    """Send to a disabled channel again (after a 410, say), from now on."""
    engine = prepare(ctx)
    with Session(engine) as session, session.begin():
        channel_id = require_channel(session, channel).id or 0
        changed = set_disabled(session, channel_id, None, now=utcnow())
    say(f"channel {channel_id} enabled" if changed else f"channel {channel_id} was not disabled")


@channels_app.command("remove")
@user_errors
def channels_remove(ctx: typer.Context, channel: ChannelArgument) -> None:
    """End a channel (its history stays; what is pending for it still goes)."""
    engine = prepare(ctx)
    with Session(engine) as session, session.begin():
        found = require_channel(session, channel)
        end_channel(session, found, now=utcnow())
        said = f"channel {found.id} ({found.shown_url}) ended"
    say(said)


@channels_app.command("rotate-secret")
@user_errors
def channels_rotate_secret(ctx: typer.Context, channel: ChannelArgument) -> None:
    """Give a webhook a new signing secret, shown this once; the old one stops at once."""
    engine = prepare(ctx)
    with Session(engine) as session, session.begin():
        found = require_channel(session, channel)
        secret = rotate_secret(session, found, now=utcnow())
        said = f"new signing secret of channel {found.id} (shown once, keep it now): {secret}"
    say(said)
