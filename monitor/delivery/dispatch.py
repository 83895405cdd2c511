"""Run the outbox: plan the digests that are due, then send every pending delivery."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime

from jinja2 import Environment
from sqlalchemy import Engine, update
from sqlmodel import Session, col

from monitor.delivery.digest import (
    PlannedDelivery,
    due_delivery_ids,
    load_digest,
    plan_delivery,
)
from monitor.delivery.mailer import Transport, retry_at
from monitor.delivery.render import (
    RenderedDigest,
    address_domain,
    build_message,
    render_digest,
)
from monitor.delivery.subscriptions import (
    DueGroup,
    all_subscription_groups,
    due_daily_groups,
)
from monitor.errors import (
    PermanentDeliveryError,
    TemporaryDeliveryError,
    TransportUnavailableError,
)
from monitor.models import Delivery, DeliveryStatus
from monitor.settings import Settings

log = logging.getLogger(__name__)


def plan_groups(
    engine: Engine, groups: list[DueGroup], settings: Settings, *, now: datetime
) -> list[PlannedDelivery]:
    """Plan each group in its own transaction, so one subscriber's trouble spares the others."""
    planned = []
    domain = address_domain(settings.mail.from_address)
    for group in groups:
        with Session(engine) as session, session.begin():
            result = plan_delivery(session, group, message_domain=domain, now=now)
        if result is not None:
            planned.append(result)
    return planned


def plan_due_digests(engine: Engine, settings: Settings, *, now: datetime) -> list[PlannedDelivery]:
    """Plan the scheduled digests whose local send time has come."""
    with Session(engine) as session:
        groups = due_daily_groups(session, now=now, lookback=settings.digest.first_lookback)
    return plan_groups(engine, groups, settings, now=now)


def plan_digests_now(
    engine: Engine, settings: Settings, *, now: datetime, email: str | None = None
) -> list[PlannedDelivery]:
    """Plan a digest for every subscriber (or one) right now, whatever their schedule."""
    with Session(engine) as session:
        groups = all_subscription_groups(
            session,
            period_key=f"manual:{now.isoformat(timespec='microseconds')}",
            lookback=settings.digest.first_lookback,
            email=email,
        )
    return plan_groups(engine, groups, settings, now=now)


@dataclass(slots=True)
class SendReport:
    """What a send run did."""

    sent: list[str] = field(default_factory=list)
    retrying: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


async def send_due_deliveries(
    engine: Engine,
    settings: Settings,
    transport: Transport,
    env: Environment,
    *,
    now: datetime,
    subscriber_id: int | None = None,
) -> SendReport:
    """Send every pending delivery that is due; a failure is recorded and never skips items."""
    with Session(engine) as session:
        ids = due_delivery_ids(session, now=now, subscriber_id=subscriber_id)
    report = SendReport()
    for index, delivery_id in enumerate(ids):
        try:
            await _send_one(engine, settings, transport, env, delivery_id, now=now, report=report)
        except TransportUnavailableError as exc:
            # Trying each remaining delivery would only wait out the same timeout again.
            waiting = len(ids) - index - 1
            if waiting:
                report.retrying.append(f"{waiting} more waiting for the mail server: {exc}")
            break
    return report


async def _send_one(
    engine: Engine,
    settings: Settings,
    transport: Transport,
    env: Environment,
    delivery_id: int,
    *,
    now: datetime,
    report: SendReport,
) -> None:
    with Session(engine) as session:
        digest = load_digest(
            session,
            delivery_id,
            max_articles=settings.digest.max_articles,
            excerpt_chars=settings.digest.excerpt_chars,
        )
    rendered = render_digest(env, digest, subject_prefix=settings.digest.subject_prefix)
    message = build_message(
        rendered, digest, from_address=settings.mail.from_address, from_name=settings.mail.from_name
    )
    try:
        await transport.send(message)
    except PermanentDeliveryError as exc:
        log.error("digest failed delivery_id=%s to=%s error=%s", delivery_id, digest.email, exc)
        await asyncio.to_thread(_mark_failed, engine, delivery_id, str(exc))
        report.failed.append(f"{digest.email}: {exc}")
        return
    except TemporaryDeliveryError as exc:
        log.warning("digest deferred delivery_id=%s to=%s error=%s", delivery_id, digest.email, exc)
        await asyncio.to_thread(_mark_retry, engine, settings, delivery_id, str(exc), now)
        report.retrying.append(f"{digest.email}: {exc}")
        if isinstance(exc, TransportUnavailableError):
            raise
        return
    await asyncio.to_thread(_mark_sent, engine, delivery_id, now)
    log.info(
        "digest sent delivery_id=%s to=%s articles=%d via=%s",
        delivery_id,
        digest.email,
        digest.total,
        transport.name,
    )
    report.sent.append(digest.email)


def _mark_sent(engine: Engine, delivery_id: int, now: datetime) -> None:
    with Session(engine) as session, session.begin():
        session.execute(
            update(Delivery)
            .where(col(Delivery.id) == delivery_id)
            .values(
                status=DeliveryStatus.SENT,
                sent_at=now,
                last_error=None,
                attempts=col(Delivery.attempts) + 1,
            )
        )


def _mark_failed(engine: Engine, delivery_id: int, error: str) -> None:
    with Session(engine) as session, session.begin():
        session.execute(
            update(Delivery)
            .where(col(Delivery.id) == delivery_id)
            .values(
                status=DeliveryStatus.FAILED, last_error=error, attempts=col(Delivery.attempts) + 1
            )
        )


def _mark_retry(
    engine: Engine, settings: Settings, delivery_id: int, error: str, now: datetime
) -> None:
    with Session(engine) as session, session.begin():
        delivery = session.get(Delivery, delivery_id)
        if delivery is None:
            return
        delivery.attempts += 1
        delivery.last_error = error
        delivery.next_attempt_at = retry_at(now, delivery.attempts, settings.mail)
        session.add(delivery)


@dataclass(frozen=True, slots=True)
class DigestPreview:
    """A digest as it would be sent, for ``--dry-run``."""

    email: str
    articles: int
    rendered: RenderedDigest


def preview_digests(
    engine: Engine,
    settings: Settings,
    env: Environment,
    *,
    now: datetime,
    email: str | None = None,
) -> list[DigestPreview]:
    """Render what ``digest send`` would send, inside a transaction that is rolled back."""
    previews = []
    domain = address_domain(settings.mail.from_address)
    with Session(engine) as session:
        session.begin()
        groups = all_subscription_groups(
            session, period_key="preview", lookback=settings.digest.first_lookback, email=email
        )
        for group in groups:
            planned = plan_delivery(session, group, message_domain=domain, now=now)
            if planned is None or planned.items == 0:
                continue
            digest = load_digest(
                session,
                planned.delivery_id,
                max_articles=settings.digest.max_articles,
                excerpt_chars=settings.digest.excerpt_chars,
            )
            rendered = render_digest(env, digest, subject_prefix=settings.digest.subject_prefix)
            previews.append(DigestPreview(digest.email, digest.total, rendered))
        session.rollback()
    return previews
