"""Sharing the due feeds between workers: each due feed is claimed by one worker, for a while.

A claim picks due feeds that nobody holds a live lease on, most overdue first, and writes the
claimer's name and the lease's end on them, in one short transaction. On PostgreSQL the pick
is ``SELECT ... FOR UPDATE SKIP LOCKED``: two workers claiming at the same moment lock disjoint
rows and neither waits for the other. SQLite ignores the locking clause; its write lock, taken
when the transaction begins, makes claims happen one after another (one process is the SQLite
case anyway). Recording a check ends the lease (``feeds.release_lease``); a worker that dies
leaves its leases to run out, and then another worker claims those feeds.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import ColumnElement, Engine, func, or_
from sqlmodel import Session, col, select, update

from monitor.models import POLLED_STATES, Feed
from monitor.sources.feeds import FeedRef, ref_of
from monitor.workers import local_worker_gone

log = logging.getLogger(__name__)
R = TypeVar("R")


def worker_id(configured: str = "") -> str:
    """This process's name in feed leases: ``configured``, or ``host:pid``."""
    return configured or f"{socket.gethostname()[:80]}:{os.getpid()}"


def _claimable(now: datetime, due_by: datetime) -> ColumnElement[bool]:
    """Not disabled, due by ``due_by``, and under no lease that is still running at ``now``."""
    return (
        col(Feed.state).in_(POLLED_STATES)
        & (col(Feed.next_check_at) <= due_by)
        & or_(col(Feed.lease_until).is_(None), col(Feed.lease_until) <= now)
    )


def claim_due_feeds(
    session: Session,
    *,
    now: datetime,
    limit: int,
    owner: str,
    lease: timedelta,
    due_by: datetime | None = None,
) -> list[FeedRef]:
    """Lease up to ``limit`` due feeds to ``owner`` until ``now + lease``, most overdue first.

    A feed is due when its next check time is ``due_by`` (``now`` unless given) or earlier.
    The leases count once the caller commits, which it should do at once: on PostgreSQL the
    claimed rows stay locked until then, and other claimers pass over them.
    """
    release_dead_feed_leases(session, now=now)
    statement = (
        select(Feed)
        .where(_claimable(now, due_by or now))
        .order_by(col(Feed.next_check_at), col(Feed.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = list(session.exec(statement))
    if not rows:
        return []
    session.execute(
        update(Feed)
        .where(col(Feed.id).in_([row.id for row in rows]))
        .values(lease_owner=owner, lease_until=now + lease)
        .execution_options(synchronize_session=False)
    )
    return [ref_of(row, lease_owner=owner) for row in rows]


def release_dead_feed_leases(session: Session, *, now: datetime) -> int:
    """Free the live feed leases held by processes of this host that have ended (a killed
    ``monitor run``), so their feeds are polled now, not when the leases run out; how many."""
    holders = session.exec(
        select(Feed.lease_owner).where(col(Feed.lease_until) > now).distinct()
    ).all()
    released = 0
    for holder in holders:
        if not local_worker_gone(holder):
            continue
        freed = session.execute(
            update(Feed)
            .where(col(Feed.lease_owner) == holder)
            .values(lease_owner=None, lease_until=None)
            .returning(col(Feed.id))
        ).all()
        log.warning(
            "feed leases released worker=%s feeds=%d reason=its process has ended",
            holder,
            len(freed),
        )
        released += len(freed)
    return released


def count_due_feeds(session: Session, *, now: datetime) -> int:
    """How many feeds are due at ``now`` and free of any live lease."""
    statement = select(func.count()).select_from(Feed).where(_claimable(now, now))
    return session.exec(statement).one()


def release_feed_leases(engine: Engine, feed_ids: Iterable[int], *, owner: str) -> None:
    """Give up ``owner``'s leases on these feeds (those it still holds) for others to claim."""
    ids = list(feed_ids)
    if not ids:
        return
    with Session(engine) as session, session.begin():
        session.execute(
            update(Feed)
            .where(col(Feed.id).in_(ids), col(Feed.lease_owner) == owner)
            .values(lease_owner=None, lease_until=None)
        )


def _claim(
    engine: Engine, *, now: datetime, due_by: datetime, limit: int, owner: str, lease: timedelta
) -> list[FeedRef]:
    with Session(engine) as session, session.begin():
        return claim_due_feeds(
            session, now=now, due_by=due_by, limit=limit, owner=owner, lease=lease
        )


async def claim_batches(
    engine: Engine,
    *,
    owner: str,
    lease: timedelta,
    batch: int,
    limit: int,
    clock: Callable[[], datetime],
) -> AsyncIterator[list[FeedRef]]:
    """Claim due feeds ``batch`` at a time, each batch when the caller asks for the next one.

    Only feeds due when the first claim is made count, so that a feed checked in this run and
    due again soon (a short interval, a quick retry) waits for the next run. Stops when nothing
    due is left unclaimed or ``limit`` feeds were claimed. Each lease starts at its own claim.
    """
    due_by = clock()
    claimed = 0
    while claimed < limit:
        feeds = await asyncio.to_thread(
            _claim,
            engine,
            now=clock(),
            due_by=due_by,
            limit=min(batch, limit - claimed),
            owner=owner,
            lease=lease,
        )
        if not feeds:
            return
        claimed += len(feeds)
        yield feeds


async def refresh_claimed(
    engine: Engine,
    refresh: Callable[[AsyncIterator[list[FeedRef]]], Awaitable[list[R]]],
    *,
    owner: str,
    lease: timedelta,
    batch: int,
    limit: int,
    clock: Callable[[], datetime],
) -> list[R]:
    """Let ``refresh`` take claimed due feeds batch by batch (see ``claim_batches``) and return
    its results; if it is cut short, every feed claimed and not recorded is given back at once."""
    claimed: list[int] = []

    async def batches() -> AsyncIterator[list[FeedRef]]:
        async for feeds in claim_batches(
            engine, owner=owner, lease=lease, batch=batch, limit=limit, clock=clock
        ):
            claimed.extend(feed.id for feed in feeds)
            yield feeds

    try:
        return await refresh(batches())
    except BaseException:
        # Cancelled (shutdown) or crashed: others may take these now, not when leases end.
        # Feeds already recorded hold no lease of ours any more; releasing them changes nothing.
        await asyncio.shield(asyncio.to_thread(release_feed_leases, engine, claimed, owner=owner))
        raise
