"""When to check a feed next: its own interval, adapted to its hints and rhythm, and backoff.

A feed's interval is worked out after every good check (``plan_interval``), from:

* how often it publishes: the items dated within the last week, spread over the time they
  span, give items per day; one check per new item expected;
* how many of the items just fetched were already seen: more than half new means items may be
  scrolling off between checks, so the interval is halved; none new means there is no reason
  to check more often than before;
* the feed's own hints (RSS ``ttl``, ``sy:updatePeriod`` / ``sy:updateFrequency``, and the
  response's ``Cache-Control: max-age`` or ``Expires``): a feed asking not to be checked more
  often than that is not;
* the configured minimum and maximum.

The reason is kept in words beside the interval, for ``monitor feeds show``.
"""

from __future__ import annotations

import email.utils
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# Spread checks out so feeds added together do not stay in lock-step forever.
JITTER_FRACTION = 0.1
DAY = timedelta(days=1)
# How far back published dates count towards a feed's rate.
RATE_WINDOW = timedelta(days=7)
_SY_PERIODS = {
    "hourly": timedelta(hours=1),
    "daily": timedelta(days=1),
    "weekly": timedelta(weeks=1),
    "monthly": timedelta(days=30),
    "yearly": timedelta(days=365),
}
_MAX_AGE = re.compile(r"(?:^|,)\s*(?:s-)?max-age\s*=\s*\"?(\d+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Hint:
    """How often a feed asks to be checked at most, and which field said so."""

    every: timedelta
    source: str


@dataclass(frozen=True, slots=True)
class Bounds:
    """The configured limits of any feed's interval."""

    minimum: timedelta
    maximum: timedelta


@dataclass(frozen=True, slots=True)
class PlannedInterval:
    """A feed's interval and why it is that."""

    interval: timedelta
    reason: str


def format_span(span: timedelta) -> str:
    """A duration in at most two units: ``1d 6h``, ``2h 30m``, ``45m``, ``30s``."""
    seconds = int(span.total_seconds())
    if seconds < 60:
        return f"{seconds}s"
    days, rest = divmod(seconds // 60, 1440)
    hours, minutes = divmod(rest, 60)
    shown = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    return " ".join(shown[:2])


def feed_hint(
    *, ttl: str | None, update_period: str | None, update_frequency: str | None
) -> Hint | None:
    """The longest wait the feed document asks for (RSS ttl in minutes, or sy:update*)."""
    hints: list[Hint] = []
    if ttl and ttl.strip().isdigit() and int(ttl) > 0:
        hints.append(Hint(timedelta(minutes=int(ttl)), "RSS ttl"))
    period = _SY_PERIODS.get((update_period or "").strip().lower())
    if period is not None:
        frequency = (update_frequency or "1").strip()
        times = int(frequency) if frequency.isdigit() and int(frequency) > 0 else 1
        hints.append(Hint(period / times, "sy:updatePeriod"))
    return max(hints, key=lambda hint: hint.every, default=None)


def http_hint(
    *, cache_control: str | None, expires: str | None, date: str | None, now: datetime
) -> Hint | None:
    """How long the response says it stays fresh (Cache-Control max-age, else Expires)."""
    if cache_control:
        if re.search(r"no-cache|no-store", cache_control, re.IGNORECASE):
            return None
        match = _MAX_AGE.search(cache_control)
        if match:
            seconds = int(match.group(1))
            return Hint(timedelta(seconds=seconds), "Cache-Control max-age") if seconds else None
    when = _http_date(expires)
    if when is None:
        return None
    # Measured against the server's own Date, so a server whose clock is off is still read right.
    base = _http_date(date) or now
    fresh = when - base
    return Hint(fresh, "Expires") if fresh > timedelta(0) else None


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def longest_hint(*hints: Hint | None) -> Hint | None:
    """The hint asking for the longest wait."""
    return max((h for h in hints if h is not None), key=lambda h: h.every, default=None)


def items_per_day(published: Sequence[datetime | None], *, now: datetime) -> float | None:
    """Items a day, from the dates of the items a feed lists (None: too few recent dates)."""
    dated = [when for when in published if when is not None]
    if not dated:
        return None
    recent = [when for when in dated if now - RATE_WINDOW <= when <= now]
    if len(recent) <= 1:
        return len(recent) / (RATE_WINDOW / DAY)
    # The items listed cover the span from the oldest recent one until now (a feed listing
    # only its last few items is measured over those, not over the whole week).
    span = max(now - min(recent), timedelta(hours=1))
    return len(recent) / (span / DAY)


@dataclass(frozen=True, slots=True)
class Observations:
    """What one good check of a feed told us, as ``plan_interval`` needs it."""

    current: timedelta
    default: timedelta
    rate: float | None = None  # items a day (None: unknown)
    new_items: int | None = None  # None: the body was not parsed (304, same hash)
    listed_items: int | None = None
    first_check: bool = False
    hint: Hint | None = None
    # The interval an admin set for the feed: it replaces the adaptive one.
    fixed: timedelta | None = None


def plan_interval(seen: Observations, bounds: Bounds) -> PlannedInterval:
    """The feed's next interval, and the reasons, in words."""
    reasons: list[str] = []
    if seen.fixed is not None:
        interval = seen.fixed
        reasons.append(f"set to {format_span(seen.fixed)} by an admin")
    elif seen.rate is None:
        interval = seen.current if not seen.first_check else seen.default
        reasons.append("its publishing rate is not known yet")
    elif seen.rate == 0:
        interval = max(seen.current * 1.5, seen.default)
        reasons.append("nothing dated within the last 7 days: checking less often")
    else:
        interval = DAY / seen.rate
        reasons.append(f"publishes about {seen.rate:.1f} items a day")
    listed, new = seen.listed_items, seen.new_items
    if seen.fixed is not None:
        pass  # the admin's interval does not adapt to the items seen
    elif listed and new is not None and not seen.first_check:
        if new * 2 > listed:
            interval = min(interval, seen.current / 2)
            reasons.append(f"{new} of its {listed} items were new: checking sooner")
        elif new == 0:
            interval = max(interval, seen.current)
            reasons.append(f"all {listed} items already seen")
    elif new is None and not seen.first_check:
        reasons.append("unchanged since the last check")
    if seen.hint is not None and seen.hint.every > interval:
        interval = seen.hint.every
        reasons.append(
            f"the feed asks for one check per {format_span(seen.hint.every)} at most "
            f"({seen.hint.source})"
        )
    if interval < bounds.minimum:
        interval = bounds.minimum
        reasons.append(f"raised to the minimum of {format_span(bounds.minimum)}")
    elif interval > bounds.maximum:
        interval = bounds.maximum
        reasons.append(f"lowered to the maximum of {format_span(bounds.maximum)}")
    interval = timedelta(seconds=round(interval.total_seconds()))
    return PlannedInterval(interval, "; ".join(reasons))


def next_check_after_success(
    now: datetime, interval: timedelta, *, rng: random.Random, jitter: float = JITTER_FRACTION
) -> datetime:
    """The next check after a successful one: the feed's interval, give or take the jitter."""
    return now + _jittered(interval, rng, jitter)


def backoff_delay(
    interval: timedelta,
    *,
    error_count: int,
    max_backoff: timedelta,
    retry_after: timedelta | None = None,
) -> timedelta:
    """The wait after ``error_count`` errors in a row: doubling each time, capped; never less
    than the feed's interval, nor than what a Retry-After asked for (already capped)."""
    delay = min(interval * (1 << min(max(error_count - 1, 0), 16)), max_backoff)
    delay = max(delay, interval)
    return max(delay, retry_after) if retry_after is not None else delay


def next_check_after_error(
    now: datetime,
    interval: timedelta,
    *,
    error_count: int,
    max_backoff: timedelta,
    rng: random.Random,
    retry_after: timedelta | None = None,
    jitter: float = JITTER_FRACTION,
) -> datetime:
    """The next check after ``error_count`` errors in a row (see ``backoff_delay``)."""
    delay = backoff_delay(
        interval, error_count=error_count, max_backoff=max_backoff, retry_after=None
    )
    when = now + _jittered(delay, rng, jitter)
    if retry_after is not None:
        # Jitter may spread the check later, never earlier than the server asked.
        when = max(when, now + retry_after)
    return when


def _jittered(delay: timedelta, rng: random.Random, jitter: float) -> timedelta:
    return delay * (1 + rng.uniform(-jitter, jitter))
