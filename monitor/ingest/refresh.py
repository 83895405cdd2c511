"""Refresh a feed from start to end: fetch, parse, store the new articles, tag them, record."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

import httpx
from sqlalchemy import Engine
from sqlmodel import Session

from monitor.errors import FeedError
from monitor.ingest.store import save_new_articles
from monitor.models import utcnow
from monitor.settings import FetchSettings
from monitor.sources import parse
from monitor.sources.feeds import CheckOutcome, FeedRef, record_failure, record_success
from monitor.sources.fetch import FetchedFeed, fetch_feed
from monitor.topics.matcher import Matcher
from monitor.topics.tagging import save_matches, tag_articles

log = logging.getLogger(__name__)


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


async def refresh_feed(feed: FeedRef, ctx: RefreshContext) -> RefreshResult:
    """Refresh one feed. This is the ONE place that catches every per-feed error."""
    now = ctx.clock()
    try:
        fetched = await fetch_feed(
            ctx.client,
            feed.url,
            etag=feed.etag,
            last_modified=feed.last_modified,
            max_bytes=ctx.fetch.max_bytes,
            deadline=ctx.fetch.timeout.total_seconds(),
        )
        if fetched.not_modified:
            return await asyncio.to_thread(_record_unchanged, ctx, feed, fetched, now, None)
        body_hash = fetched.body_hash
        if body_hash == feed.body_hash:
            # Some servers' validators lie: the bytes are what tells us nothing changed.
            return await asyncio.to_thread(_record_unchanged, ctx, feed, fetched, now, body_hash)
        parsed = await asyncio.to_thread(
            parse.parse_feed, fetched.body, url=fetched.url, content_type=fetched.content_type
        )
        return await asyncio.to_thread(_ingest, ctx, feed, fetched, parsed, now)
    except FeedError as exc:
        log.warning("feed failed feed_id=%s feed_url=%s error=%s", feed.id, feed.url, exc.reason)
        return await _fail(ctx, feed, exc.reason, now)
    except Exception as exc:  # a bug or a database fault must not stop the other feeds
        log.exception("feed refresh crashed feed_id=%s feed_url=%s", feed.id, feed.url)
        return await _fail(ctx, feed, f"internal error: {type(exc).__name__}: {exc}", now)


def _ingest(
    ctx: RefreshContext,
    feed: FeedRef,
    fetched: FetchedFeed,
    parsed: parse.ParsedFeed,
    now: datetime,
) -> RefreshResult:
    with Session(ctx.engine) as session, session.begin():
        articles = save_new_articles(session, feed_id=feed.id, entries=parsed.entries, now=now)
        tags = tag_articles(
            ctx.matcher, articles, feed_title=parsed.title or feed.title, feed_url=feed.url
        )
        matches = save_matches(session, tags, now=now)
        outcome = CheckOutcome(
            etag=fetched.etag,
            last_modified=fetched.last_modified,
            body_hash=fetched.body_hash,
            title=parsed.title,
            site_url=parsed.site_url,
        )
        record_success(session, feed, outcome, now=now, rng=ctx.rng)
    if parsed.warning:
        log.warning(
            "feed is malformed feed_id=%s feed_url=%s warning=%s", feed.id, feed.url, parsed.warning
        )
    log.info(
        "feed refreshed feed_id=%s feed_url=%s new=%d matches=%d",
        feed.id,
        feed.url,
        len(articles),
        matches,
    )
    return RefreshResult(
        feed.id, feed.url, RefreshStatus.UPDATED, len(articles), matches, warning=parsed.warning
    )


def _record_unchanged(
    ctx: RefreshContext, feed: FeedRef, fetched: FetchedFeed, now: datetime, body_hash: str | None
) -> RefreshResult:
    with Session(ctx.engine) as session, session.begin():
        outcome = CheckOutcome(etag=fetched.etag, last_modified=fetched.last_modified)
        record_success(session, feed, outcome, now=now, rng=ctx.rng)
    status = RefreshStatus.UNCHANGED if body_hash else RefreshStatus.NOT_MODIFIED
    return RefreshResult(feed.id, feed.url, status)


async def _fail(ctx: RefreshContext, feed: FeedRef, reason: str, now: datetime) -> RefreshResult:
    def record() -> None:
        with Session(ctx.engine) as session, session.begin():
            record_failure(session, feed, reason, now=now, max_backoff=ctx.max_backoff, rng=ctx.rng)

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
    on_done: Callable[[RefreshResult], None] | None = None,
) -> list[RefreshResult]:
    """Refresh ``feeds`` with at most ``concurrency`` at once; results in the order given."""
    gate = asyncio.Semaphore(concurrency)

    async def one(feed: FeedRef) -> RefreshResult:
        async with gate:
            result = await refresh_feed(feed, ctx)
        if on_done is not None:
            on_done(result)
        return result

    return list(await asyncio.gather(*(one(feed) for feed in feeds)))
