"""What monitor does, as the CLI and the scheduler both call it: set up, poll, send digests."""

from __future__ import annotations

import random
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, text
from sqlmodel import Session

from monitor.db import create_db_engine, upgrade_database
from monitor.delivery.dispatch import (
    SendReport,
    plan_digests_now,
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
from monitor.errors import ConfigError, NotFoundError
from monitor.ingest.pool import PreparePool, default_workers
from monitor.ingest.prune import PruneResult, RetentionRules, prune_archive
from monitor.ingest.refresh import (
    RefreshContext,
    RefreshResult,
    refresh_batches,
    refresh_feeds,
)
from monitor.ingest.sketch import StoryRules
from monitor.ingest.writer import BatchWriter
from monitor.models import utcnow
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
from monitor.sources.feeds import (
    FeedImport,
    all_active_feeds,
    feed_refs,
    import_feeds,
)
from monitor.sources.fetch import build_client
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
            settings.config_file(settings.files.subscriptions), topics=known
        )
        interval = settings.schedule.poll_interval
        feeds = import_feeds(session, opml_feeds, interval=interval, now=now)
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
) -> list[RefreshResult]:
    """Refresh the given feeds, the due ones, or every active feed, tagging what is new.

    ``now`` pins the clock (for tests); otherwise each refresh reads the time itself. ``pool``
    prepares fetched documents (a long-running service keeps one); without it, one is started
    for this poll as the settings say.
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
    expected = due if due_only and not urls else len(feeds)
    if on_start is not None:
        on_start(expected)
    if not expected:
        return []
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
            backlog_after=settings.ingest.backlog_after,
        )
        concurrency, per_host = settings.fetch.concurrency, settings.fetch.per_host
        if feeds:
            return await refresh_feeds(
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
) -> SendReport:
    """Plan digests (those due, instant ones included, or one per subscriber now) and send
    every pending delivery.

    ``now`` pins the clock (for tests); otherwise sending reads the time as it goes, so the
    leases of a long batch are measured from when each claim is made.
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
    env = load_templates(settings)
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


async def send_outbox(engine: Engine, settings: Settings) -> SendReport:
    """Send every due delivery of the outbox (digests and reports), planning nothing."""
    env = load_templates(settings)
    async with open_transport(settings.mail) as transport:
        return await send_due_deliveries(engine, settings, transport, env)
