"""The feed table: adding feeds, picking the due ones, recording how each check went."""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlmodel import Session, col, select

from monitor.errors import UsageError
from monitor.models import Feed, FeedState
from monitor.sources import schedule
from monitor.sources.opml import OpmlFeed

MAX_ERROR_LENGTH = 1000
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


def _ref(feed: Feed) -> FeedRef:
    return FeedRef(
        id=feed.id or 0,
        url=feed.url,
        title=feed.title,
        etag=feed.etag,
        last_modified=feed.last_modified,
        body_hash=feed.body_hash,
        interval=timedelta(seconds=feed.interval_seconds),
        error_count=feed.error_count,
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
) -> tuple[Feed, bool]:
    """Add a feed, due at once; return it and whether it is new (an existing URL is kept)."""
    url = check_feed_url(url)
    existing = get_feed(session, url)
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


def import_feeds(
    session: Session, feeds: Iterable[OpmlFeed], *, interval: timedelta, now: datetime
) -> FeedImport:
    """Add every feed of an OPML list that is not there yet."""
    added: list[str] = []
    existing: list[str] = []
    rejected: list[str] = []
    for item in feeds:
        try:
            _, is_new = add_feed(
                session,
                url=item.url,
                title=item.title,
                site_url=item.site_url,
                category=item.category,
                interval=interval,
                now=now,
            )
        except UsageError as exc:
            rejected.append(str(exc))
            continue
        (added if is_new else existing).append(item.url)
    return FeedImport(added, existing, rejected)


def get_feed(session: Session, url: str) -> Feed | None:
    """The feed with exactly this URL, if any."""
    return session.exec(select(Feed).where(Feed.url == url.strip())).first()


def list_feeds(session: Session) -> list[Feed]:
    """Every feed, by URL."""
    return list(session.exec(select(Feed).order_by(col(Feed.url))).all())


def feed_refs(session: Session, urls: Iterable[str]) -> list[FeedRef]:
    """References to the feeds with these URLs (unknown URLs are skipped)."""
    wanted = [url.strip() for url in urls]
    return [_ref(feed) for feed in session.exec(select(Feed).where(col(Feed.url).in_(wanted)))]


def select_due_feeds(session: Session, *, now: datetime, limit: int) -> list[FeedRef]:
    """Feeds not disabled whose next check time has come, the most overdue first."""
    statement = (
        select(Feed)
        .where(Feed.state != FeedState.DISABLED, col(Feed.next_check_at) <= now)
        .order_by(col(Feed.next_check_at))
        .limit(limit)
    )
    return [_ref(feed) for feed in session.exec(statement)]


def all_active_feeds(session: Session) -> list[FeedRef]:
    """Every feed that is not disabled."""
    statement = select(Feed).where(Feed.state != FeedState.DISABLED).order_by(col(Feed.id))
    return [_ref(feed) for feed in session.exec(statement)]


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """What a successful check learnt about a feed."""

    etag: str | None
    last_modified: str | None
    body_hash: str | None = None
    title: str | None = None
    site_url: str | None = None


def record_success(
    session: Session, feed: FeedRef, outcome: CheckOutcome, *, now: datetime, rng: random.Random
) -> None:
    """Store validators and metadata of a good check, clear the error streak, plan the next."""
    row = _load(session, feed.id)
    row.etag = outcome.etag if outcome.etag is not None else row.etag
    row.last_modified = outcome.last_modified or row.last_modified
    row.body_hash = outcome.body_hash or row.body_hash
    row.title = outcome.title or row.title
    row.site_url = outcome.site_url or row.site_url
    row.state, row.error_count, row.last_error = FeedState.ACTIVE, 0, None
    row.last_checked_at = row.last_success_at = now
    row.next_check_at = schedule.next_check_after_success(now, feed.interval, rng=rng)
    session.add(row)


def record_failure(
    session: Session,
    feed: FeedRef,
    error: str,
    *,
    now: datetime,
    max_backoff: timedelta,
    rng: random.Random,
) -> None:
    """Count an error and back off; the feed stays polled, shown as erroring with the reason."""
    row = _load(session, feed.id)
    row.error_count += 1
    row.last_error = error[:MAX_ERROR_LENGTH]
    row.state = FeedState.ERRORING
    row.last_checked_at = now
    row.next_check_at = schedule.next_check_after_error(
        now, feed.interval, error_count=row.error_count, max_backoff=max_backoff, rng=rng
    )
    session.add(row)


def _load(session: Session, feed_id: int) -> Feed:
    row = session.get(Feed, feed_id)
    if row is None:
        raise LookupError(f"feed {feed_id} vanished during its refresh")
    return row
