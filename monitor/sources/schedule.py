"""When to check a feed next."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

# Spread checks out so feeds added together do not stay in lock-step forever.
JITTER_FRACTION = 0.1


def next_check_after_success(now: datetime, interval: timedelta, *, rng: random.Random) -> datetime:
    """The next check after a successful one: the feed's interval, give or take 10 %."""
    return now + _jittered(interval, rng)


def next_check_after_error(
    now: datetime,
    interval: timedelta,
    *,
    error_count: int,
    max_backoff: timedelta,
    rng: random.Random,
) -> datetime:
    """The next check after ``error_count`` errors in a row: doubling each time, capped."""
    delay = min(interval * (2 ** min(max(error_count - 1, 0), 16)), max_backoff)
    return now + _jittered(max(delay, interval), rng)


def _jittered(delay: timedelta, rng: random.Random) -> timedelta:
    return delay * (1 + rng.uniform(-JITTER_FRACTION, JITTER_FRACTION))
