"""Fetch the due article pages, extract their bodies, store them and retag on the full text.

``refresh_page`` does one page from start to end in a straight line (wait for the host's turn,
fetch, prepare in the pool, store) and is the ONE place that catches every per-page error: a
page that fails costs that page an attempt, never the run or the other pages. ``refresh_pages``
claims due pages a few at a time as there is room, each host's pages waiting on that host's
pace alone, until nothing due at its start is left.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

import httpx
from sqlalchemy import Engine
from sqlmodel import Session

from monitor.errors import ExtractError, FetchError
from monitor.ingest.pool import PreparePool
from monitor.ingest.prepare import TopicSet
from monitor.ingest.sketch import StoryRules
from monitor.ingest.writer import BatchWriter
from monitor.models import utcnow
from monitor.pages.extract import ExtractRules
from monitor.pages.fetch import FetchedPage, fetch_page
from monitor.pages.prepare import PageDocument, PagePrepared, PageUnreadable, prepare_page
from monitor.pages.queue import (
    PageJob,
    claim_due_pages,
    defer_page,
    expire_pages,
    record_page_failure,
    release_page_leases,
)
from monitor.pages.store import StoredPage, store_page
from monitor.settings import FetchSettings, PagesSettings
from monitor.sources.fetch import FetchStatusError
from monitor.sources.hosts import HostLimits, HostPausedError

log = logging.getLogger(__name__)
# Pages of one host claimed and not fetched yet, per process: enough to keep its pace, few
# enough that a claim never takes a site's whole backlog from other workers.
HOST_BACKLOG = 4
# Fetch failures retrying cannot mend, by the fetcher's messages: the address guard (not a
# refused connection, which may pass), the size cap, non-http redirects, loops.
_HOPELESS = (
    "(see fetch.allow_networks)",
    "byte cap",
    "only http and https",
    "redirect loop",
    "more than 5 redirects",
)


class PageOutcome(StrEnum):
    """How one page's turn ended."""

    STORED = "stored"
    RETRYING = "retrying"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class PageResult:
    """The one value a page's turn returns."""

    article_id: int
    url: str
    outcome: PageOutcome
    reason: str | None = None
    method: str = ""
    chars: int = 0
    new_matches: int = 0


@dataclass(slots=True)
class PageContext:
    """What every page of a run shares: database, HTTP client, pool, hosts, topics, settings."""

    engine: Engine
    client: httpx.AsyncClient
    pool: PreparePool
    writer: BatchWriter
    hosts: HostLimits
    topics: TopicSet
    pages: PagesSettings
    fetch: FetchSettings
    stories: StoryRules = field(default_factory=StoryRules)
    clock: Callable[[], datetime] = utcnow
    gate: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(8))
    # Retries after a worker died go one at a time, so the page that kills it is the one told.
    solo: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def extract_rules(self) -> ExtractRules:
        """The extraction rules of the settings."""
        return ExtractRules(min_chars=self.pages.min_chars, max_chars=self.pages.max_body_chars)


async def refresh_page(
    job: PageJob, ctx: PageContext, *, on_fetched: Callable[[], None] | None = None
) -> PageResult:
    """Fetch, extract, store and retag one page; log one line saying how it went.

    ``on_fetched`` is called once the host is done with (the page fetched, or not).
    """
    started = time.monotonic()
    result = await _refresh(job, ctx, on_fetched or (lambda: None))
    duration = time.monotonic() - started
    if result.outcome is PageOutcome.STORED:
        log.info(
            "page stored article_id=%s url=%s method=%s chars=%d new_matches=%d duration=%.3fs",
            job.article_id,
            job.url,
            result.method,
            result.chars,
            result.new_matches,
            duration,
        )
    else:
        log.warning(
            "page %s article_id=%s url=%s attempts=%d duration=%.3fs reason=%s",
            "failed" if result.outcome is PageOutcome.FAILED else "will retry",
            job.article_id,
            job.url,
            job.attempts + 1,
            duration,
            result.reason,
        )
    return result


