"""What monitor does, as the CLI and the scheduler both call it: set up, poll, send digests."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import Environment
from sqlalchemy import Engine, text
from sqlmodel import Session

from monitor.db import create_db_engine, upgrade_database
from monitor.delivery.dispatch import (
    SendReport,
    plan_digests_now,
    plan_due_channels,
    plan_due_digests,
    send_due_deliveries,
)
from monitor.delivery.mailer import open_transport
from monitor.delivery.render import load_templates
from monitor.delivery.subscriptions import (
    SubscriptionSync,
    get_subscriber,
    read_subscriptions_file,
    sync_subscriptions,
)
from monitor.errors import ConfigError, ExtractError, NotFoundError, UsageError
from monitor.ingest.pool import PreparePool, default_workers
from monitor.ingest.prune import PruneResult, RetentionRules, prune_archive
from monitor.ingest.refresh import (
    RefreshContext,
    RefreshResult,
    RefreshStatus,
    refresh_batches,
    refresh_feeds,
)
from monitor.ingest.sketch import StoryRules
from monitor.ingest.writer import BatchWriter
from monitor.models import utcnow
from monitor.pages.extract import ExtractedPage, ExtractRules, extract_page
from monitor.pages.fetch import fetch_page
from monitor.pages.prepare import PageOvertimeError, cpu_bound
from monitor.pages.queue import count_due_pages, page_host
from monitor.pages.run import PageContext, PageResult, refresh_pages
from monitor.reports import (
    DailyReport,
    RenderedReport,
    ReportEmail,
    ReportRules,
    build_report,
    render_report,
    report_email,
    report_environment,
    save_report,
)
from monitor.reports.mail import plan_report_deliveries
from monitor.settings import Settings
from monitor.sources.admission import admit_feed_url
from monitor.sources.feeds import (
    FeedImport,
    FeedRef,
    all_active_feeds,
    feed_refs,
    import_feeds,
)
from monitor.sources.fetch import build_client
from monitor.sources.guard import AddressPolicy
from monitor.sources.hosts import HostLimits
from monitor.sources.leases import count_due_feeds, refresh_claimed, worker_id
from monitor.sources.opml import read_opml
from monitor.sources.schedule import Bounds
from monitor.topics.catalog import (
    TopicSync,
    get_topic,
    list_topics,
    read_topics_file,
    sync_topics,
)
from monitor.topics.tagging import load_topic_set, retag_topic, topics_to_retag


def open_database(settings: Settings) -> Engine:
    """An engine on the configured database, migrated to the current schema."""
    engine = create_db_engine(settings.database.url, echo=settings.database.echo)
    upgrade_database(engine)
    return engine


@dataclass(frozen=True, slots=True)
class ConfigSync:
    """What bringing the database in line with ``config/`` changed."""

    feeds: FeedImport
    topics: TopicSync
    subscriptions: SubscriptionSync


def feed_admission(settings: Settings) -> Callable[[str], str]:
    """The check a feed URL passes to be added (the address guard, as fetch.allow_networks
    opens it): the same for the CLI, config/feeds.opml, OPML imports, the web and the API."""
    return partial(admit_feed_url, policy=AddressPolicy.from_strings(settings.fetch.allow_networks))


def channel_policy(settings: Settings) -> AddressPolicy:
    """The address guard channels pass (as ``channels.allow_networks`` opens it): when one is
    added, however, and on every connection of every send."""
    return AddressPolicy.from_strings(
        settings.channels.allow_networks, setting="channels.allow_networks"
    )


def config_paths(settings: Settings) -> list[Path]:
    """The companion files whose changes the service picks up."""
    files = settings.files
    return [settings.config_file(p) for p in (files.feeds, files.topics, files.subscriptions)]


def sync_config(engine: Engine, settings: Settings, *, now: datetime) -> ConfigSync:
    """Read feeds, topics and subscriptions from ``config/`` and apply them in one transaction.

    Every file is read and checked before anything is written, so a bad line changes nothing.
    """
    feeds_path = settings.config_file(settings.files.feeds)
    opml_feeds = []
    if feeds_path.exists():
        try:
            data = feeds_path.read_bytes()
        except OSError as exc:
            raise ConfigError(str(feeds_path), f"cannot read: {exc}") from None
        opml_feeds = read_opml(data, source=str(feeds_path))
    topics = read_topics_file(settings.config_file(settings.files.topics))
    with Session(engine) as session, session.begin():
        _one_sync_at_a_time(session)
        known = {topic.slug for topic in list_topics(session)} | {t.slug for t in topics}
        subscribers = read_subscriptions_file(
            settings.config_file(settings.files.subscriptions),
            topics=known,
            channel_policy=channel_policy(settings),
        )
        interval = settings.schedule.poll_interval
        feeds = import_feeds(
            session, opml_feeds, interval=interval, now=now, admit=feed_admission(settings)
        )
        topic_sync = sync_topics(session, topics, now=now)
        subscription_sync = sync_subscriptions(session, subscribers, now=now)
    return ConfigSync(feeds, topic_sync, subscription_sync)


# Any constant works; it only has to be the same in every monitor process sharing a database.
_CONFIG_SYNC_LOCK_KEY = 0x6D6F6E73


def _one_sync_at_a_time(session: Session) -> None:
    """Hold PostgreSQL's lock on config syncing until the transaction ends.

    Workers started together sync the same files; without it the second inserts the feeds the
    first is inserting, and stops on the unique URL. SQLite's write lock does this already.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CONFIG_SYNC_LOCK_KEY})


