"""Feed health for the daily report: only problems that persist are listed.

Rules (the README repeats them):

* *failing*: the feed is erroring and has had no successful check for longer than
  ``failing_for`` (since it was added, if it never had one). One failed check between good ones
  is not listed.
* *silent*: the feed's usual gap is the median time between the distinct moments it brought
  new items (its sightings' ``first_seen_at``) over the trailing window. With at least
  ``MIN_GAPS`` gaps to judge by, it is silent when the time since its last new item exceeds
  ``silent_factor`` times that gap *and* the longest gap of the window: news feeds post in
  bursts and sleep at night, so the median alone would call every feed silent each morning.
  Failing and disabled feeds are listed under their own heading.
* *disabled*: the feed's state is disabled, with its reason.
* *all new*: on each of its last two polls that brought a changed feed, every item it listed
  was new to it, so it may publish more between two polls than its feed shows. Sightings tell
  this without another column: a poll stamps ``last_seen_at`` on every item it lists and
  ``first_seen_at`` on the new ones. A feed's first poll (everything is new) does not count.
"""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.models import Feed, FeedState

# Fewer gaps than this and a feed's usual rhythm is unknown: it is never called silent.
MIN_GAPS = 5
# Polls needed to call a feed "all new": the two all-new polls and an earlier one.
ALL_NEW_POLLS = 3


@dataclass(frozen=True, slots=True)
class SightingRow:
    """A sighting's feed and times, as the health rules need them."""

    feed_id: int
    first_seen_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True, slots=True)
class FeedProblem:
    """A feed with a lasting problem: since when, and what is wrong in a few words."""

    feed_id: int
    title: str
    url: str
    since: datetime | None
    detail: str
    errors: int = 0
    usual_gap: timedelta | None = None
    items: int = 0


@dataclass(frozen=True, slots=True)
class HostProblem:
    """A site whose article pages mostly fail: how many failed and were stored lately, and the
    last reason (a block, a consent wall, errors)."""

    host: str
    failed: int
    stored: int
    detail: str
    since: datetime | None = None


@dataclass(frozen=True, slots=True)
class FeedHealth:
    """The feeds to look at, by kind of problem, and the sites whose pages fail."""

    failing: list[FeedProblem] = field(default_factory=list)
    silent: list[FeedProblem] = field(default_factory=list)
    disabled: list[FeedProblem] = field(default_factory=list)
    all_new: list[FeedProblem] = field(default_factory=list)
    pages: list[HostProblem] = field(default_factory=list)

    @property
    def problems(self) -> int:
        """How many feeds (and sites) are listed in all."""
        feeds = len(self.failing) + len(self.silent) + len(self.disabled) + len(self.all_new)
        return feeds + len(self.pages)

    def payload(self) -> dict[str, Any]:
        """JSON-ready data, one list per kind of problem."""
        return {
            "failing": [_problem(p) for p in self.failing],
            "silent": [_problem(p) for p in self.silent],
            "disabled": [_problem(p) for p in self.disabled],
            "all_new": [_problem(p) for p in self.all_new],
            "pages": [_host_problem(p) for p in self.pages],
        }


def _host_problem(problem: HostProblem) -> dict[str, Any]:
    since = (
        problem.since.astimezone(UTC).isoformat().replace("+00:00", "Z") if problem.since else None
    )
    return {
        "host": problem.host,
        "failed": problem.failed,
        "stored": problem.stored,
        "detail": problem.detail,
        "since": since,
    }


def _problem(problem: FeedProblem) -> dict[str, Any]:
    since = (
        problem.since.astimezone(UTC).isoformat().replace("+00:00", "Z") if problem.since else None
    )
    return {
        "feed_id": problem.feed_id,
        "title": problem.title,
        "url": problem.url,
        "since": since,
        "detail": problem.detail,
        "errors": problem.errors,
        "usual_gap_seconds": int(problem.usual_gap.total_seconds()) if problem.usual_gap else None,
        "items": problem.items,
    }