async def _refresh(job: PageJob, ctx: PageContext, on_fetched: Callable[[], None]) -> PageResult:
    """This is the ONE place that catches every per-page error."""
    try:
        try:
            async with ctx.hosts.page_slot(job.host), ctx.gate:
                fetched = await fetch_page(
                    ctx.client,
                    job.url,
                    max_bytes=ctx.pages.max_bytes,
                    deadline=ctx.fetch.timeout.total_seconds(),
                )
        finally:
            on_fetched()
        prepared = await _prepare(ctx, _document(job, fetched))
        if isinstance(prepared, PageUnreadable):
            if prepared.internal:
                log.error("page extraction crashed url=%s\n%s", job.url, prepared.details)
            return await _fail(ctx, job, prepared.reason, permanent=prepared.permanent)
        topic_ids = {topic_id for topic_id, *_rest in ctx.topics.topics}
        now = ctx.clock()
        stored: StoredPage | None = await ctx.writer.write(
            lambda session: store_page(
                session,
                job,
                prepared,
                final_url=fetched.url,
                size=len(fetched.body),
                topic_ids=topic_ids,
                rules=ctx.stories,
                now=now,
            )
        )
        page = prepared.page
        return PageResult(
            job.article_id,
            job.url,
            PageOutcome.STORED,
            method=page.method,
            chars=len(page.text),
            new_matches=stored.new_matches if stored else 0,
        )
    except HostPausedError as exc:
        until = ctx.clock() + timedelta(seconds=exc.seconds)
        await ctx.writer.write(lambda session: defer_page(session, job, until=until))
        return PageResult(job.article_id, job.url, PageOutcome.RETRYING, reason=str(exc))
    except FetchStatusError as exc:
        retry_after = None
        if exc.retry_after is not None:
            retry_after = min(exc.retry_after, ctx.fetch.max_retry_after)
            ctx.hosts.pause(job.host, retry_after.total_seconds())
        return await _fail(
            ctx,
            job,
            exc.reason,
            permanent=exc.gone,
            retry_after=retry_after,
            http_status=exc.status,
        )
    except FetchError as exc:
        return await _fail(
            ctx, job, exc.reason, permanent=cannot_mend(exc.reason), http_status=exc.status
        )
    except ExtractError as exc:
        return await _fail(ctx, job, exc.reason, permanent=True)
    except Exception as exc:  # a bug or a database fault must not stop the other pages
        log.exception("page refresh crashed article_id=%s url=%s", job.article_id, job.url)
        return await _fail(ctx, job, f"internal error: {type(exc).__name__}: {exc}")


def cannot_mend(reason: str) -> bool:
    """Whether retrying a fetch that failed for ``reason`` is pointless."""
    return any(marker in reason for marker in _HOPELESS)


def _document(job: PageJob, fetched: FetchedPage) -> PageDocument:
    return PageDocument(
        article_id=job.article_id,
        url=fetched.url,
        body=fetched.body,
        content_type=fetched.content_type,
        title=job.title,
        summary=job.summary,
        content=job.content,
        author=job.author,
        language=job.language,
        article_url=job.article_url,
        feed_title=job.feed_title,
        feed_url=job.feed_url,
    )


async def _prepare(ctx: PageContext, document: PageDocument) -> PagePrepared:
    cpu = ctx.pages.extract_timeout.total_seconds()
    arguments = (document, ctx.topics, ctx.stories, ctx.extract_rules, cpu)
    # Past this the worker is stuck where its CPU limit does not reach (or there is no worker
    # process, and no limit at all): the page is given up, the run goes on.
    patience = cpu * 4 + 10
    try:
        return await asyncio.wait_for(ctx.pool.call(prepare_page, *arguments), patience)
    except TimeoutError:
        return PageUnreadable(
            document.article_id, f"extract: no result within {patience:g} s", permanent=True
        )
    except BrokenProcessPool:
        pass
    # A worker died: this page's or another's doing. Alone, this page tells.
    async with ctx.solo:
        try:
            return await asyncio.wait_for(ctx.pool.call(prepare_page, *arguments), patience)
        except (BrokenProcessPool, TimeoutError):
            log.error("a worker process died extracting url=%s", document.url)
            return PageUnreadable(
                document.article_id,
                "extract: the extractor's process died on this page",
                permanent=True,
                internal=True,
            )