def story_rules(settings: Settings) -> StoryRules:
    """The story and canonical-link rules of the settings."""
    stories = settings.stories
    return StoryRules(
        window=stories.window,
        threshold=stories.threshold,
        lead_words=stories.lead_words,
        probe_words=stories.probe_words,
        min_words=stories.min_words,
        tracking_parameters=frozenset(stories.tracking_parameters),
    )


def prune_articles(
    engine: Engine,
    settings: Settings,
    *,
    now: datetime,
    older_than: timedelta | None = None,
    matched_older_than: timedelta | None = None,
) -> PruneResult:
    """Remove articles past retention (settings unless given), keeping their keys as tombstones."""
    retention = settings.retention
    rules = RetentionRules(
        older_than=older_than or retention.older_than,
        matched_older_than=max(
            matched_older_than or retention.matched_older_than, older_than or retention.older_than
        ),
        story_window=settings.stories.window,
    )
    return prune_archive(engine, rules, now=now)


async def poll_feeds(
    engine: Engine,
    settings: Settings,
    *,
    urls: list[str] | None = None,
    due_only: bool = False,
    on_start: Callable[[int], None] | None = None,
    on_done: Callable[[RefreshResult], None] | None = None,
    rng: random.Random | None = None,
    now: datetime | None = None,
    pool: PreparePool | None = None,
    force: bool = False,
    hosts: HostLimits | None = None,
) -> list[RefreshResult]:
    """Refresh the given feeds, the due ones, or every active feed, tagging what is new.

    ``now`` pins the clock (for tests); otherwise each refresh reads the time itself. ``pool``
    prepares fetched documents (a long-running service keeps one); without it, one is started
    for this poll as the settings say. A feed whose server asked us to wait (Retry-After) is
    not fetched before the wait is over, on demand either, unless ``force``: it is reported
    as deferred. ``hosts`` shares per-host slots with the process's article-page fetches. New
    articles' pages are queued (see ``fetch_pages``).
    """
    pinned = now
    clock: Callable[[], datetime] = utcnow if pinned is None else (lambda: pinned)
    now = clock()
    with Session(engine) as session:
        if urls:
            feeds = feed_refs(session, urls)
            missing = {u.strip() for u in urls} - {feed.url for feed in feeds}
            if missing:
                raise NotFoundError(f"no such feed: {', '.join(sorted(missing))} (add it first)")
        elif due_only:
            # Only counted here: claimed below a batch at a time, leased, so workers share them.
            feeds = []
            due = min(count_due_feeds(session, now=now), settings.schedule.feeds_per_tick)
        else:
            feeds = all_active_feeds(session)
        topics = load_topic_set(session)
    deferred = [] if force else [deferred_result(feed, now) for feed in feeds if waits(feed, now)]
    if deferred:
        waiting = {result.feed_id for result in deferred}
        feeds = [feed for feed in feeds if feed.id not in waiting]
    expected = due if due_only and not urls else len(feeds)
    if on_start is not None:
        on_start(expected)
    if not expected:
        return deferred
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(build_client(settings.fetch))
        if pool is None:
            pool = await stack.enter_async_context(prepare_pool(settings))
        writer = await stack.enter_async_context(
            BatchWriter(engine, batch=settings.fetch.write_batch)
        )
        ctx = RefreshContext(
            engine=engine,
            client=client,
            topics=topics,
            pool=pool,
            writer=writer,
            fetch=settings.fetch,
            max_backoff=settings.schedule.max_backoff,
            rng=rng or random.Random(),
            clock=clock,
            bounds=Bounds(settings.schedule.min_interval, settings.schedule.max_interval),
            default_interval=settings.schedule.poll_interval,
            jitter=settings.schedule.jitter,
            stories=story_rules(settings),
            pages=settings.pages,
            host_gates=hosts.gates if hosts is not None else None,
            backlog_after=settings.ingest.backlog_after,
        )
        concurrency, per_host = settings.fetch.concurrency, settings.fetch.per_host
        if feeds:
            return deferred + await refresh_feeds(
                feeds, ctx, concurrency=concurrency, per_host=per_host, on_done=on_done
            )
        stream = partial(
            refresh_batches, ctx=ctx, concurrency=concurrency, per_host=per_host, on_done=on_done
        )
        return await refresh_claimed(
            engine,
            stream,
            owner=worker_id(settings.schedule.worker_id),
            lease=settings.schedule.lease,
            batch=settings.fetch.concurrency,
            limit=settings.schedule.feeds_per_tick,
            clock=clock,
        )


