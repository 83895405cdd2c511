"""A feed's life cycle through real refreshes from 127.0.0.1: statuses, backoff, moves, limits."""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from monitor.ingest.refresh import RefreshResult, RefreshStatus
from monitor.models import Feed, FeedState
from monitor.operations import poll_feeds
from monitor.settings import FetchSettings, ScheduleSettings, Settings
from monitor.sources.feeds import add_feed, retry_feeds
from tests.utils.feedserver import FeedServer

NOW = datetime(2024, 9, 10, 12, 0, tzinfo=UTC)
INTERVAL = timedelta(minutes=15)
LOCAL = ["127.0.0.0/8"]


def rss(*items: tuple[str, datetime], ttl: int | None = None) -> bytes:
    """An RSS document with these (guid, published) items."""
    parts = [
        f"<item><title>Item {guid}</title><link>https://example.com/{guid}</link>"
        f"<guid>https://example.com/{guid}</guid><pubDate>{format_datetime(when)}</pubDate></item>"
        for guid, when in items
    ]
    extra = f"<ttl>{ttl}</ttl>" if ttl else ""
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Feed</title>'
        f"<link>https://example.com/</link>{extra}{''.join(parts)}</channel></rss>"
    ).encode()


FEED = rss(("1", NOW - timedelta(hours=1)), ("2", NOW - timedelta(hours=2)))


def settings(**fetch: object) -> Settings:
    """Settings with the guard opened to 127.0.0.1."""
    return Settings(
        fetch=FetchSettings(allow_networks=LOCAL, **fetch),
        schedule=ScheduleSettings(poll_interval=INTERVAL, max_backoff=timedelta(hours=4)),
    )


def add(engine: Engine, *urls: str) -> None:
    with Session(engine) as session, session.begin():
        for url in urls:
            add_feed(session, url=url, interval=INTERVAL, now=NOW)


def poll(engine: Engine, at: datetime = NOW, config: Settings | None = None) -> list[RefreshResult]:
    return asyncio.run(
        poll_feeds(engine, config or settings(), now=at, rng=random.Random(3), due_only=True)
    )


def feed_row(engine: Engine, url: str | None = None) -> Feed:
    with Session(engine) as session:
        rows = session.exec(select(Feed)).all()
    return next(row for row in rows if url is None or row.url == url)


def test_feed_is_ingested_and_explained(engine: Engine, feed_server: FeedServer) -> None:
    add(engine, feed_server.add("/feed.xml", FEED))

    [result] = poll(engine)

    assert (result.status, result.new_articles) == (RefreshStatus.UPDATED, 2)
    row = feed_row(engine)
    assert row.state == FeedState.ACTIVE
    assert row.items_per_day == pytest.approx(2 / (2 / 24))
    assert "publishes about 24.0 items a day" in row.interval_reason
    assert row.interval_seconds == 3600
    assert row.last_full_fetch_at == NOW


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "7200"}, timedelta(hours=2)),
        ({"Retry-After": format_datetime(NOW + timedelta(hours=3), usegmt=True)}, None),
        ({"Retry-After": "864000"}, timedelta(hours=6)),  # ten days, capped at max_retry_after
    ],
    ids=["seconds", "http-date", "capped"],
)
@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(
    engine: Engine,
    feed_server: FeedServer,
    status: int,
    headers: dict[str, str],
    expected: timedelta | None,
) -> None:
    url = feed_server.add("/busy.xml", b"slow down", status=status, headers=headers)
    add(engine, url)

    [result] = poll(engine)

    assert result.status == RefreshStatus.FAILED
    assert f"HTTP {status}" in (result.error or "")
    row = feed_row(engine)
    assert row.state == FeedState.ERRORING
    if expected is None:
        # An HTTP date is measured from the real clock, not the test's pinned NOW: the wait
        # is at least what the date leaves, and within the cap.
        assert NOW < row.next_check_at <= NOW + timedelta(hours=6)
    else:
        assert row.next_check_at == NOW + expected


