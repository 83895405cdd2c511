"""The feed table: adding feeds, picking the due ones, recording how each check went."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
from sqlmodel import Session, col, select, update

from monitor.errors import NotFoundError, UsageError
from monitor.models import POLLED_STATES, Feed, FeedState, FetchPages
from monitor.settings import parse_duration
from monitor.sources import schedule
from monitor.sources.opml import OpmlFeed

MAX_ERROR_LENGTH = 1000
# How a pause reads as a disabled feed's reason: "paused by ada at 2024-09-09 12:00 UTC".
PAUSED = "paused by "
# Characters no host name may contain (httpx accepts "exa mple.com").
_BAD_HOST = re.compile(r"[\s\"#%/<>?@\\^`{|}]")


@dataclass(frozen=True, slots=True)
class FeedRef:
    """What a refresh needs to know about a feed, detached from any session."""

    id: int
    url: str
    title: str
    etag: str | None
    last_modified: str | None
    body_hash: str | None
    interval: timedelta
    error_count: int
    last_success_at: datetime | None = None
    last_full_fetch_at: datetime | None = None
    items_per_day: float | None = None
    hint: schedule.Hint | None = None
    # The worker that claimed the feed for this refresh (None: not claimed, as `monitor poll`).
    lease_owner: str | None = None
    # Until when the server asked us to wait (Retry-After), if it did at the last check.
    retry_after_until: datetime | None = None
    # Whether its new articles' pages are fetched (auto, always, never).
    fetch_pages: str = FetchPages.AUTO
    # The interval an admin set (None: adaptive).
    fixed_interval: timedelta | None = None


def ref_of(feed: Feed, *, lease_owner: str | None = None) -> FeedRef:
    """A detached reference to a feed row; ``lease_owner`` only for a feed just claimed."""
    hint = None
    if feed.hint_seconds:
        hint = schedule.Hint(timedelta(seconds=feed.hint_seconds), feed.hint_source or "hint")
    return FeedRef(
        id=feed.id or 0,
        url=feed.url,
        title=feed.title,
        etag=feed.etag,
        last_modified=feed.last_modified,
        body_hash=feed.body_hash,
        interval=timedelta(seconds=feed.interval_seconds),
        error_count=feed.error_count,
        last_success_at=feed.last_success_at,
        last_full_fetch_at=feed.last_full_fetch_at,
        items_per_day=feed.items_per_day,
        hint=hint,
        lease_owner=lease_owner,
        retry_after_until=feed.retry_after_until,
        fetch_pages=feed.fetch_pages,
        fixed_interval=(
            timedelta(seconds=feed.fixed_interval_seconds) if feed.fixed_interval_seconds else None
        ),
    )


def check_feed_url(url: str) -> str:
    """``url`` stripped, if it is an absolute http(s) URL; raise UsageError otherwise."""
    url = url.strip()
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        raise UsageError(f"not a URL: {url!r}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise UsageError(f"not an http(s) feed URL: {url!r}")
    if _BAD_HOST.search(parsed.host):
        raise UsageError(f"not a valid host name in {url!r}")
    return url


def add_feed(
    session: Session,
    *,
    url: str,
    title: str = "",
    site_url: str = "",
    category: str = "",
    interval: timedelta,
    now: datetime,
    fetch_pages: str | None = None,
) -> tuple[Feed, bool]:
    """Add a feed, due at once; return it and whether it is new (an existing URL is kept)."""
    url = check_feed_url(url)
    existing = get_feed(session, url)
    if existing is not None and existing.state == FeedState.REMOVED:
        # Deleted with its articles kept, and wanted again: polled again, due now.
        existing.state, existing.disabled_reason, existing.next_check_at = (
            FeedState.ACTIVE, None, now,
        )  # fmt: skip
        existing.error_count = 0
        session.add(existing)
        return existing, True
    if existing is not None:
        return existing, False
    feed = Feed(
        url=url,
        title=title,
        site_url=site_url,
        category=category,
        interval_seconds=int(interval.total_seconds()),
        next_check_at=now,
        created_at=now,
        fetch_pages=FetchPages(fetch_pages or FetchPages.AUTO),
    )
    session.add(feed)
    session.flush()
    return feed, True


@dataclass(frozen=True, slots=True)
class FeedImport:
    """What an import added and what it found already there or could not use."""

    added: list[str]
    existing: list[str]
    rejected: list[str]
    # Existing feeds whose fetchPages the list changed.
    updated: list[str] = field(default_factory=list)


def import_feeds(
    session: Session,
    feeds: Iterable[OpmlFeed],
    *,
    interval: timedelta,
    now: datetime,
    admit: Callable[[str], str] | None = None,
) -> FeedImport:
    """Add every feed of an OPML list that is not there yet.

    ``admit`` checks each URL not there yet (the address guard, see ``sources.admission``)
    and raises UsageError for one to refuse; feeds already there are not checked again.
    """
    added: list[str] = []
    existing: list[str] = []
    rejected: list[str] = []
    updated: list[str] = []
    for item in feeds:
        try:
            if admit is not None and get_feed(session, item.url) is None:
                admit(item.url)
            feed, is_new = add_feed(
                session,
                url=item.url,
                title=item.title,
                site_url=item.site_url,
                category=item.category,
                interval=interval,
                now=now,
                fetch_pages=item.fetch_pages,
            )
        except UsageError as exc:
            rejected.append(str(exc))
            continue
        (added if is_new else existing).append(item.url)
        # A list that says fetchPages is followed, for feeds already there too.
        if not is_new and item.fetch_pages and feed.fetch_pages != item.fetch_pages:
            feed.fetch_pages = FetchPages(item.fetch_pages)
            session.add(feed)
            updated.append(item.url)
    return FeedImport(added, existing, rejected, updated)


def set_fetch_pages(session: Session, url: str, mode: str) -> Feed:
    """Set whether a feed's new articles have their pages fetched (auto, always, never)."""
    feed = get_feed(session, url)
    if feed is None:
        raise NotFoundError(f"no such feed: {url.strip()} (see `monitor feeds list`)")
    try:
        feed.fetch_pages = FetchPages(mode)
    except ValueError:
        raise UsageError(f"fetch_pages must be auto, always or never, not {mode!r}") from None
    session.add(feed)
    return feed


