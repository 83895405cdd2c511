"""``monitor deliveries ...``: what the outbox holds, and why a digest did not go."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table
from sqlmodel import Session

from monitor.cli.common import prepare, say, show, user_errors
from monitor.delivery.digest import channel_period
from monitor.delivery.dispatch import channel_labels, list_deliveries
from monitor.models import Delivery, DeliveryStatus, utcnow

deliveries_app = typer.Typer(
    help="The outbox: digests sent, waiting to be retried, or refused.", no_args_is_help=True
)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""


def _lease(delivery: Delivery, now: datetime) -> str:
    """Who holds a pending delivery and until when (a lease that ran out holds nothing)."""
    until = delivery.claimed_until
    if delivery.status != DeliveryStatus.PENDING or until is None or until <= now:
        return ""
    return f"{delivery.claimed_by} until {_when(until)}"


@deliveries_app.command("list")
@user_errors
def deliveries_list(
    ctx: typer.Context,
    failed: Annotated[
        bool, typer.Option("--failed", help="Only deliveries the server refused for good.")
    ] = False,
    pending: Annotated[
        bool, typer.Option("--pending", help="Only deliveries waiting to be sent or retried.")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 50,
    channel: Annotated[
        int | None, typer.Option("--channel", help="Only this channel's (see `channels list`).")
    ] = None,
) -> None:
    """List the newest deliveries: status, attempts, next attempt and the server's last answer."""
    statuses = [s for s, wanted in ((DeliveryStatus.FAILED, failed),
                                    (DeliveryStatus.PENDING, pending)) if wanted]  # fmt: skip
    engine = prepare(ctx)
    now = utcnow()
    with Session(engine) as session:
        rows = list_deliveries(session, statuses=statuses, limit=limit, channel_id=channel)
        labels = channel_labels(session, [delivery for delivery, _ in rows])
    table = Table(show_header=True)
    columns = ("id", "subscriber", "to", "period", "status", "attempts", "next attempt",
               "leased to")  # fmt: skip
    for column in columns:
        table.add_column(column, overflow="fold")
    table.add_column("last error", overflow="fold")
    for delivery, email in rows:
        table.add_row(
            str(delivery.id),
            email,
            labels.get(delivery.channel_id, "") if delivery.channel_id else "e-mail",
            channel_period(delivery.period_key),
            str(delivery.status),
            str(delivery.attempts),
            # Only a pending delivery has a next attempt; for the others it is history.
            _when(delivery.next_attempt_at) if delivery.status == DeliveryStatus.PENDING else "",
            _lease(delivery, now),
            delivery.last_error or "",
        )
    show(table)
    say(f"{len(rows)} deliveries")