def test_410_disables_the_feed_with_the_reason(engine: Engine, feed_server: FeedServer) -> None:
    url = feed_server.add("/gone.xml", b"gone", status=410, validators=False)
    add(engine, url)

    poll(engine)
    again = poll(engine, NOW + timedelta(days=30))

    row = feed_row(engine)
    assert row.state == FeedState.DISABLED
    assert "HTTP 410" in (row.disabled_reason or "")
    assert "gone for good" in (row.disabled_reason or "")
    assert again == []
    assert feed_server.hits["/gone.xml"] == 1


@pytest.mark.parametrize(
    ("status", "moves"), [(301, True), (308, True), (302, False), (307, False)]
)
def test_permanent_redirect_updates_the_stored_url(
    engine: Engine, feed_server: FeedServer, status: int, moves: bool
) -> None:
    new = feed_server.add("/new.xml", FEED)
    old = feed_server.add(
        "/old.xml", b"", status=status, validators=False, headers={"Location": new}
    )
    add(engine, old)

    [result] = poll(engine)

    assert result.status == RefreshStatus.UPDATED
    assert feed_row(engine).url == (new if moves else old)


def test_permanent_redirect_is_not_taken_when_another_feed_has_the_url(
    engine: Engine, feed_server: FeedServer
) -> None:
    new = feed_server.add("/new.xml", FEED)
    old = feed_server.add("/old.xml", b"", status=301, validators=False, headers={"Location": new})
    add(engine, old, new)

    poll(engine)

    with Session(engine) as session:
        assert sorted(row.url for row in session.exec(select(Feed))) == sorted([old, new])


def test_a_run_of_500s_backs_off_and_shows_erroring(
    engine: Engine, feed_server: FeedServer
) -> None:
    add(engine, feed_server.add("/broken.xml", b"oops", status=500, validators=False))
    waits = []
    at = NOW
    for _ in range(6):
        [result] = poll(engine, at)
        assert result.status == RefreshStatus.FAILED
        row = feed_row(engine)
        waits.append(row.next_check_at - at)
        at = row.next_check_at

    assert row.state == FeedState.ERRORING
    assert (row.error_count, row.last_error) == (6, "fetch: HTTP 500 Internal Server Error")
    # 15 m, 30 m, 1 h, 2 h, then the 4 h cap; each give or take 10 %.
    for wait, minutes in zip(waits, [15, 30, 60, 120, 240, 240], strict=True):
        assert timedelta(minutes=minutes * 0.9) <= wait <= timedelta(minutes=minutes * 1.1)

    with Session(engine) as session, session.begin():
        [retried] = retry_feeds(session, all_erroring=True, now=at)
        assert (retried.state, retried.error_count, retried.next_check_at) == (
            FeedState.ACTIVE,
            0,
            at,
        )


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (b"<!doctype html><html><body>Hi</body></html>", "text/html", 200, "an HTML page"),
        (
            b"<!DOCTYPE html><html><head><title>Just a moment...</title></head></html>",
            "text/html",
            200,
            "an HTML page",
        ),
        (b"<html><title>Attention Required!</title></html>", "text/html", 403, "HTTP 403"),
        (b"", "application/rss+xml", 200, "not a feed (empty body)"),
        (b"   \n", "application/rss+xml", 200, "not a feed (empty body)"),
        (b"just some text", "text/plain", 200, "not a feed"),
    ],
    ids=["html", "challenge-200", "challenge-403", "empty", "blank", "text"],
)
def test_not_a_feed_is_an_error_not_zero_items(
    engine: Engine,
    feed_server: FeedServer,
    body: bytes,
    content_type: str,
    status: int,
    message: str,
) -> None:
    add(engine, feed_server.add("/x", body, content_type=content_type, status=status))

    [result] = poll(engine)

    assert result.status == RefreshStatus.FAILED
    assert message in (result.error or "")
    assert feed_row(engine).state == FeedState.ERRORING