def is_paused(feed: Feed) -> bool:
    """Whether an admin paused the feed (disabled, with the pause as the reason)."""
    reason = feed.disabled_reason or ""
    return feed.state == FeedState.DISABLED and reason.startswith(PAUSED)


def is_held(feed: Feed) -> bool:
    """Whether an admin stopped the feed (paused or deleted): a check does not restart it."""
    return feed.state == FeedState.REMOVED or is_paused(feed)


def get_feed(session: Session, url: str) -> Feed | None:
    """The feed with exactly this URL, if any."""
    return session.exec(select(Feed).where(Feed.url == url.strip())).first()


def list_feeds(session: Session) -> list[Feed]:
    """Every feed (deleted ones aside), by URL."""
    statement = select(Feed).where(Feed.state != FeedState.REMOVED).order_by(col(Feed.url))
    return list(session.exec(statement).all())


def feed_refs(session: Session, urls: Iterable[str]) -> list[FeedRef]:
    """References to the feeds with these URLs (unknown URLs are skipped)."""
    wanted = [url.strip() for url in urls]
    return [ref_of(feed) for feed in session.exec(select(Feed).where(col(Feed.url).in_(wanted)))]


def select_due_feeds(session: Session, *, now: datetime, limit: int) -> list[FeedRef]:
    """Feeds not disabled whose next check time has come, the most overdue first."""
    statement = (
        select(Feed)
        .where(col(Feed.state).in_(POLLED_STATES), col(Feed.next_check_at) <= now)
        .order_by(col(Feed.next_check_at))
        .limit(limit)
    )
    return [ref_of(feed) for feed in session.exec(statement)]


def all_active_feeds(session: Session) -> list[FeedRef]:
    """Every feed that is not disabled."""
    statement = select(Feed).where(col(Feed.state).in_(POLLED_STATES)).order_by(col(Feed.id))
    return [ref_of(feed) for feed in session.exec(statement)]


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """What a successful check learnt about a feed."""

    etag: str | None
    last_modified: str | None
    body_hash: str | None = None
    title: str | None = None
    site_url: str | None = None
    # The interval planned from this check (None: keep the feed's interval as it is).
    planned: schedule.PlannedInterval | None = None
    items_per_day: float | None = None
    hint: schedule.Hint | None = None
    full_fetch: bool = False  # sent without validators
    moved_to: str | None = None  # the feed's URL answered with a permanent redirect here
    # The document was parsed at this check: its ``warning`` (None: none) replaces the last one.
    # A 304 or an unchanged body keeps the warning of the document it repeats.
    parsed: bool = False
    warning: str | None = None