async def _fail(
    ctx: PageContext,
    job: PageJob,
    reason: str,
    *,
    permanent: bool = False,
    retry_after: timedelta | None = None,
    http_status: int | None = None,
) -> PageResult:
    now = ctx.clock()

    def record(session: Session) -> bool:
        return record_page_failure(
            session,
            job,
            reason,
            now=now,
            max_attempts=ctx.pages.max_attempts,
            base_backoff=ctx.pages.retry_backoff,
            permanent=permanent,
            retry_after=retry_after,
            http_status=http_status,
        )

    given_up = permanent
    try:
        given_up = await ctx.writer.write(record)
    except Exception:  # the database itself is failing; the lease runs out, the page comes back
        log.exception("cannot record page failure article_id=%s url=%s", job.article_id, job.url)
    outcome = PageOutcome.FAILED if given_up else PageOutcome.RETRYING
    return PageResult(job.article_id, job.url, outcome, reason=reason)


def _claim(
    engine: Engine,
    *,
    now: datetime,
    due_by: datetime,
    limit: int,
    owner: str,
    lease: timedelta,
    busy_hosts: set[str],
) -> list[PageJob]:
    with Session(engine) as session, session.begin():
        return claim_due_pages(
            session,
            now=now,
            due_by=due_by,
            limit=limit,
            per_host=HOST_BACKLOG,
            owner=owner,
            lease=lease,
            busy_hosts=busy_hosts,
        )


def _expire(engine: Engine, *, now: datetime, max_age: timedelta) -> int:
    with Session(engine) as session, session.begin():
        return expire_pages(session, now=now, max_age=max_age)


async def refresh_pages(
    ctx: PageContext,
    *,
    owner: str,
    lease: timedelta,
    on_done: Callable[[PageResult], None] | None = None,
) -> list[PageResult]:
    """Claim and refresh every page due now, as room allows; results in the order finished.

    Only pages due when it starts count (a page retried later waits for a later run). If it is
    cut short, the leases of the pages claimed and not finished are given back at once.
    """
    started = ctx.clock()
    expired = await asyncio.to_thread(_expire, ctx.engine, now=started, max_age=ctx.pages.max_age)
    if expired:
        log.info("pages given up as too old pages=%d", expired)
    room = ctx.pages.concurrency * 2
    running: dict[asyncio.Task[PageResult], PageJob] = {}
    per_host: Counter[str] = Counter()
    results: list[PageResult] = []
    exhausted = False
    try:
        while True:
            free = room - len(running)
            if not exhausted and (free >= max(1, room // 4) or not running):
                busy = {host for host, count in per_host.items() if count >= HOST_BACKLOG}
                busy |= ctx.hosts.paused_hosts()
                jobs = await asyncio.to_thread(
                    _claim,
                    ctx.engine,
                    now=ctx.clock(),
                    due_by=started,
                    limit=free,
                    owner=owner,
                    lease=lease,
                    busy_hosts=busy,
                )
                for job in jobs:
                    per_host[job.host] += 1
                    done_fetching = _countdown(per_host, job.host)
                    task = asyncio.create_task(refresh_page(job, ctx, on_fetched=done_fetching))
                    running[task] = job
                # Nothing claimable beyond the busy hosts: claim again once one is done.
                exhausted = not jobs and not busy
                if jobs and len(running) < room:
                    continue
            if not running:
                break
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                running.pop(task)
                result = task.result()
                results.append(result)
                if on_done is not None:
                    on_done(result)
    except BaseException:
        for task in running:
            task.cancel()
        ids = [job.article_id for job in running.values()]

        def release(session: Session) -> None:
            release_page_leases(session, ids, owner=owner)

        await asyncio.shield(asyncio.to_thread(_in_transaction, ctx.engine, release))
        raise
    return results


def _countdown(per_host: Counter[str], host: str) -> Callable[[], None]:
    """A callback that takes one page off the host's count, once."""
    pending = [True]

    def done() -> None:
        if pending:
            pending.clear()
            per_host[host] -= 1

    return done


def _in_transaction(engine: Engine, job: Callable[[Session], None]) -> None:
    with Session(engine) as session, session.begin():
        job(session)
