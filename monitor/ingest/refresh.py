"""Refresh a feed from start to end: fetch, parse, store the new articles, tag them, record."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

import httpx
from sqlalchemy import Engine
from sqlmodel import Session

from monitor.errors import FeedError
from monitor.ingest.store import save_new_articles
from monitor.ingest.stories import StoryRules
from monitor.models import utcnow
from monitor.settings import FetchSettings
from monitor.sources import parse, schedule
from monitor.sources.feeds import CheckOutcome, FeedRef, record_failure, record_success
from monitor.sources.fetch import FetchedFeed, FetchStatusError, fetch_feed
from monitor.topics.matcher import Matcher
from monitor.topics.tagging import save_matches, tag_articles

log = logging.getLogger(__name__)
DEFAULT_BOUNDS = schedule.Bounds(timedelta(minutes=5), timedelta(days=1))


class RefreshStatus(StrEnum):
    """How a refresh ended."""

    UPDATED = "updated"
    NOT_MODIFIED = "not_modified"
    UNCHANGED = "unchanged"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class RefreshResult:
    """The one value a refresh returns."""

    feed_id: int
    feed_url: str
    status: RefreshStatus
    new_articles: int = 0
    matches: int = 0
    error: str | None = None
    warning: str | None = None


@dataclass(slots=True)
class RefreshContext:
    """What every refresh in a run shares: database, HTTP client, compiled topics, settings."""

    engine: Engine
    client: httpx.AsyncClient
    matcher: Matcher
    fetch: FetchSettings
    max_backoff: timedelta
    rng: random.Random = field(default_factory=random.Random)
    clock: Callable[[], datetime] = utcnow
    bounds: schedule.Bounds = field(default_factory=lambda: DEFAULT_BOUNDS)
    default_interval: timedelta = timedelta(minutes=15)
    jitter: float = schedule.JITTER_FRACTION
    stories: StoryRules = field(default_factory=StoryRules)


async def refresh_feed(feed: FeedRef, ctx: RefreshContext) -> RefreshResult:
    """Refresh one feed and log one line saying how it went (status, new articles, duration)."""
    started = time.monotonic()
    result = await _refresh(feed, ctx)
    duration = time.monotonic() - started
    if result.status is RefreshStatus.FAILED:
        log.warning(
            "feed failed feed_id=%s feed_url=%s status=%s new=0 duration=%.3fs error=%s",
            feed.id,
            feed.url,
            result.status,
            duration,
            result.error,
        )
    else:
        log.info(
            "feed refreshed feed_id=%s feed_url=%s new=%d matches=%d status=%s duration=%.3fs",
            feed.id,
            feed.url,
            result.new_articles,
            result.matches,
            result.status,
            duration,
        )
    return result


async def _refresh(feed: FeedRef, ctx: RefreshContext) -> RefreshResult:
    """This is the ONE place that catches every per-feed error."""
    now = ctx.clock()
    # Now and then a fetch without validators, because some servers' validators lie.
    full = feed.last_full_fetch_at is None or now - feed.last_full_fetch_at >= (
        ctx.fetch.revalidate_every
    )
    try:
        fetched = await fetch_feed(
            ctx.client,
            feed.url,
            etag=None if full else feed.etag,
            last_modified=None if full else feed.last_modified,
            max_bytes=ctx.fetch.max_bytes,
            deadline=ctx.fetch.timeout.total_seconds(),
        )
        if fetched.not_modified:
            return await asyncio.to_thread(_record_unchanged, ctx, feed, fetched, now, None, full)
        body_hash = fetched.body_hash
        if body_hash == feed.body_hash:
            # Some servers' validators lie: the bytes are what tells us nothing changed.
            return await asyncio.to_thread(
                _record_unchanged, ctx, feed, fetched, now, body_hash, full
            )
        parsed = await asyncio.to_thread(
            parse.parse_feed, fetched.body, url=fetched.url, content_type=fetched.content_type
        )
        return await asyncio.to_thread(_ingest, ctx, feed, fetched, parsed, now, full)
    except FetchStatusError as exc:
        retry_after = None
        if exc.retry_after is not None:
            retry_after = min(exc.retry_after, ctx.fetch.max_retry_after)
        reason = exc.reason
        if exc.gone:
            reason += ": the server says the feed is gone for good; disabled"
        return await _fail(ctx, feed, reason, now, retry_after=retry_after, disable=exc.gone)
    except FeedError as exc:
        return await _fail(ctx, feed, exc.reason, now)
    except Exception as exc:  # a bug or a database fault must not stop the other feeds
        log.exception("feed refresh crashed feed_id=%s feed_url=%s", feed.id, feed.url)
        return await _fail(ctx, feed, f"internal error: {type(exc).__name__}: {exc}", now)


def _http_hint(fetched: FetchedFeed, now: datetime) -> schedule.Hint | None:
    return schedule.http_hint(
        cache_control=fetched.cache_control, expires=fetched.expires, date=fetched.date, now=now
    )


def _ingest(
    ctx: RefreshContext,
    feed: FeedRef,
    fetched: FetchedFeed,
    parsed: parse.ParsedFeed,
    now: datetime,
    full: bool,
) -> RefreshResult:
    hint = schedule.longest_hint(
        schedule.feed_hint(
            ttl=parsed.ttl,
            update_period=parsed.update_period,
            update_frequency=parsed.update_frequency,
        ),
        _http_hint(fetched, now),
    )
    rate = schedule.items_per_day([entry.published_at for entry in parsed.entries], now=now)
    with Session(ctx.engine) as session, session.begin():
        articles = save_new_articles(
            session, feed_id=feed.id, entries=parsed.entries, now=now, rules=ctx.stories
        )
        tags = tag_articles(
            ctx.matcher, articles, feed_title=parsed.title or feed.title, feed_url=feed.url
        )
        matches = save_matches(session, tags, now=now)
        observed = schedule.Observations(
            current=feed.interval,
            default=ctx.default_interval,
            rate=rate,
            new_items=len(articles),
            listed_items=len(parsed.entries),
            first_check=feed.last_success_at is None,
            hint=hint,
        )
        outcome = CheckOutcome(
            etag=fetched.etag,
            last_modified=fetched.last_modified,
            body_hash=fetched.body_hash,
            title=parsed.title,
            site_url=parsed.site_url,
            planned=schedule.plan_interval(observed, ctx.bounds),
            items_per_day=rate,
            hint=hint,
            full_fetch=full,
            moved_to=fetched.moved_to,
        )
        record_success(session, feed, outcome, now=now, rng=ctx.rng, jitter=ctx.jitter)
    if parsed.warning:
        log.warning(
            "feed is malformed feed_id=%s feed_url=%s warning=%s", feed.id, feed.url, parsed.warning
        )
    return RefreshResult(
        feed.id, feed.url, RefreshStatus.UPDATED, len(articles), matches, warning=parsed.warning
    )


def _record_unchanged(
    ctx: RefreshContext,
    feed: FeedRef,
    fetched: FetchedFeed,
    now: datetime,
    body_hash: str | None,
    full: bool,
) -> RefreshResult:
    hint = schedule.longest_hint(_http_hint(fetched, now), feed.hint)
    observed = schedule.Observations(
        current=feed.interval,
        default=ctx.default_interval,
        rate=feed.items_per_day,
        first_check=feed.last_success_at is None,
        hint=hint,
    )
    with Session(ctx.engine) as session, session.begin():
        outcome = CheckOutcome(
            etag=fetched.etag,
            last_modified=fetched.last_modified,
            planned=schedule.plan_interval(observed, ctx.bounds),
            full_fetch=full,
            moved_to=fetched.moved_to,
        )
        record_success(session, feed, outcome, now=now, rng=ctx.rng, jitter=ctx.jitter)
    status = RefreshStatus.UNCHANGED if body_hash else RefreshStatus.NOT_MODIFIED
    return RefreshResult(feed.id, feed.url, status)


async def _fail(
    ctx: RefreshContext,
    feed: FeedRef,
    reason: str,
    now: datetime,
    *,
    retry_after: timedelta | None = None,
    disable: bool = False,
) -> RefreshResult:
    def record() -> None:
        with Session(ctx.engine) as session, session.begin():
            record_failure(
                session,
                feed,
                reason,
                now=now,
                max_backoff=ctx.max_backoff,
                rng=ctx.rng,
                retry_after=retry_after,
                disable=disable,
                jitter=ctx.jitter,
            )

    try:
        await asyncio.to_thread(record)
    except Exception:  # the database itself is failing; the next tick tries again
        log.exception("cannot record feed failure feed_id=%s feed_url=%s", feed.id, feed.url)
    return RefreshResult(feed.id, feed.url, RefreshStatus.FAILED, error=reason)


async def refresh_feeds(
    feeds: Sequence[FeedRef],
    ctx: RefreshContext,
    *,
    concurrency: int,
    per_host: int = 2,
    on_done: Callable[[RefreshResult], None] | None = None,
) -> list[RefreshResult]:
    """Refresh ``feeds`` with at most ``concurrency`` at once, and at most ``per_host`` at once
    to any one host; results in the order given."""
    gate = asyncio.Semaphore(concurrency)
    hosts: dict[str, asyncio.Semaphore] = {}

    async def one(feed: FeedRef) -> RefreshResult:
        host_gate = hosts.setdefault(host_of(feed.url), asyncio.Semaphore(per_host))
        # The host's gate first: a feed waiting for its host must not hold a global slot.
        async with host_gate, gate:
            result = await refresh_feed(feed, ctx)
        if on_done is not None:
            on_done(result)
        return result

    return list(await asyncio.gather(*(one(feed) for feed in feeds)))


def host_of(url: str) -> str:
    """The host part of a feed URL, lower-cased (the URL itself if it has none)."""
    try:
        return httpx.URL(url).host.lower() or url
    except (httpx.InvalidURL, TypeError):
        return url