def record_success(
    session: Session,
    feed: FeedRef,
    outcome: CheckOutcome,
    *,
    now: datetime,
    rng: random.Random,
    jitter: float = schedule.JITTER_FRACTION,
) -> None:
    """Store validators and metadata of a good check, clear the error streak, plan the next."""
    row = _load(session, feed.id)
    row.etag = outcome.etag if outcome.etag is not None else row.etag
    row.last_modified = outcome.last_modified or row.last_modified
    row.body_hash = outcome.body_hash or row.body_hash
    if not row.title_locked:
        row.title = outcome.title or row.title
    row.site_url = outcome.site_url or row.site_url
    # Paused or deleted while it was being refreshed: it stays so.
    if not is_held(row):
        row.state, row.disabled_reason = FeedState.ACTIVE, None
    row.error_count, row.last_error = 0, None
    row.retry_after_until = None
    if outcome.parsed:
        row.last_warning = outcome.warning[:MAX_ERROR_LENGTH] if outcome.warning else None
    row.last_checked_at = row.last_success_at = now
    if outcome.full_fetch:
        row.last_full_fetch_at = now
    if outcome.items_per_day is not None:
        row.items_per_day = outcome.items_per_day
    if outcome.hint is not None:
        row.hint_seconds = int(outcome.hint.every.total_seconds())
        row.hint_source = outcome.hint.source[:40]
    interval = feed.interval
    if outcome.planned is not None:
        interval = outcome.planned.interval
        row.interval_seconds = int(interval.total_seconds())
        row.interval_reason = outcome.planned.reason
    row.next_check_at = schedule.next_check_after_success(now, interval, rng=rng, jitter=jitter)
    if outcome.moved_to:
        move_feed(session, row, outcome.moved_to)
    session.add(row)
    release_lease(session, feed)


def move_feed(session: Session, row: Feed, new_url: str) -> bool:
    """Give the feed its new URL after a permanent redirect (not if another feed has it)."""
    try:
        new_url = check_feed_url(new_url)
    except UsageError:
        return False
    if new_url == row.url or get_feed(session, new_url) is not None:
        return False
    row.url = new_url
    return True


def record_failure(
    session: Session,
    feed: FeedRef,
    error: str,
    *,
    now: datetime,
    max_backoff: timedelta,
    rng: random.Random,
    retry_after: timedelta | None = None,
    disable: bool = False,
    jitter: float = schedule.JITTER_FRACTION,
) -> None:
    """Count an error and back off; the feed stays polled, shown as erroring with the reason.

    ``retry_after`` (already capped) delays the next check at least that long; ``disable``
    stops polling the feed (a 410 Gone), with the error as the reason, until it is retried.
    """
    row = _load(session, feed.id)
    row.error_count += 1
    row.last_error = error[:MAX_ERROR_LENGTH]
    if not is_held(row):  # a feed paused or deleted meanwhile stays so
        row.state = FeedState.DISABLED if disable else FeedState.ERRORING
        if disable:
            row.disabled_reason = error[:MAX_ERROR_LENGTH]
    row.last_checked_at = now
    row.retry_after_until = now + retry_after if retry_after else None
    row.next_check_at = schedule.next_check_after_error(
        now,
        feed.interval,
        error_count=row.error_count,
        max_backoff=max_backoff,
        rng=rng,
        retry_after=retry_after,
        jitter=jitter,
    )
    session.add(row)
    release_lease(session, feed)