def waits(feed: FeedRef, now: datetime) -> bool:
    """Whether the feed's server asked us to wait (Retry-After) and the wait is not over."""
    return feed.retry_after_until is not None and feed.retry_after_until > now


def deferred_result(feed: FeedRef, now: datetime) -> RefreshResult:
    """A feed left alone because its server asked us to wait, saying until when."""
    until = feed.retry_after_until or now
    return RefreshResult(
        feed.id,
        feed.url,
        RefreshStatus.DEFERRED,
        warning=f"the server asked to wait until {until:%Y-%m-%d %H:%M} UTC (Retry-After); "
        "--force polls it anyway",
    )


def host_limits(settings: Settings) -> HostLimits:
    """Per-host politeness for one process: feed and page fetches share its slots."""
    return HostLimits(
        settings.fetch.per_host, page_interval=settings.pages.per_host_interval.total_seconds()
    )


async def fetch_pages(
    engine: Engine,
    settings: Settings,
    *,
    pool: PreparePool | None = None,
    hosts: HostLimits | None = None,
    on_start: Callable[[int], None] | None = None,
    on_done: Callable[[PageResult], None] | None = None,
    now: datetime | None = None,
) -> list[PageResult]:
    """Fetch every due article page, extract its body, store it and retag on the full text.

    ``pool`` and ``hosts`` are the process's (the service keeps them); without them, this run
    starts its own. ``now`` pins the clock (for tests).
    """
    if not settings.pages.enabled:
        return []
    pinned = now
    clock: Callable[[], datetime] = utcnow if pinned is None else (lambda: pinned)
    with Session(engine) as session:
        due = count_due_pages(session, now=clock())
        topics = load_topic_set(session)
    if on_start is not None:
        on_start(due)
    if not due:
        return []
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(build_client(settings.fetch))
        if pool is None:
            pool = await stack.enter_async_context(prepare_pool(settings))
        writer = await stack.enter_async_context(
            BatchWriter(engine, batch=settings.fetch.write_batch)
        )
        ctx = PageContext(
            engine=engine,
            client=client,
            pool=pool,
            writer=writer,
            hosts=hosts or host_limits(settings),
            topics=topics,
            pages=settings.pages,
            fetch=settings.fetch,
            stories=story_rules(settings),
            clock=clock,
            gate=asyncio.Semaphore(settings.pages.concurrency),
        )
        return await refresh_pages(
            ctx,
            owner=worker_id(settings.schedule.worker_id),
            lease=settings.schedule.lease,
            on_done=on_done,
        )


@dataclass(frozen=True, slots=True)
class Extraction:
    """What ``monitor extract`` found: the page's text and metadata, and where it came from."""

    page: ExtractedPage
    url: str
    source: str  # the URL fetched or the file read


async def extract_article(settings: Settings, source: str, *, url: str = "") -> Extraction:
    """Extract the article of a page, fetched from ``source`` (an http(s) URL, through the
    guarded client) or read from a file; ``url`` is the page's address when it is a file.

    Raises ExtractError, FetchError or UsageError, saying what went wrong.
    """
    if page_host(source) is not None:
        async with build_client(settings.fetch) as client:
            fetched = await fetch_page(
                client,
                source,
                max_bytes=settings.pages.max_bytes,
                deadline=settings.fetch.timeout.total_seconds(),
            )
        body, content_type, address = fetched.body, fetched.content_type, fetched.url
    else:
        path = Path(source)
        try:
            with path.open("rb") as handle:
                body = handle.read(settings.pages.max_bytes + 1)
        except OSError as exc:
            raise UsageError(f"cannot read {source}: {exc.strerror or exc}") from None
        if len(body) > settings.pages.max_bytes:
            limit = settings.pages.max_bytes
            raise UsageError(f"{source} is larger than pages.max_bytes ({limit:,} bytes)")
        content_type, address = None, url
    rules = ExtractRules(
        min_chars=settings.pages.min_chars, max_chars=settings.pages.max_body_chars
    )
    try:
        with cpu_bound(settings.pages.extract_timeout.total_seconds()):
            page = extract_page(body, url=address, content_type=content_type, rules=rules)
    except PageOvertimeError:
        raise ExtractError(address, "took too long; given up") from None
    return Extraction(page, address, source)


