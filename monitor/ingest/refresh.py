"""Refresh a feed from start to end: fetch, prepare (parse, sketch, tag), store, record.

Fetching runs on the event loop; preparing runs in the process pool (``PreparePool``); what a
refresh writes goes through the ``BatchWriter``, in a transaction shared with other feeds'.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

import httpx
from sqlalchemy import Engine
from sqlmodel import Session

from monitor.errors import FeedError
from monitor.ingest.backlog import DEFAULT_BACKLOG_AFTER
from monitor.ingest.pool import PreparePool
from monitor.ingest.prepare import FeedDocument, PreparedFeed, TopicSet, Unreadable
from monitor.ingest.sketch import StoryRules
from monitor.ingest.store import save_new_articles
from monitor.ingest.writer import BatchWriter
from monitor.models import utcnow
from monitor.pages.queue import queue_pages
from monitor.settings import FetchSettings, PagesSettings
from monitor.sources import schedule
from monitor.sources.feeds import CheckOutcome, FeedRef, record_failure, record_success
from monitor.sources.fetch import FetchedFeed, FetchStatusError, fetch_feed
from monitor.topics.tagging import ArticleMatch, save_matches

log = logging.getLogger(__name__)
DEFAULT_BOUNDS = schedule.Bounds(timedelta(minutes=5), timedelta(days=1))


class RefreshStatus(StrEnum):
    """How a refresh ended."""

    UPDATED = "updated"
    NOT_MODIFIED = "not_modified"
    UNCHANGED = "unchanged"
    FAILED = "failed"
    # Not fetched: the server asked us to wait (Retry-After) and the wait is not over.
    DEFERRED = "deferred"


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
    """What every refresh in a run shares: database, HTTP client, topics, pool, settings."""

    engine: Engine
    client: httpx.AsyncClient
    topics: TopicSet
    pool: PreparePool
    writer: BatchWriter
    fetch: FetchSettings
    max_backoff: timedelta
    rng: random.Random = field(default_factory=random.Random)
    clock: Callable[[], datetime] = utcnow
    bounds: schedule.Bounds = field(default_factory=lambda: DEFAULT_BOUNDS)
    default_interval: timedelta = timedelta(minutes=15)
    jitter: float = schedule.JITTER_FRACTION
    stories: StoryRules = field(default_factory=StoryRules)
    # Article pages: queued for new articles of feeds that fetch them (None: none are).
    pages: PagesSettings | None = None
    # Per-host slots shared with other fetches of the process (article pages); None: this run's.
    host_gates: dict[str, asyncio.Semaphore] | None = None
    backlog_after: timedelta = DEFAULT_BACKLOG_AFTER


Slot = Callable[[], AbstractAsyncContextManager[object]]


async def refresh_feed(
    feed: FeedRef, ctx: RefreshContext, *, fetch_slot: Slot | None = None
) -> RefreshResult:
    """Refresh one feed and log one line saying how it went (status, new articles, duration).

    ``fetch_slot`` is held around the HTTP exchange only: preparing and writing happen after
    it is given back, so fetches never wait on parsing.
    """
    started = time.monotonic()
    result = await _refresh(feed, ctx, fetch_slot or nullcontext)
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


async def _refresh(feed: FeedRef, ctx: RefreshContext, fetch_slot: Slot) -> RefreshResult:
    """This is the ONE place that catches every per-feed error."""
    now = ctx.clock()
    # Now and then a fetch without validators, because some servers' validators lie.
    full = feed.last_full_fetch_at is None or now - feed.last_full_fetch_at >= (
        ctx.fetch.revalidate_every
    )
    try:
        async with fetch_slot():
            fetched = await fetch_feed(
                ctx.client,
                feed.url,
                etag=None if full else feed.etag,
                last_modified=None if full else feed.last_modified,
                max_bytes=ctx.fetch.max_bytes,
                deadline=ctx.fetch.timeout.total_seconds(),
            )
        if fetched.not_modified:
            return await ctx.writer.write(
                lambda session: _record_unchanged(session, ctx, feed, fetched, now, None, full)
            )
        body_hash = fetched.body_hash
        if body_hash == feed.body_hash:
            # Some servers' validators lie: the bytes are what tells us nothing changed.
            return await ctx.writer.write(
                lambda session: _record_unchanged(session, ctx, feed, fetched, now, body_hash, full)
            )
        document = FeedDocument(
            feed_id=feed.id,
            url=fetched.url,
            body=fetched.body,
            content_type=fetched.content_type,
            feed_title=feed.title,
            feed_url=feed.url,
        )
        prepared = await ctx.pool.prepare(document, ctx.topics, ctx.stories)
        if isinstance(prepared, Unreadable):
            if prepared.internal:
                log.error(
                    "feed preparation crashed feed_id=%s feed_url=%s\n%s",
                    feed.id,
                    feed.url,
                    prepared.details,
                )
            return await _fail(ctx, feed, prepared.reason, now)
        return await ctx.writer.write(
            lambda session: _ingest(session, ctx, feed, fetched, prepared, now, full)
        )
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
    session: Session,
    ctx: RefreshContext,
    feed: FeedRef,
    fetched: FetchedFeed,
    prepared: PreparedFeed,
    now: datetime,
    full: bool,
) -> RefreshResult:
    parsed = prepared.parsed
    hint = schedule.longest_hint(
        schedule.feed_hint(
            ttl=parsed.ttl,
            update_period=parsed.update_period,
            update_frequency=parsed.update_frequency,
        ),
        _http_hint(fetched, now),
    )
    rate = schedule.items_per_day([entry.published_at for entry in parsed.entries], now=now)
    articles = save_new_articles(
        session,
        feed_id=feed.id,
        entries=parsed.entries,
        now=now,
        rules=ctx.stories,
        sketches=prepared.sketches,
        keys=prepared.keys,
        first_poll=feed.last_success_at is None,
        backlog_after=ctx.backlog_after,
        languages=prepared.languages or None,
    )
    # Tagged in the pool by article key: only the new articles' hits are stored.
    tags = [
        ArticleMatch(article.id or 0, hit)
        for article in articles
        for hit in prepared.hits.get(article.key_hash, ())
    ]
    matches = save_matches(session, tags, now=now)
    if ctx.pages is not None and ctx.pages.enabled:
        queue_pages(
            session, articles, mode=feed.fetch_pages, auto_below=ctx.pages.auto_below, now=now
        )
    observed = schedule.Observations(
        current=feed.interval,
        default=ctx.default_interval,
        rate=rate,
        new_items=len(articles),
        listed_items=len(parsed.entries),
        first_check=feed.last_success_at is None,
        hint=hint,
        fixed=feed.fixed_interval,
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
        parsed=True,
        warning=parsed.warning,
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
    session: Session,
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
        fixed=feed.fixed_interval,
    )
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
    def record(session: Session) -> None:
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
        await ctx.writer.write(record)
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
    """Refresh ``feeds`` with at most ``concurrency`` fetches at once, and at most ``per_host`` at
    once to any one host; results in the order given.

    A feed's task is started only when there is room for it (see ``_Admission``): a task per feed
    up front, 10,000 of them waiting on the gates, cost the polling process some 35 MB.
    """
    refresher = _Refresher(ctx, concurrency=concurrency, per_host=per_host, on_done=on_done)
    results: list[RefreshResult | None] = [None] * len(feeds)
    hosts = [host_of(feed.url) for feed in feeds]
    admission = _Admission(hosts, max(1, concurrency) * 2, max(1, per_host))
    running: dict[asyncio.Task[RefreshResult], int] = {}
    try:
        while True:
            for index in admission.admit():
                running[asyncio.ensure_future(refresher.one(feeds[index]))] = index
            if not running:
                break
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                index = running.pop(task)
                admission.finished(index)
                results[index] = task.result()
    finally:
        for task in running:
            task.cancel()
    return [result for result in results if result is not None]


class _Admission:
    """Which feeds' tasks to start, first come first: at most ``room`` running in all (fetching,
    or preparing and writing what they fetched) and ``per_host`` of any one host's, so feeds
    of a busy host wait without holding room that others' could use."""

    def __init__(self, hosts: list[str], room: int, per_host: int) -> None:
        self.hosts = hosts
        self.room = room
        self.per_host = per_host
        self.pending: deque[int] = deque(range(len(hosts)))
        # Feeds passed over because their host had no slot, by host, in order.
        self.held: dict[str, deque[int]] = defaultdict(deque)
        self.on_host: dict[str, int] = defaultdict(int)
        # Hosts with held feeds and a slot free again.
        self.freed: deque[str] = deque()

    def admit(self) -> list[int]:
        """The feeds to start now (each counted as running until ``finished``)."""
        started: list[int] = []
        while self.freed and self.room > 0:
            host = self.freed.popleft()
            queue = self.held[host]
            while queue and self.room > 0 and self.on_host[host] < self.per_host:
                started.append(self._start(queue.popleft()))
            if not queue:
                del self.held[host]
            elif self.on_host[host] < self.per_host:  # out of room: this host comes first next
                self.freed.appendleft(host)
        while self.pending and self.room > 0:
            index = self.pending.popleft()
            host = self.hosts[index]
            if self.on_host[host] < self.per_host and host not in self.held:
                started.append(self._start(index))
            else:
                self.held[host].append(index)
        return started

    def finished(self, index: int) -> None:
        """A started feed is done: its room and its host's slot are free."""
        host = self.hosts[index]
        self.room += 1
        self.on_host[host] -= 1
        if host in self.held and host not in self.freed:
            self.freed.append(host)

    def _start(self, index: int) -> int:
        self.room -= 1
        self.on_host[self.hosts[index]] += 1
        return index


