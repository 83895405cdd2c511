"""Every feed's health in one row: state, last success, error streak, interval, rate, silence.

No feed is left out: disabled and erroring feeds are listed with their reasons. "Silent" uses
the daily report's rule (``monitor.reports.health``), so both tell the same story.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from monitor.models import Feed, FeedState, Sighting
from monitor.reports.health import SightingRow, assess_feeds
from monitor.sources.feeds import list_feeds
from monitor.sources.schedule import format_span

# New items per day are counted over this window.
RATE_WINDOW = timedelta(days=7)
# Sightings this far back make a feed's usual rhythm (as the daily report's baseline).
RHYTHM_WINDOW = timedelta(days=28)


@dataclass(frozen=True, slots=True)
class FeedHealthRow:
    """One feed as ``monitor feeds health`` shows it."""

    url: str
    title: str
    state: FeedState
    last_success_at: datetime | None
    error_count: int
    last_error: str | None
    disabled_reason: str | None
    interval: timedelta
    new_per_day: float
    next_check_at: datetime
    silent: str | None  # why the feed counts as silent, when it does
    # What its last parsed document warned of (malformed, items skipped), though it is active.
    warning: str | None = None


def feed_health(session: Session, *, now: datetime, silent_factor: float) -> list[FeedHealthRow]:
    """The health of every feed, by URL."""
    feeds = list_feeds(session)
    statement = select(Sighting.feed_id, Sighting.first_seen_at, Sighting.last_seen_at).where(
        col(Sighting.last_seen_at) >= now - RHYTHM_WINDOW
    )
    rows = [SightingRow(feed_id, first, last) for feed_id, first, last in session.exec(statement)]
    recent = Counter(row.feed_id for row in rows if row.first_seen_at >= now - RATE_WINDOW)
    # failing_for is irrelevant here (state says it), so it is made long: only silence counts.
    verdict = assess_feeds(
        feeds, rows, now=now, failing_for=timedelta(days=36500), silent_factor=silent_factor
    )
    silent = {problem.feed_id: problem.detail for problem in verdict.silent}
    return [
        FeedHealthRow(
            url=feed.url,
            title=feed.title,
            state=FeedState(feed.state),
            last_success_at=feed.last_success_at,
            error_count=feed.error_count,
            last_error=feed.last_error,
            disabled_reason=feed.disabled_reason,
            interval=timedelta(seconds=feed.interval_seconds),
            new_per_day=recent[feed.id or 0] / (RATE_WINDOW / timedelta(days=1)),
            next_check_at=feed.next_check_at,
            silent=silent.get(feed.id or 0),
            warning=feed.last_warning,
        )
        for feed in feeds
    ]


def explain_next_check(feed: Feed) -> str:
    """Why the feed is checked when it is: backing off after errors, disabled, or its interval.

    The stored interval reason belongs to the last good check; while a feed errors its next
    check is the backoff, which that reason does not explain.
    """
    when_good = f"; when it works: {feed.interval_reason}" if feed.interval_reason else ""
    if feed.state == FeedState.DISABLED:
        reason = f" ({feed.disabled_reason})" if feed.disabled_reason else ""
        return f"disabled{reason}: not checked until `monitor feeds retry` makes it active"
    if feed.error_count > 0:
        errors = "1 error" if feed.error_count == 1 else f"{feed.error_count} errors in a row"
        wait = ""
        if feed.last_checked_at is not None and feed.next_check_at > feed.last_checked_at:
            wait = f", checking again {format_span(feed.next_check_at - feed.last_checked_at)}"
            wait += " after the last check"
        return (
            f"backing off after {errors}{wait} (the interval doubles with each error, up to "
            f"schedule.max_backoff){when_good}"
        )
    if feed.interval_reason:
        return feed.interval_reason
    if feed.last_checked_at is None:
        return "the default interval (not checked yet)"
    return "the default interval (its publishing rhythm is not known yet)"