def prepare_pool(settings: Settings) -> PreparePool:
    """The pool that parses, sketches and tags fetched feeds, sized as the settings say."""
    processes = settings.fetch.parse_processes
    return PreparePool(default_workers() if processes is None else processes)


async def send_digests(
    engine: Engine,
    settings: Settings,
    *,
    scheduled: bool,
    email: str | None = None,
    now: datetime | None = None,
    env: Environment | None = None,
) -> SendReport:
    """Plan digests (those due, instant ones included, or one per subscriber now) and send
    every pending delivery.

    ``now`` pins the clock (for tests); otherwise sending reads the time as it goes, so the
    leases of a long batch are measured from when each claim is made. ``env``: the templates
    to render with (the service keeps its own); without it they are loaded and checked now.
    """
    pinned = now
    now = now or utcnow()
    subscriber_id = None
    if email is not None:
        with Session(engine) as session:
            subscriber = get_subscriber(session, email)
        if subscriber is None:
            raise NotFoundError(f"no subscriber {email!r} (see config/subscriptions.yaml)")
        subscriber_id = subscriber.id
    if scheduled:
        plan_due_digests(engine, settings, now=now)
    else:
        plan_digests_now(engine, settings, now=now, email=email)
        if email is None:
            # Channels keep their own schedule: what is due for them goes now too.
            plan_due_channels(engine, settings, now=now)
    env = env or load_templates(settings)
    async with open_transport(settings.mail) as transport:
        return await send_due_deliveries(
            engine, settings, transport, env, now=pinned, subscriber_id=subscriber_id
        )


def retag_pending_topics(engine: Engine, settings: Settings, *, now: datetime) -> dict[str, int]:
    """Retag stored articles of the recent window for every topic whose query changed.

    Each topic is retagged in its own transaction; returns matches per retagged topic slug.
    """
    since = now - settings.topics.retag_window
    with Session(engine) as session:
        pending = [topic.slug for topic in topics_to_retag(session)]
    done: dict[str, int] = {}
    for slug in pending:
        with Session(engine) as session, session.begin():
            topic = get_topic(session, slug)
            if topic is None or topic.tagged_version == topic.version:
                continue  # another process got there first
            done[slug] = retag_topic(session, topic, since=since, now=now)
    return done


@dataclass(frozen=True, slots=True)
class BuiltReport:
    """A daily report as built and stored, with the e-mail the reviewers are to get."""

    report: DailyReport
    rendered: RenderedReport
    email: ReportEmail
    # Deliveries to reviewers written to the outbox by this build (0 when already planned).
    planned: int = 0


def last_full_day(now: datetime, timezone: str) -> date:
    """The latest local day that is over at ``now``: the day a report covers by default."""
    return now.astimezone(ZoneInfo(timezone)).date() - timedelta(days=1)


def build_daily_report(
    engine: Engine, settings: Settings, *, day: date, now: datetime, email: bool = False
) -> BuiltReport:
    """Build, render and store the report of local ``day``; building it again replaces it.

    With ``email``, a delivery to each reviewer is written to the outbox in the same
    transaction (once per reviewer and day, however often the day is built); sending is the
    outbox's job (``send_outbox``, or the service's next digest tick).
    """
    rules = ReportRules.from_settings(settings.reports)
    env = report_environment(settings.config_file(settings.files.templates))
    with Session(engine) as session, session.begin():
        report = build_report(session, day=day, rules=rules, now=now)
        rendered = render_report(report, env)
        save_report(session, report=report, rendered=rendered)
        planned = plan_report_deliveries(session, settings, day=day, now=now) if email else []
    return BuiltReport(
        report, rendered, report_email(rendered, settings.reports.reviewers), len(planned)
    )


async def send_outbox(
    engine: Engine, settings: Settings, *, env: Environment | None = None
) -> SendReport:
    """Send every due delivery of the outbox (digests and reports), planning nothing."""
    env = env or load_templates(settings)
    async with open_transport(settings.mail) as transport:
        return await send_due_deliveries(engine, settings, transport, env)