def test_validators_are_left_out_once_a_day(engine: Engine, feed_server: FeedServer) -> None:
    path = "/feed.xml"
    add(engine, feed_server.add(path, FEED))
    moments = [NOW, NOW + timedelta(hours=2), NOW + timedelta(hours=25)]

    statuses = [poll(engine, at)[0].status for at in moments]

    sent = [headers.get("if-none-match") for _, headers in feed_server.requests]
    assert sent == [None, feed_server.routes[path].etag, None]
    assert statuses == [
        RefreshStatus.UPDATED,
        RefreshStatus.NOT_MODIFIED,
        RefreshStatus.UNCHANGED,  # full fetch, same bytes: recorded, not parsed
    ]
    assert feed_row(engine).last_full_fetch_at == moments[2]


def test_ttl_hint_sets_the_interval(engine: Engine, feed_server: FeedServer) -> None:
    # 24 items a day would mean hourly checks; the feed asks for three hours.
    items = (("1", NOW - timedelta(hours=1)), ("2", NOW - timedelta(hours=2)))
    add(engine, feed_server.add("/feed.xml", rss(*items, ttl=180)))

    poll(engine)

    row = feed_row(engine)
    assert row.interval_seconds == 3 * 3600
    assert (row.hint_seconds, row.hint_source) == (3 * 3600, "RSS ttl")
    assert "(RSS ttl)" in row.interval_reason
    assert NOW + timedelta(hours=2.7) <= row.next_check_at <= NOW + timedelta(hours=3.3)


@pytest.mark.parametrize(("per_host", "most"), [(2, 2), (1, 1), (6, 6)])
def test_per_host_limit(engine: Engine, feed_server: FeedServer, per_host: int, most: int) -> None:
    urls = [
        feed_server.add(f"/{n}.xml", FEED, chunk_size=len(FEED) // 2, chunk_delay=0.3)
        for n in range(6)
    ]
    add(engine, *urls)

    results = poll(engine, config=settings(per_host=per_host))

    assert all(r.status == RefreshStatus.UPDATED for r in results)
    assert feed_server.max_in_flight == most


def test_one_structured_log_line_per_refresh(
    engine: Engine, feed_server: FeedServer, caplog: pytest.LogCaptureFixture
) -> None:
    good = feed_server.add("/feed.xml", FEED)
    bad = feed_server.add("/bad.xml", b"", status=500, validators=False)
    add(engine, good, bad)

    with caplog.at_level(logging.INFO, logger="monitor.ingest.refresh"):
        poll(engine)

    lines = [r.getMessage() for r in caplog.records if r.name == "monitor.ingest.refresh"]
    assert len(lines) == 2
    [ok] = [line for line in lines if f"feed_url={good} " in line]
    [failed] = [line for line in lines if f"feed_url={bad} " in line]
    assert ok.startswith("feed refreshed feed_id=1 ")
    assert " new=2 " in ok
    assert " status=updated " in ok
    assert " duration=" in ok
    assert " status=failed " in failed
    assert "error=fetch: HTTP 500" in failed


def test_a_slow_feed_does_not_hold_the_feeds_claimed_after_it(
    engine: Engine, feed_server: FeedServer
) -> None:
    slow = feed_server.add("/slow.xml", FEED, chunk_size=len(FEED) // 2, chunk_delay=1.5)
    fast = [feed_server.add(f"/{n}.xml", FEED) for n in range(8)]
    add(engine, slow, *fast)

    # Two fetches at once, claimed two at a time: the slow feed is in the first claim.
    results = poll(engine, config=settings(concurrency=2, per_host=2))

    assert all(r.status == RefreshStatus.UPDATED for r in results)
    # Results come in the order finished: every later claim went by while the slow one ran.
    assert [r.feed_url for r in results][-1] == slow
    assert {r.feed_url for r in results[:-1]} == set(fast)