def format_duration(span: timedelta) -> str:
    """A duration in at most two units: ``3d 4h``, ``5h 10m``, ``45m``."""
    days, rest = divmod(int(span.total_seconds() // 60), 1440)
    hours, minutes = divmod(rest, 60)
    shown = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    return " ".join(shown[:2]) or "0m"


def failing_since(feed: Feed) -> datetime:
    """When a feed last worked (or was added, if it never has)."""
    return feed.last_success_at or feed.created_at


def is_failing(feed: Feed, *, now: datetime, failing_for: timedelta) -> bool:
    """Whether the feed has been erroring for longer than ``failing_for``."""
    erroring = feed.state == FeedState.ERRORING or feed.error_count > 0
    return erroring and now - failing_since(feed) > failing_for


def usual_gap(moments: Sequence[datetime]) -> timedelta | None:
    """The median gap between distinct moments, or None with fewer than ``MIN_GAPS`` gaps."""
    distinct = sorted(set(moments))
    gaps = [later - earlier for earlier, later in itertools.pairwise(distinct)]
    if len(gaps) < MIN_GAPS:
        return None
    return timedelta(seconds=statistics.median(gap.total_seconds() for gap in gaps))


def last_polls_all_new(rows: Sequence[SightingRow]) -> int | None:
    """The item count of the last poll when it and the one before listed only new items."""
    polls = sorted({row.last_seen_at for row in rows}, reverse=True)
    if len(polls) < ALL_NEW_POLLS:
        return None
    # After an all-new poll, the items of the poll before keep that poll as their last sighting.
    counts = []
    for poll in polls[:2]:
        listed = sum(1 for row in rows if row.last_seen_at == poll)
        new = sum(1 for row in rows if row.first_seen_at == poll)
        if listed == 0 or listed != new:
            return None
        counts.append(listed)
    return counts[0]


def assess_feeds(
    feeds: Sequence[Feed],
    sightings: Sequence[SightingRow],
    *,
    now: datetime,
    failing_for: timedelta,
    silent_factor: float,
) -> FeedHealth:
    """Apply the health rules to every feed."""
    by_feed: dict[int, list[SightingRow]] = defaultdict(list)
    for row in sightings:
        by_feed[row.feed_id].append(row)
    health = FeedHealth()
    for feed in sorted(feeds, key=lambda f: ((f.title or f.url).casefold(), f.id or 0)):
        feed_id, title = feed.id or 0, feed.title or feed.url
        rows = by_feed.get(feed_id, [])
        if feed.state == FeedState.DISABLED:
            reason = feed.disabled_reason or "disabled"
            health.disabled.append(FeedProblem(feed_id, title, feed.url, None, reason))
            continue
        if is_failing(feed, now=now, failing_for=failing_for):
            health.failing.append(
                FeedProblem(
                    feed_id,
                    title,
                    feed.url,
                    failing_since(feed),
                    feed.last_error or "unknown error",
                    errors=feed.error_count,
                )
            )
            continue
        silent = _silence(feed, rows, now=now, factor=silent_factor)
        if silent is not None:
            health.silent.append(silent)
        items = last_polls_all_new(rows)
        if items is not None:
            detail = f"all {items} items were new on each of its last two polls"
            last_poll = max(row.last_seen_at for row in rows)
            health.all_new.append(
                FeedProblem(feed_id, title, feed.url, last_poll, detail, items=items)
            )
    return health


def _silence(
    feed: Feed, rows: Sequence[SightingRow], *, now: datetime, factor: float
) -> FeedProblem | None:
    moments = [row.first_seen_at for row in rows if row.first_seen_at <= now]
    gap = usual_gap(moments)
    if gap is None:
        return None
    distinct = sorted(set(moments))
    longest = max(later - earlier for earlier, later in itertools.pairwise(distinct))
    last = distinct[-1]
    quiet = now - last
    if quiet <= gap * factor or quiet <= longest:
        return None
    detail = f"no new item for {format_duration(quiet)}; usually one every {format_duration(gap)}"
    return FeedProblem(feed.id or 0, feed.title or feed.url, feed.url, last, detail, usual_gap=gap)