async def refresh_batches(
    batches: AsyncIterator[list[FeedRef]],
    ctx: RefreshContext,
    *,
    concurrency: int,
    per_host: int = 2,
    on_done: Callable[[RefreshResult], None] | None = None,
) -> list[RefreshResult]:
    """Refresh feeds as ``batches`` yields them, asking for the next batch as soon as there is
    room (at most twice ``concurrency`` feeds taken and unfinished), so a slow feed never holds
    the ones after it. Results in the order finished."""
    refresher = _Refresher(ctx, concurrency=concurrency, per_host=per_host, on_done=on_done)
    room = asyncio.Semaphore(concurrency * 2)
    running: set[asyncio.Task[RefreshResult]] = set()
    results: list[RefreshResult] = []

    def finished(task: asyncio.Task[RefreshResult]) -> None:
        running.discard(task)
        room.release()
        if not task.cancelled() and task.exception() is None:
            results.append(task.result())

    try:
        async for batch in batches:
            for feed in batch:
                await room.acquire()
                task = asyncio.create_task(refresher.one(feed))
                running.add(task)
                task.add_done_callback(finished)
        while running:
            await asyncio.gather(*running)
    finally:
        for task in running:
            task.cancel()
    return results


class _Refresher:
    """The limits one run shares: fetches at once, per host, and bodies in hand."""

    def __init__(
        self,
        ctx: RefreshContext,
        *,
        concurrency: int,
        per_host: int,
        on_done: Callable[[RefreshResult], None] | None,
    ) -> None:
        self.ctx = ctx
        self.per_host = per_host
        self.on_done = on_done
        self.gate = asyncio.Semaphore(concurrency)
        # Fetched bodies waiting to be prepared or written: bounded, so memory is too.
        self.in_hand = asyncio.Semaphore(concurrency * 2)
        self.hosts: dict[str, asyncio.Semaphore] = (
            ctx.host_gates if ctx.host_gates is not None else {}
        )

    async def one(self, feed: FeedRef) -> RefreshResult:
        """Refresh one feed within the limits."""
        host_gate = self.hosts.setdefault(host_of(feed.url), asyncio.Semaphore(self.per_host))
        holding = False

        @asynccontextmanager
        async def fetch_slot() -> AsyncIterator[None]:
            nonlocal holding
            # The host's gate first: a feed waiting for its host must not hold a global slot.
            # Then room for one more body in hand: fetching stops while the pool catches up.
            async with host_gate, self.gate:
                await self.in_hand.acquire()
                holding = True
                yield

        try:
            result = await refresh_feed(feed, self.ctx, fetch_slot=fetch_slot)
        finally:
            if holding:
                self.in_hand.release()
        if self.on_done is not None:
            self.on_done(result)
        return result


def host_of(url: str) -> str:
    """The host part of a feed URL, lower-cased (the URL itself if it has none)."""
    try:
        return httpx.URL(url).host.lower() or url
    except (httpx.InvalidURL, TypeError):
        return url
