"""Feed leases on SQLite and PostgreSQL: claims are disjoint, expire, and end with the check."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from os import getpid
from socket import gethostname

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from monitor.models import Feed, FeedState
from monitor.sources.feeds import (
    CheckOutcome,
    FeedRef,
    add_feed,
    record_failure,
    record_success,
)
from monitor.sources.leases import (
    claim_batches,
    claim_due_feeds,
    count_due_feeds,
    refresh_claimed,
    release_feed_leases,
    worker_id,
)

NOW = datetime(2024, 9, 10, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)
INTERVAL = timedelta(minutes=30)


def add_feeds(engine: Engine, count: int, *, due: datetime = NOW) -> list[str]:
    """``count`` feeds due at ``due``, a minute apart (the first most overdue); their URLs."""
    urls = [f"https://news{i:02}.example/feed" for i in range(count)]
    with Session(engine) as session, session.begin():
        for i, url in enumerate(urls):
            add_feed(session, url=url, interval=INTERVAL, now=due + timedelta(minutes=i))
    return urls


def claim(
    engine: Engine, owner: str, *, now: datetime = NOW + timedelta(hours=1), limit: int = 100
) -> list[FeedRef]:
    """Claim in a transaction of its own, committed at once."""
    with Session(engine) as session, session.begin():
        return claim_due_feeds(session, now=now, limit=limit, owner=owner, lease=LEASE)


def leases(engine: Engine) -> dict[str, tuple[str | None, datetime | None]]:
    with Session(engine) as session:
        return {f.url: (f.lease_owner, f.lease_until) for f in session.exec(select(Feed))}


def test_a_claim_leases_the_most_overdue_feeds_to_its_owner(engine: Engine) -> None:
    urls = add_feeds(engine, 5)
    now = NOW + timedelta(hours=1)

    claimed = claim(engine, "w1", now=now, limit=3)

    assert [f.url for f in claimed] == urls[:3]
    assert {f.lease_owner for f in claimed} == {"w1"}
    held = leases(engine)
    assert [held[url] for url in urls] == [("w1", now + LEASE)] * 3 + [(None, None)] * 2


@pytest.mark.parametrize(
    ("state", "due_in", "claimable"),
    [
        (FeedState.ACTIVE, timedelta(0), True),
        (FeedState.ERRORING, -timedelta(minutes=1), True),
        (FeedState.DISABLED, -timedelta(minutes=1), False),
        (FeedState.ACTIVE, timedelta(seconds=1), False),
    ],
)
def test_only_due_feeds_not_disabled_are_claimed(
    engine: Engine, state: FeedState, due_in: timedelta, claimable: bool
) -> None:
    with Session(engine) as session, session.begin():
        feed, _ = add_feed(session, url="https://a.example/feed", interval=INTERVAL, now=NOW)
        feed.state, feed.next_check_at = state, NOW + due_in

    assert len(claim(engine, "w1", now=NOW)) == int(claimable)


def test_claims_in_turn_take_disjoint_feeds_until_none_is_left(engine: Engine) -> None:
    urls = add_feeds(engine, 7)

    first = claim(engine, "w1", limit=4)
    second = claim(engine, "w2", limit=4)
    third = claim(engine, "w3", limit=4)

    assert [f.url for f in first] + [f.url for f in second] == urls
    assert third == []
    with Session(engine) as session:
        assert count_due_feeds(session, now=NOW + timedelta(hours=1)) == 0


def test_concurrent_claims_on_postgresql_skip_the_rows_another_is_claiming(
    engine: Engine,
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: its claims cannot overlap")
    urls = add_feeds(engine, 6)
    now = NOW + timedelta(hours=1)
    with Session(engine) as first, first.begin():
        mine = claim_due_feeds(first, now=now, limit=4, owner="w1", lease=LEASE)
        # w1 has not committed: its rows are locked, not yet leased; w2 skips them, not waits.
        with Session(engine) as second, second.begin():
            theirs = claim_due_feeds(second, now=now, limit=4, owner="w2", lease=LEASE)

    assert [f.url for f in mine] == urls[:4]
    assert [f.url for f in theirs] == urls[4:]


@pytest.mark.parametrize(
    ("later", "reclaimed"),
    [
        (LEASE - timedelta(seconds=1), False),  # still running
        (LEASE, True),  # ends now
        (LEASE + timedelta(minutes=1), True),  # ran out: its owner died
    ],
)
def test_a_lease_blocks_others_until_it_runs_out(
    engine: Engine, later: timedelta, reclaimed: bool
) -> None:
    [url] = add_feeds(engine, 1)
    claim(engine, "w1", now=NOW)

    again = claim(engine, "w2", now=NOW + later)

    assert [f.url for f in again] == ([url] if reclaimed else [])
    assert leases(engine)[url][0] == ("w2" if reclaimed else "w1")


def succeed(session: Session, feed: FeedRef, now: datetime) -> None:
    record_success(
        session, feed, CheckOutcome(etag=None, last_modified=None), now=now, rng=random.Random(1)
    )


def fail(session: Session, feed: FeedRef, now: datetime) -> None:
    record_failure(
        session, feed, "boom", now=now, max_backoff=timedelta(hours=1), rng=random.Random(1)
    )


RECORDS: list[Callable[[Session, FeedRef, datetime], None]] = [succeed, fail]


@pytest.mark.parametrize("record", RECORDS)
def test_recording_the_check_ends_the_lease(
    engine: Engine, record: Callable[[Session, FeedRef, datetime], None]
) -> None:
    [url] = add_feeds(engine, 1)
    [feed] = claim(engine, "w1", now=NOW)

    with Session(engine) as session, session.begin():
        record(session, feed, NOW + timedelta(seconds=5))

    assert leases(engine)[url] == (None, None)
    with Session(engine) as session:
        row = session.exec(select(Feed)).one()
        assert row.next_check_at > NOW + timedelta(seconds=5)
        assert row.last_checked_at == NOW + timedelta(seconds=5)


@pytest.mark.parametrize("record", RECORDS)
def test_a_late_record_keeps_the_lease_of_the_worker_that_took_over(
    engine: Engine, record: Callable[[Session, FeedRef, datetime], None]
) -> None:
    [url] = add_feeds(engine, 1)
    [slow] = claim(engine, "w1", now=NOW)
    taken_at = NOW + LEASE + timedelta(seconds=1)
    claim(engine, "w2", now=taken_at)

    with Session(engine) as session, session.begin():
        record(session, slow, taken_at + timedelta(seconds=1))

    # w1's check is recorded, but w2 still holds the feed: nobody else may start on it.
    assert leases(engine)[url] == ("w2", taken_at + LEASE)
    with Session(engine) as session:
        assert session.exec(select(Feed)).one().last_checked_at == taken_at + timedelta(seconds=1)


@pytest.mark.parametrize("record", RECORDS)
def test_recording_an_unclaimed_check_leaves_leases_alone(
    engine: Engine, record: Callable[[Session, FeedRef, datetime], None]
) -> None:
    [url] = add_feeds(engine, 1)
    [claimed] = claim(engine, "w1", now=NOW)

    # `monitor poll --feed URL` refreshes a feed it did not claim.
    with Session(engine) as session, session.begin():
        record(session, replace(claimed, lease_owner=None), NOW + timedelta(seconds=1))

    assert leases(engine)[url] == ("w1", NOW + LEASE)


def test_release_gives_back_only_the_owners_leases(engine: Engine) -> None:
    urls = add_feeds(engine, 4)
    mine = claim(engine, "w1", limit=2)
    claim(engine, "w2", limit=2)

    release_feed_leases(engine, [f.id for f in mine] + [99], owner="w1")
    release_feed_leases(engine, [f.id for f in mine], owner="w3")

    held = leases(engine)
    assert [held[url][0] for url in urls] == [None, None, "w2", "w2"]


def test_batches_stop_at_the_limit_and_leave_feeds_due_later_alone(engine: Engine) -> None:
    add_feeds(engine, 5)  # due at NOW + 0..4 minutes
    times = iter([NOW + timedelta(minutes=2, seconds=30), *[NOW + timedelta(hours=1)] * 10])

    async def collect(limit: int) -> list[list[str]]:
        batches = claim_batches(
            engine, owner="w1", lease=LEASE, batch=2, limit=limit, clock=lambda: next(times)
        )
        return [[f.url.split(".")[0][-6:] for f in batch] async for batch in batches]

    # The first claim fixes which feeds count: those due by then (3), though time moves on.
    assert asyncio.run(collect(limit=10)) == [["news00", "news01"], ["news02"]]
    assert asyncio.run(collect(limit=1)) == [["news03"]]


def test_a_batch_cut_short_gives_its_leases_back(engine: Engine) -> None:
    urls = add_feeds(engine, 3)
    done: list[str] = []

    async def refresh(batches: AsyncIterator[list[FeedRef]]) -> list[str]:
        async for batch in batches:
            if done:
                raise asyncio.CancelledError  # the service stopping mid-run
            with Session(engine) as session, session.begin():
                for feed in batch:
                    succeed(session, feed, NOW + timedelta(hours=1))
            done.extend(feed.url for feed in batch)
        return done

    async def run() -> list[str]:
        return await refresh_claimed(
            engine,
            refresh,
            owner="w1",
            lease=LEASE,
            batch=2,
            limit=10,
            clock=lambda: NOW + timedelta(hours=1),
        )

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(run())

    assert done == urls[:2]
    assert set(leases(engine).values()) == {(None, None)}
    with Session(engine) as session:
        assert count_due_feeds(session, now=NOW + timedelta(hours=1)) == 1


@pytest.mark.parametrize(
    ("configured", "expected"), [("worker-7", "worker-7"), ("", f"{gethostname()}:{getpid()}")]
)
def test_worker_id(configured: str, expected: str) -> None:
    assert worker_id(configured) == expected


def ended_process() -> int:
    """The id of a process of this host that has just ended."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


@pytest.mark.parametrize(
    ("holder", "released"),
    [
        # A process of this host that has ended: its feeds are free at once.
        (lambda: f"{gethostname()}:{ended_process()}", True),
        # Still running (the process that runs the tests' parent), another host, this process,
        # a name set in the settings: left to expire.
        (lambda: f"{gethostname()}:{os.getppid()}", False),
        (lambda: f"elsewhere.example:{ended_process()}", False),
        (lambda: f"{gethostname()}:{getpid()}", False),
        (lambda: "worker-7", False),
    ],
)
def test_leases_of_a_process_of_this_host_that_ended_are_released_at_once(
    engine: Engine, holder: Callable[[], str], released: bool
) -> None:
    [url] = add_feeds(engine, 1)
    owner = holder()
    [taken] = claim(engine, owner)
    assert taken.lease_owner == owner

    again = claim(engine, "w2", now=NOW + timedelta(hours=1, minutes=1))

    assert [f.url for f in again] == ([url] if released else [])
