"""Run the outbox: plan the digests that are due, then send every pending delivery.

One outbox serves e-mail and channels (webhooks, Apprise): the same planning, leases, retries
and marks. In a batch, e-mail goes one message after another over one SMTP connection while
each channel's deliveries go in order beside the others (``channels.concurrency`` at once), so
a slow or failing channel, or an unreachable mail server, holds up nobody else.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import secrets
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from jinja2 import Environment
from sqlalchemy import ColumnElement, Engine, and_, func, or_, update
from sqlmodel import Session, col, select

from monitor.delivery.channels.plan import due_channel_groups
from monitor.delivery.channels.send import ChannelJob, ChannelSender
from monitor.delivery.channels.store import set_disabled
from monitor.delivery.digest import (
    PlannedDelivery,
    load_digest,
    plan_delivery,
)
from monitor.delivery.mailer import Transport, retry_at
from monitor.delivery.render import (
    Letterhead,
    RenderedDigest,
    address_domain,
    compose_digest,
)
from monitor.delivery.subscriptions import (
    DueGroup,
    all_subscription_groups,
    due_groups,
)
from monitor.errors import (
    ChannelGoneError,
    ConfigError,
    PermanentDeliveryError,
    TemporaryDeliveryError,
    TransportUnavailableError,
)
from monitor.failpoints import failpoint
from monitor.models import (
    Channel,
    Delivery,
    DeliveryStatus,
    Frequency,
    Subscriber,
    Subscription,
    utcnow,
)
from monitor.reports.mail import is_report_delivery, report_message
from monitor.settings import Settings
from monitor.workers import local_worker_gone

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
            failpoint("before-outbox-commit")
        if result is not None:
            planned.append(result)
    return planned


def plan_due_digests(engine: Engine, settings: Settings, *, now: datetime) -> list[PlannedDelivery]:
    """Plan the digests whose period has begun, by e-mail and to channels: instant ones every
    tick, the others once per hour, local day or local week."""
    with Session(engine) as session:
        groups = due_groups(session, now=now, lookback=settings.digest.first_lookback)
        groups += due_channel_groups(session, now=now, lookback=settings.digest.first_lookback)
    return plan_groups(engine, groups, settings, now=now)


def plan_due_channels(
    engine: Engine, settings: Settings, *, now: datetime
) -> list[PlannedDelivery]:
    """Plan the channel periods that are due (a digest sent on demand goes by e-mail only,
    and channels keep their own schedule)."""
    with Session(engine) as session:
        groups = due_channel_groups(session, now=now, lookback=settings.digest.first_lookback)
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
    # What is left pending and why it did not go in this run: leased, or waiting for a retry.
    waiting: list[str] = field(default_factory=list)
    # Channel deliveries sent: "channel 3 https://hooks.example.org/…: answered 200 in 0.04 s".
    sent_channels: list[str] = field(default_factory=list)


# Deliveries leased per claim: small, so several workers share a large outbox between them.
CLAIM_BATCH = 20


def new_worker_id() -> str:
    """A sender's name in delivery leases, ``host:pid:random``, unique per run."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(4)}"