def release_lease(session: Session, feed: FeedRef) -> None:
    """End the lease under which ``feed`` was refreshed, if its claimer still holds it.

    The check is recorded whoever holds the feed now (it did happen, and the articles it found
    are stored with it); but once our lease ran out another worker may have claimed the feed, and
    its lease stays: clearing it would let a third worker fetch the feed while it is at work.
    A conditional UPDATE, not the loaded row, decides, so a claim committed meanwhile is seen.
    """
    if feed.lease_owner is None:
        return
    session.execute(
        update(Feed)
        .where(col(Feed.id) == feed.id, col(Feed.lease_owner) == feed.lease_owner)
        .values(lease_owner=None, lease_until=None)
    )


def retry_feeds(
    session: Session, *, urls: Iterable[str] = (), all_erroring: bool = False, now: datetime
) -> list[Feed]:
    """Make feeds due now and active again (disabled ones too), their error streak cleared."""
    wanted = [url.strip() for url in urls]
    rows: list[Feed] = []
    for url in wanted:
        row = get_feed(session, url)
        if row is None:
            raise NotFoundError(f"no such feed: {url} (see `monitor feeds list`)")
        rows.append(row)
    if all_erroring:
        statement = select(Feed).where(Feed.state == FeedState.ERRORING).order_by(col(Feed.url))
        rows.extend(row for row in session.exec(statement) if row not in rows)
    for row in rows:
        row.state, row.error_count, row.disabled_reason = FeedState.ACTIVE, 0, None
        row.next_check_at = now
        session.add(row)
    return rows


def _load(session: Session, feed_id: int) -> Feed:
    row = session.get(Feed, feed_id)
    if row is None:
        raise LookupError(f"feed {feed_id} vanished during its refresh")
    return row


def require_feed(session: Session, url: str) -> Feed:
    """The feed with this URL (not a deleted one); raise NotFoundError otherwise."""
    feed = get_feed(session, url)
    if feed is None or feed.state == FeedState.REMOVED:
        raise NotFoundError(f"no such feed: {url.strip()} (see `monitor feeds list`)")
    return feed


def parse_interval(value: str, minimum: timedelta, maximum: timedelta) -> timedelta | None:
    """An interval typed as ``30m``, ``2h``, ``1d`` within the configured bounds, or None for
    ``auto`` (adaptive); raise UsageError otherwise."""
    if value.strip().lower() in ("auto", "adaptive"):
        return None
    span = parse_duration(value.strip())
    if not minimum <= span <= maximum:
        raise UsageError(
            f"interval {schedule.format_span(span)} is outside the allowed "
            f"{schedule.format_span(minimum)} to {schedule.format_span(maximum)} "
            "(schedule.min_interval, schedule.max_interval)"
        )
    return span


def update_feed(
    session: Session,
    feed: Feed,
    *,
    title: str | None = None,
    category: str | None = None,
    interval: timedelta | None = None,
    adaptive: bool = False,
    now: datetime,
) -> list[str]:
    """Change a feed's title (kept from then on), category, or interval (fixed, or back to
    ``adaptive``); return what changed, in words."""
    changed: list[str] = []
    if title is not None and (title.strip() != feed.title or not feed.title_locked):
        feed.title, feed.title_locked = title.strip(), bool(title.strip())
        changed.append(f"title {feed.title!r}" if feed.title else "title: the feed's own")
    if category is not None and category.strip() != feed.category:
        feed.category = category.strip()
        changed.append(f"category {feed.category!r}")
    if interval is not None:
        seconds = int(interval.total_seconds())
        if seconds != feed.fixed_interval_seconds:
            feed.fixed_interval_seconds = feed.interval_seconds = seconds
            feed.interval_reason = f"set to {schedule.format_span(interval)} by an admin"
            # Sooner if the new interval says so; never later than already planned.
            feed.next_check_at = min(feed.next_check_at, now + interval)
            changed.append(f"interval {schedule.format_span(interval)}")
    elif adaptive and feed.fixed_interval_seconds is not None:
        feed.fixed_interval_seconds = None
        changed.append("interval adaptive")
    session.add(feed)
    return changed


def pause_feed(session: Session, feed: Feed, *, by: str, now: datetime) -> bool:
    """Stop polling ``feed`` until it is resumed (``retry_feeds``); False if already paused."""
    if is_paused(feed):
        return False
    feed.state = FeedState.DISABLED
    feed.disabled_reason = f"{PAUSED}{by} at {now:%Y-%m-%d %H:%M} UTC"
    session.add(feed)
    return True