def claim_due_deliveries(
    engine: Engine,
    *,
    worker: str,
    now: datetime,
    lease: timedelta,
    after: int = 0,
    limit: int = CLAIM_BATCH,
    subscriber_id: int | None = None,
    channels_only: bool = False,
) -> list[int]:
    """Lease up to ``limit`` due deliveries (id above ``after``) to ``worker``; their ids, in order.

    ``channels_only``: leave e-mail alone (the mail server cannot be reached in this run).

    A delivery is due when it is pending, its next attempt time has come and nobody holds an
    unexpired lease on it. PostgreSQL skips the rows another worker is claiming at this moment
    (FOR UPDATE SKIP LOCKED); SQLite ignores FOR UPDATE, and its write lock, taken at BEGIN
    IMMEDIATE, makes claims happen one after another instead.
    """
    statement = (
        select(Delivery.id)
        .where(
            Delivery.status == DeliveryStatus.PENDING,
            col(Delivery.next_attempt_at) <= now,
            or_(col(Delivery.claimed_until).is_(None), col(Delivery.claimed_until) <= now),
            col(Delivery.id) > after,
        )
        .order_by(col(Delivery.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if subscriber_id is not None:
        statement = statement.where(Delivery.subscriber_id == subscriber_id)
    if channels_only:
        statement = statement.where(col(Delivery.channel_id).is_not(None))
    with Session(engine) as session, session.begin():
        release_dead_leases(session, now=now)
        ids = [i for i in session.exec(statement).all() if i is not None]
        if ids:
            session.execute(
                update(Delivery)
                .where(col(Delivery.id).in_(ids))
                .values(claimed_by=worker, claimed_until=now + lease)
            )
    return ids


def release_dead_leases(session: Session, *, now: datetime) -> int:
    """Free the live leases held by processes of this host that have ended (a crashed or
    killed sender), so their deliveries go now, not when the leases run out; how many."""
    holders = session.exec(
        select(Delivery.claimed_by)
        .where(
            Delivery.status == DeliveryStatus.PENDING,
            col(Delivery.claimed_until) > now,
        )
        .distinct()
    ).all()
    released = 0
    for holder in holders:
        if not local_worker_gone(holder):
            continue
        freed = session.execute(
            update(Delivery)
            .where(
                col(Delivery.claimed_by) == holder,
                col(Delivery.status) == DeliveryStatus.PENDING,
            )
            .values(claimed_by=None, claimed_until=None)
            .returning(col(Delivery.id))
        ).all()
        log.warning(
            "delivery leases released worker=%s deliveries=%d reason=its process has ended",
            holder,
            len(freed),
        )
        released += len(freed)
    return released


def renew_leases(engine: Engine, ids: list[int], *, worker: str, until: datetime) -> list[int]:
    """Extend ``worker``'s leases on ``ids`` to ``until``; the ids it still held, in order."""
    if not ids:
        return []
    with Session(engine) as session, session.begin():
        held = session.execute(
            update(Delivery)
            .where(
                col(Delivery.id).in_(ids),
                col(Delivery.claimed_by) == worker,
                col(Delivery.status) == DeliveryStatus.PENDING,
            )
            .values(claimed_until=until)
            .returning(col(Delivery.id))
        ).scalars()
        kept = set(held)
    return [i for i in ids if i in kept]


def release_leases(engine: Engine, ids: list[int], *, worker: str) -> None:
    """Give up ``worker``'s leases on ``ids`` (those it still holds) so others may send them."""
    if not ids:
        return
    with Session(engine) as session, session.begin():
        session.execute(
            update(Delivery)
            .where(col(Delivery.id).in_(ids), col(Delivery.claimed_by) == worker)
            .values(claimed_by=None, claimed_until=None)
        )


def count_due_deliveries(
    engine: Engine, *, now: datetime, subscriber_id: int | None = None, mail_only: bool = False
) -> int:
    """How many pending deliveries (by e-mail only, with ``mail_only``) are due and free of
    any lease."""
    statement = select(func.count()).where(
        Delivery.status == DeliveryStatus.PENDING,
        col(Delivery.next_attempt_at) <= now,
        or_(col(Delivery.claimed_until).is_(None), col(Delivery.claimed_until) <= now),
    )
    if mail_only:
        statement = statement.where(col(Delivery.channel_id).is_(None))
    if subscriber_id is not None:
        statement = statement.where(Delivery.subscriber_id == subscriber_id)
    with Session(engine) as session:
        return session.exec(statement).one()


def describe_waiting(
    engine: Engine, *, now: datetime, subscriber_id: int | None = None
) -> list[str]:
    """What pending deliveries wait for at ``now``, one line per lease holder, and one for
    those waiting to be retried: how many, and until when."""
    pending = [Delivery.status == DeliveryStatus.PENDING]
    if subscriber_id is not None:
        pending.append(Delivery.subscriber_id == subscriber_id)
    with Session(engine) as session:
        held = session.exec(
            select(Delivery.claimed_by, func.count(), func.max(Delivery.claimed_until))
            .where(*pending, col(Delivery.claimed_until) > now)
            .group_by(col(Delivery.claimed_by))
            .order_by(col(Delivery.claimed_by))
        ).all()
        retry_count, first_retry = session.exec(
            select(func.count(), func.min(Delivery.next_attempt_at)).where(
                *pending,
                col(Delivery.next_attempt_at) > now,
                or_(col(Delivery.claimed_until).is_(None), col(Delivery.claimed_until) <= now),
            )
        ).one()
    lines = [
        f"{_deliveries(count)} leased to {holder} until {_utc(until)}: another sender has "
        "them (one that died leaves them until then)"
        for holder, count, until in held
    ]
    if retry_count:
        lines.append(f"{_deliveries(retry_count)} to retry, the first at {_utc(first_retry)}")
    return lines


def _deliveries(count: int) -> str:
    return f"{count} {'delivery' if count == 1 else 'deliveries'}"


def _utc(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment is not None else "?"


def list_deliveries(
    session: Session,
    *,
    statuses: Sequence[DeliveryStatus] = (),
    limit: int = 50,
    channel_id: int | None = None,
) -> list[tuple[Delivery, str]]:
    """The newest deliveries with their subscriber's address; only ``statuses`` (and one
    channel's) when given."""
    statement = select(Delivery, Subscriber.email).join(
        Subscriber, col(Subscriber.id) == Delivery.subscriber_id
    )
    if statuses:
        statement = statement.where(col(Delivery.status).in_(list(statuses)))
    if channel_id is not None:
        statement = statement.where(Delivery.channel_id == channel_id)
    rows = session.exec(statement.order_by(col(Delivery.id).desc()).limit(limit)).all()
    return [(delivery, email) for delivery, email in rows]


def channel_labels(session: Session, deliveries: Sequence[Delivery]) -> dict[int, str]:
    """``#3 desk (slack://T...2/...)`` for the channels of these deliveries."""
    ids = {d.channel_id for d in deliveries if d.channel_id is not None}
    if not ids:
        return {}
    rows = session.exec(select(Channel).where(col(Channel.id).in_(ids))).all()
    return {
        c.id or 0: f"#{c.id} {c.name + ' ' if c.name else ''}({c.shown_url})".strip() for c in rows
    }


@dataclass(slots=True)
class _Sender:
    """One worker's run over the outbox: what it needs to send, and its leases' clock."""

    engine: Engine
    settings: Settings
    transport: Transport
    env: Environment
    worker: str
    clock: Callable[[], datetime]
    report: SendReport = field(default_factory=SendReport)
    channels: ChannelSender | None = None
    # Set when the mail server cannot be reached: e-mail waits, channels go on.
    mail_down: TransportUnavailableError | None = None
    slots: asyncio.Semaphore | None = None

    def channel_sender(self) -> ChannelSender:
        """The channel sender of this run, made on first use."""
        if self.channels is None:
            self.channels = ChannelSender(self.settings, self.env)
        return self.channels


async def send_due_deliveries(
    engine: Engine,
    settings: Settings,
    transport: Transport,
    env: Environment,
    *,
    now: datetime | None = None,
    clock: Callable[[], datetime] = utcnow,
    subscriber_id: int | None = None,
    worker: str | None = None,
    batch: int = CLAIM_BATCH,
    channels: ChannelSender | None = None,
) -> SendReport:
    """Claim due deliveries a batch at a time and send them; a failure never skips items.

    Each delivery is tried at most once per run. Every claim and mark reads ``clock``; ``now``
    pins it instead (for tests). ``channels`` sends channel deliveries (one is made when
    needed, and closed after the run).
    """
    if now is not None:
        pinned = now
        clock = lambda: pinned  # noqa: E731
    slots = asyncio.Semaphore(settings.channels.concurrency)
    sender = _Sender(engine, settings, transport, env, worker or new_worker_id(), clock,
                     channels=channels, slots=slots)  # fmt: skip
    try:
        await _run_outbox(sender, subscriber_id=subscriber_id, batch=batch)
    finally:
        if channels is None and sender.channels is not None:
            await sender.channels.aclose()
    return sender.report


async def _run_outbox(sender: _Sender, *, subscriber_id: int | None, batch: int) -> None:
    engine, clock, lease = sender.engine, sender.clock, sender.settings.mail.lease
    after = 0
    while True:
        claimed_at = clock()
        claimed = await asyncio.to_thread(
            claim_due_deliveries,
            engine,
            worker=sender.worker,
            now=claimed_at,
            lease=lease,
            after=after,
            limit=batch,
            subscriber_id=subscriber_id,
            channels_only=sender.mail_down is not None,
        )
        if not claimed:
            break
        after = claimed[-1]
        try:
            await _send_batch(sender, claimed, held_until=claimed_at + lease)
        finally:
            # Whatever was not marked (an error cut the batch short) is free again at once.
            await asyncio.to_thread(release_leases, engine, claimed, worker=sender.worker)
    if sender.mail_down is not None:
        # Trying each remaining e-mail would only wait out the same timeout again.
        waiting = await asyncio.to_thread(
            count_due_deliveries, engine, now=clock(), subscriber_id=subscriber_id, mail_only=True
        )
        if waiting:
            sender.report.retrying.append(
                f"{waiting} more waiting for the mail server: {sender.mail_down}"
            )
        return
    sender.report.waiting = await asyncio.to_thread(
        describe_waiting, engine, now=clock(), subscriber_id=subscriber_id
    )


async def _send_batch(sender: _Sender, claimed: list[int], *, held_until: datetime) -> None:
    """Send a claimed batch: e-mail in order on one connection, each channel's deliveries in
    order, channels side by side."""
    routes = await asyncio.to_thread(_routes, sender.engine, claimed)
    mail = [i for i in claimed if routes.get(i) is None]
    by_channel: dict[int, list[int]] = {}
    for delivery_id in claimed:
        channel_id = routes.get(delivery_id)
        if channel_id is not None:
            by_channel.setdefault(channel_id, []).append(delivery_id)

    async def mail_queue() -> None:
        if not mail or sender.mail_down is not None:
            return
        try:
            await _send_queue(sender, mail, held_until, _send_one)
        except TransportUnavailableError as exc:
            sender.mail_down = exc

    async def channel_queue(ids: list[int]) -> None:
        assert sender.slots is not None
        async with sender.slots:
            await _send_queue(sender, ids, held_until, _send_channel)

    await asyncio.gather(mail_queue(), *(channel_queue(ids) for ids in by_channel.values()))


def _routes(engine: Engine, ids: list[int]) -> dict[int, int | None]:
    """Each delivery's channel (None: e-mail)."""
    with Session(engine) as session:
        rows = session.exec(
            select(Delivery.id, Delivery.channel_id).where(col(Delivery.id).in_(ids))
        ).all()
    return {delivery_id or 0: channel_id for delivery_id, channel_id in rows}


async def _send_queue(
    sender: _Sender,
    ids: list[int],
    held_until: datetime,
    send: Callable[[_Sender, int], Awaitable[bool | None]],
) -> None:
    """Send ``ids`` one after another; ``send`` returning False stops the queue (a channel
    that failed now is not tried again in this run)."""
    lease = sender.settings.mail.lease
    queue = list(ids)
    while queue:
        # A slow batch (rate limit, timeouts) renews its leases before half of them is gone,
        # so that nobody else starts sending what this worker is still going to send.
        if sender.clock() + lease / 2 > held_until:
            held_until = sender.clock() + lease
            queue = await asyncio.to_thread(
                renew_leases, sender.engine, queue, worker=sender.worker, until=held_until
            )
            if not queue:
                return
        if await send(sender, queue.pop(0)) is False:
            return


def _compose(sender: _Sender, delivery_id: int) -> tuple[EmailMessage, str, int]:
    """The message of a delivery (a digest, or a daily report), its recipient and articles."""
    settings = sender.settings
    with Session(sender.engine) as session:
        delivery = session.get(Delivery, delivery_id)
        if delivery is not None and is_report_delivery(delivery.period_key):
            message = report_message(session, delivery, settings)
            return message, str(message["To"]), 0
        digest = load_digest(
            session,
            delivery_id,
            max_articles=settings.digest.max_articles,
            excerpt_chars=settings.digest.excerpt_chars,
        )
    message = compose_digest(sender.env, digest, Letterhead.from_settings(settings)).message
    return message, digest.email, digest.total


async def _send_one(sender: _Sender, delivery_id: int) -> None:
    """Send one e-mail delivery (a digest or a report) and mark how it went."""
    settings, report = sender.settings, sender.report
    try:
        message, email, total = _compose(sender, delivery_id)
    except PermanentDeliveryError as exc:
        log.error("delivery failed delivery_id=%s error=%s", delivery_id, exc)
        await asyncio.to_thread(_mark_failed, sender.engine, delivery_id, sender.worker, str(exc))
        report.failed.append(f"delivery {delivery_id}: {exc}")
        return
    except ConfigError as exc:
        # A template that fails on this digest's data ({{ 1/0 }}, a missing key): this one
        # waits, with the reason, and is tried again after the usual backoff, once the
        # template is fixed; the other digests go.
        log.error("digest waits for its template delivery_id=%s error=%s", delivery_id, exc)
        await asyncio.to_thread(
            _mark_retry,
            sender.engine,
            settings,
            delivery_id,
            sender.worker,
            str(exc),
            sender.clock(),
        )
        report.retrying.append(f"delivery {delivery_id}: {exc}")
        return
    failpoint("before-smtp")
    try:
        await sender.transport.send(message)
    except PermanentDeliveryError as exc:
        log.error("digest failed delivery_id=%s to=%s error=%s", delivery_id, email, exc)
        await asyncio.to_thread(_mark_failed, sender.engine, delivery_id, sender.worker, str(exc))
        report.failed.append(f"{email}: {exc}")
        return
    except TemporaryDeliveryError as exc:
        log.warning("digest deferred delivery_id=%s to=%s error=%s", delivery_id, email, exc)
        await asyncio.to_thread(
            _mark_retry,
            sender.engine,
            settings,
            delivery_id,
            sender.worker,
            str(exc),
            sender.clock(),
        )
        report.retrying.append(f"{email}: {exc}")
        if isinstance(exc, TransportUnavailableError):
            raise
        return
    failpoint("after-smtp")
    marked = await asyncio.to_thread(
        _mark_sent, sender.engine, delivery_id, sender.worker, sender.clock()
    )
    if not marked:
        # Sent, but our lease ran out and another worker took the delivery over: it may send
        # the message again, with the same Message-ID.
        log.warning("digest sent after its lease expired delivery_id=%s to=%s", delivery_id, email)
    log.info(
        "digest sent delivery_id=%s to=%s articles=%d via=%s",
        delivery_id,
        email,
        total,
        sender.transport.name,
    )
    report.sent.append(email)


def _load_channel_job(engine: Engine, settings: Settings, delivery_id: int) -> ChannelJob:
    """A channel delivery with its channel and digest; PermanentDeliveryError when its
    channel was disabled meanwhile (what is pending for it fails, saying why)."""
    with Session(engine) as session:
        delivery = session.get(Delivery, delivery_id)
        channel = session.get(Channel, delivery.channel_id) if delivery is not None else None
        if delivery is None or channel is None:
            raise PermanentDeliveryError(f"delivery {delivery_id}: its channel no longer exists")
        if channel.disabled_reason:
            raise PermanentDeliveryError(
                f"channel {channel.shown_url} is disabled: {channel.disabled_reason}"
            )
        digest = load_digest(
            session,
            delivery_id,
            max_articles=settings.digest.max_articles,
            excerpt_chars=settings.digest.excerpt_chars,
        )
        session.expunge(channel)
    return ChannelJob(delivery_id, delivery.message_id, delivery.period_key, channel, digest)


async def _send_channel(sender: _Sender, delivery_id: int) -> bool:
    """Send one channel delivery and mark how it went; False when the channel failed now, so
    its other deliveries wait for a later run (in their order) instead of failing too."""
    engine, settings, report, worker = sender.engine, sender.settings, sender.report, sender.worker
    try:
        job = await asyncio.to_thread(_load_channel_job, engine, settings, delivery_id)
    except PermanentDeliveryError as exc:
        log.error("channel delivery failed delivery_id=%s error=%s", delivery_id, exc)
        await asyncio.to_thread(_mark_failed, engine, delivery_id, worker, str(exc))
        report.failed.append(f"delivery {delivery_id}: {exc}")
        return True
    channel = job.channel
    where = f"channel {channel.id} {channel.shown_url}"
    failpoint("before-channel-send")
    try:
        answer = await sender.channel_sender().send(job)
    except ConfigError as exc:
        # A template that fails on this digest: it waits, like an e-mail, until it is fixed.
        log.error("channel delivery waits for its template delivery_id=%s error=%s",
                  delivery_id, exc)  # fmt: skip
        await asyncio.to_thread(_mark_channel_retry, engine, settings, delivery_id, worker,
                                str(exc), sender.clock(), None)  # fmt: skip
        report.retrying.append(f"{where}: {exc}")
        return True
    except ChannelGoneError as exc:
        log.error("channel gone, disabled channel_id=%s delivery_id=%s error=%s",
                  channel.id, delivery_id, exc)  # fmt: skip
        await asyncio.to_thread(_mark_failed, engine, delivery_id, worker, str(exc))
        await asyncio.to_thread(_disable_channel, engine, channel.id or 0, str(exc), sender.clock())
        report.failed.append(f"{where}: {exc}")
        return False
    except PermanentDeliveryError as exc:
        log.error("channel delivery failed channel_id=%s delivery_id=%s error=%s",
                  channel.id, delivery_id, exc)  # fmt: skip
        await asyncio.to_thread(_mark_failed, engine, delivery_id, worker, str(exc))
        report.failed.append(f"{where}: {exc}")
        return True
    except TemporaryDeliveryError as exc:
        retry = await asyncio.to_thread(_mark_channel_retry, engine, settings, delivery_id,
                                        worker, str(exc), sender.clock(),
                                        exc.retry_after)  # fmt: skip
        if retry == "failed":
            log.error("channel delivery given up channel_id=%s delivery_id=%s error=%s",
                      channel.id, delivery_id, exc)  # fmt: skip
            report.failed.append(f"{where}: gave up after {_given_up(settings)}: {exc}")
        else:
            log.warning("channel delivery deferred channel_id=%s delivery_id=%s error=%s",
                        channel.id, delivery_id, exc)  # fmt: skip
            report.retrying.append(f"{where}: {exc}")
        return False
    failpoint("after-channel-send")
    marked = await asyncio.to_thread(_mark_sent, engine, delivery_id, worker, sender.clock())
    if not marked:
        log.warning("channel delivery sent after its lease expired delivery_id=%s", delivery_id)
    log.info("channel sent channel_id=%s delivery_id=%s to=%s stories=%d key=%s %s",
             channel.id, delivery_id, channel.shown_url, job.digest.total, job.key,
             answer)  # fmt: skip
    report.sent_channels.append(f"{where}: {answer}")
    return True


def _given_up(settings: Settings) -> str:
    hours = settings.channels.give_up_after.total_seconds() / 3600
    return f"{hours:g} hours" if hours < 48 else f"{hours / 24:g} days"


def channel_retry_at(
    now: datetime, attempts: int, settings: Settings, retry_after: timedelta | None
) -> datetime:
    """When to try a channel delivery again: doubling delays from ``channels.retry_backoff``
    with a random tenth either way (so many channels failing together do not come back
    together), capped; never before the other side's Retry-After."""
    channels = settings.channels
    delay: timedelta = channels.retry_backoff * (2 ** min(max(attempts - 1, 0), 16))
    delay = min(delay, channels.max_retry_backoff) * random.uniform(0.9, 1.1)
    if retry_after is not None:
        delay = max(delay, min(retry_after, channels.max_retry_after))
    return now + delay


def _release_failed(
    session: Session, delivery_id: int, worker: str, error: str
) -> tuple[int, datetime] | None:
    """Count a failed attempt and give the lease back if ``worker`` still holds it: the
    delivery's (attempts, created_at), or None when the lease was lost."""
    row = session.execute(
        update(Delivery)
        .where(_held_by(delivery_id, worker))
        .values(
            attempts=col(Delivery.attempts) + 1,
            last_error=error,
            claimed_by=None,
            claimed_until=None,
        )
        .returning(col(Delivery.attempts), col(Delivery.created_at))
    ).first()
    return None if row is None else (row[0], row[1])


def _mark_channel_retry(
    engine: Engine,
    settings: Settings,
    delivery_id: int,
    worker: str,
    error: str,
    now: datetime,
    retry_after: timedelta | None,
) -> str:
    """Mark a channel delivery for a retry, or failed once ``channels.give_up_after`` has
    passed since it was planned: "retry", "failed", or "" when the lease was lost."""
    with Session(engine) as session, session.begin():
        row = _release_failed(session, delivery_id, worker, error)
        if row is None:
            return ""
        attempts, created_at = row
        if created_at.tzinfo is None:  # SQLite hands back naive UTC through RETURNING
            created_at = created_at.replace(tzinfo=UTC)
        if now - created_at >= settings.channels.give_up_after:
            session.execute(
                update(Delivery)
                .where(col(Delivery.id) == delivery_id)
                .values(
                    status=DeliveryStatus.FAILED,
                    last_error=f"gave up after {attempts} attempts: {error}",
                )
            )
            return "failed"
        session.execute(
            update(Delivery)
            .where(col(Delivery.id) == delivery_id)
            .values(next_attempt_at=channel_retry_at(now, attempts, settings, retry_after))
        )
    return "retry"


def _disable_channel(engine: Engine, channel_id: int, reason: str, now: datetime) -> None:
    with Session(engine) as session, session.begin():
        set_disabled(session, channel_id, f"{reason} ({now:%Y-%m-%d %H:%M} UTC)", now=now)


def _held_by(delivery_id: int, worker: str) -> ColumnElement[bool]:
    """The delivery, still pending and still leased to ``worker``: marks apply to nothing else."""
    return and_(
        col(Delivery.id) == delivery_id,
        col(Delivery.claimed_by) == worker,
        col(Delivery.status) == DeliveryStatus.PENDING,
    )


def _mark_sent(engine: Engine, delivery_id: int, worker: str, now: datetime) -> bool:
    with Session(engine) as session, session.begin():
        marked = session.execute(
            update(Delivery)
            .where(_held_by(delivery_id, worker))
            .values(
                status=DeliveryStatus.SENT,
                sent_at=now,
                last_error=None,
                attempts=col(Delivery.attempts) + 1,
                claimed_by=None,
                claimed_until=None,
            )
            .returning(col(Delivery.id))
        ).scalar()
    return marked is not None


def _mark_failed(engine: Engine, delivery_id: int, worker: str, error: str) -> bool:
    with Session(engine) as session, session.begin():
        marked = session.execute(
            update(Delivery)
            .where(_held_by(delivery_id, worker))
            .values(
                status=DeliveryStatus.FAILED,
                last_error=error,
                attempts=col(Delivery.attempts) + 1,
                claimed_by=None,
                claimed_until=None,
            )
            .returning(col(Delivery.id))
        ).scalar()
    return marked is not None


def _mark_retry(
    engine: Engine, settings: Settings, delivery_id: int, worker: str, error: str, now: datetime
) -> bool:
    with Session(engine) as session, session.begin():
        row = _release_failed(session, delivery_id, worker, error)
        if row is None:
            return False
        attempts = row[0]
        session.execute(
            update(Delivery)
            .where(col(Delivery.id) == delivery_id)
            .values(next_attempt_at=retry_at(now, attempts, settings.mail))
        )
    return True


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
    frequency: str | None = None,
) -> list[DigestPreview]:
    """Render what ``digest send`` would send, inside a transaction that is rolled back.

    ``frequency`` previews only the subscriptions of that frequency, as their digest.
    """
    previews = []
    domain = address_domain(settings.mail.from_address)
    letterhead = Letterhead.from_settings(settings)
    with Session(engine) as session:
        session.begin()
        groups = all_subscription_groups(
            session, period_key="preview", lookback=settings.digest.first_lookback, email=email
        )
        for group in groups:
            if frequency is not None:
                group = _only_frequency(session, group, frequency)
                if not group.topic_ids:
                    continue
            planned = plan_delivery(session, group, message_domain=domain, now=now)
            subscriber = session.get(Subscriber, group.subscriber_id)
            if planned is None or subscriber is None:
                continue
            # What the real send would do: a "nothing new" notice only where the group sends one.
            if planned.items == 0 and not group.notify_empty:
                continue
            digest = load_digest(
                session,
                planned.delivery_id,
                max_articles=settings.digest.max_articles,
                excerpt_chars=settings.digest.excerpt_chars,
            )
            rendered = compose_digest(env, digest, letterhead).rendered
            previews.append(DigestPreview(digest.email, digest.total, rendered))
        session.rollback()
    return previews


def _only_frequency(session: Session, group: DueGroup, frequency: str) -> DueGroup:
    """The group narrowed to its active subscriptions of ``frequency``, keyed as that period,
    sending a "nothing new" notice as that period's digest would."""
    subscriber = session.get(Subscriber, group.subscriber_id)
    notify = subscriber is not None and subscriber.notify_empty and frequency != Frequency.INSTANT
    topic_ids = session.exec(
        select(Subscription.topic_id).where(
            Subscription.subscriber_id == group.subscriber_id,
            Subscription.frequency == frequency,
            col(Subscription.unsubscribed_at).is_(None),
            col(Subscription.topic_id).in_(group.topic_ids),
        )
    ).all()
    return replace(
        group,
        topic_ids=tuple(sorted(topic_ids)),
        period_key=f"{frequency}:preview",
        notify_empty=notify,
        record_empty=True,
    )
