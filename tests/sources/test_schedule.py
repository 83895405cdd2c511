"""When a feed is checked next: the interval with jitter, and a capped doubling after errors."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from monitor.sources.schedule import (
    Bounds,
    Hint,
    Observations,
    feed_hint,
    http_hint,
    items_per_day,
    next_check_after_error,
    next_check_after_success,
    plan_interval,
)

NOW = datetime(2024, 9, 10, 12, 0, tzinfo=UTC)
INTERVAL = timedelta(minutes=15)


def within_jitter(delay: timedelta, expected: timedelta) -> bool:
    return expected * 0.9 <= delay <= expected * 1.1


@pytest.mark.parametrize("seed", range(20))
def test_after_success_is_the_interval_give_or_take_ten_percent(seed: int) -> None:
    delay = next_check_after_success(NOW, INTERVAL, rng=random.Random(seed)) - NOW

    assert within_jitter(delay, INTERVAL)


def test_same_seed_gives_the_same_time() -> None:
    first = next_check_after_success(NOW, INTERVAL, rng=random.Random(42))
    second = next_check_after_success(NOW, INTERVAL, rng=random.Random(42))

    assert first == second


def test_feeds_added_together_spread_out() -> None:
    rng = random.Random(7)
    times = {next_check_after_success(NOW, INTERVAL, rng=rng) for _ in range(50)}

    assert len(times) == 50
    assert max(times) - min(times) > INTERVAL * 0.1


@pytest.mark.parametrize(
    ("error_count", "expected"),
    [
        (0, timedelta(minutes=15)),
        (1, timedelta(minutes=15)),
        (2, timedelta(minutes=30)),
        (3, timedelta(hours=1)),
        (4, timedelta(hours=2)),
        (6, timedelta(hours=8)),
        (7, timedelta(hours=12)),
        (50, timedelta(hours=12)),
        (10_000, timedelta(hours=12)),
    ],
)
def test_after_errors_the_delay_doubles_up_to_the_cap(
    error_count: int, expected: timedelta
) -> None:
    for seed in range(5):
        when = next_check_after_error(
            NOW,
            INTERVAL,
            error_count=error_count,
            max_backoff=timedelta(hours=12),
            rng=random.Random(seed),
        )
        assert within_jitter(when - NOW, expected)


def test_cap_below_the_interval_never_checks_more_often_than_the_interval() -> None:
    when = next_check_after_error(
        NOW, INTERVAL, error_count=3, max_backoff=timedelta(minutes=1), rng=random.Random(0)
    )

    assert within_jitter(when - NOW, INTERVAL)


# --- adaptive intervals -------------------------------------------------------------------

HOUR = timedelta(hours=1)
BOUNDS = Bounds(timedelta(minutes=5), timedelta(days=1))


@pytest.mark.parametrize(
    ("ttl", "period", "frequency", "expected"),
    [
        (None, None, None, None),
        ("60", None, None, Hint(HOUR, "RSS ttl")),
        ("0", None, None, None),
        ("soon", None, None, None),
        (None, "hourly", "2", Hint(HOUR / 2, "sy:updatePeriod")),
        (None, "daily", None, Hint(timedelta(days=1), "sy:updatePeriod")),
        (None, "Weekly", "0", Hint(timedelta(weeks=1), "sy:updatePeriod")),
        (None, "fortnightly", "1", None),
        ("30", "hourly", "1", Hint(HOUR, "sy:updatePeriod")),  # the longer wait wins
    ],
)
def test_feed_hint(
    ttl: str | None, period: str | None, frequency: str | None, expected: Hint | None
) -> None:
    assert feed_hint(ttl=ttl, update_period=period, update_frequency=frequency) == expected


@pytest.mark.parametrize(
    ("cache_control", "expires", "date", "expected"),
    [
        (None, None, None, None),
        ("public, max-age=600", None, None, Hint(timedelta(minutes=10), "Cache-Control max-age")),
        ('max-age="900"', None, None, Hint(timedelta(minutes=15), "Cache-Control max-age")),
        ("max-age=0", None, None, None),
        ("no-cache, max-age=600", None, None, None),
        (None, "Tue, 10 Sep 2024 14:00:00 GMT", None, Hint(2 * HOUR, "Expires")),
        # Against the server's own Date, whatever our clock says.
        (
            None,
            "Tue, 10 Sep 2024 14:00:00 GMT",
            "Tue, 10 Sep 2024 13:30:00 GMT",
            Hint(HOUR / 2, "Expires"),
        ),
        (None, "Tue, 10 Sep 2024 11:00:00 GMT", None, None),
        (None, "0", None, None),
    ],
)
def test_http_hint(
    cache_control: str | None, expires: str | None, date: str | None, expected: Hint | None
) -> None:
    found = http_hint(cache_control=cache_control, expires=expires, date=date, now=NOW)

    assert found == expected


@pytest.mark.parametrize(
    ("ages_in_hours", "expected"),
    [
        ([], None),
        ([None, None], None),
        ([1, 2, 3, 4], 4 / (4 / 24)),  # four items over the last four hours
        ([0.1, 0.2], 2 / (1 / 24)),  # measured over at least an hour
        ([24, 48, 72, 96, 120, 144], 6 / 6),
        ([500], 0.0),  # nothing within the last week
        ([10], 1 / 7),
        ([-5, 1, 2], 2 / (2 / 24)),  # a date in the future is ignored
    ],
)
def test_items_per_day(ages_in_hours: list[float | None], expected: float | None) -> None:
    published = [None if age is None else NOW - age * HOUR for age in ages_in_hours]

    rate = items_per_day(published, now=NOW)

    assert rate == (None if expected is None else pytest.approx(expected))


@pytest.mark.parametrize(
    ("observed", "interval", "words"),
    [
        (Observations(INTERVAL, INTERVAL, first_check=True), INTERVAL, "not known yet"),
        (Observations(HOUR, INTERVAL, rate=24.0), HOUR, "publishes about 24.0 items a day"),
        (Observations(HOUR, INTERVAL, rate=2.0), 12 * HOUR, "about 2.0 items"),
        (Observations(HOUR, INTERVAL, rate=0.0), 1.5 * HOUR, "nothing dated"),
        (
            Observations(HOUR, INTERVAL, rate=1.0, new_items=0, listed_items=10),
            24 * HOUR,
            "all 10 items already seen",
        ),
        (
            Observations(4 * HOUR, INTERVAL, rate=2.0, new_items=8, listed_items=10),
            2 * HOUR,
            "8 of its 10 items were new: checking sooner",
        ),
        (
            # A first check finds every item new; that says nothing about missed items.
            Observations(
                4 * HOUR, INTERVAL, rate=2.0, new_items=10, listed_items=10, first_check=True
            ),
            12 * HOUR,
            "about 2.0 items",
        ),
        (
            Observations(HOUR, INTERVAL, rate=24.0, hint=Hint(3 * HOUR, "RSS ttl")),
            3 * HOUR,
            "one check per 3h at most (RSS ttl)",
        ),
        (Observations(HOUR, INTERVAL, rate=1000.0), timedelta(minutes=5), "minimum of 5m"),
        (Observations(HOUR, INTERVAL, rate=0.1), timedelta(days=1), "maximum of 1d"),
        (
            Observations(HOUR, INTERVAL, rate=24.0, hint=Hint(timedelta(weeks=1), "Expires")),
            timedelta(days=1),
            "maximum of 1d",
        ),
    ],
)
def test_plan_interval(observed: Observations, interval: timedelta, words: str) -> None:
    planned = plan_interval(observed, BOUNDS)

    assert planned.interval == interval
    assert words in planned.reason


@pytest.mark.parametrize(
    ("retry_after", "error_count", "expected"),
    [
        (timedelta(hours=2), 1, timedelta(hours=2)),
        (timedelta(seconds=30), 1, INTERVAL),  # never sooner than the backoff asks
        (timedelta(hours=2), 7, timedelta(hours=12)),
    ],
)
def test_retry_after_delays_at_least_that_long(
    retry_after: timedelta, error_count: int, expected: timedelta
) -> None:
    for seed in range(5):
        when = next_check_after_error(
            NOW,
            INTERVAL,
            error_count=error_count,
            max_backoff=timedelta(hours=12),
            rng=random.Random(seed),
            retry_after=retry_after,
        )
        assert when - NOW >= retry_after
        assert within_jitter(when - NOW, expected) or when - NOW == expected


@pytest.mark.parametrize("jitter", [0.0, 0.3])
def test_jitter_is_configurable(jitter: float) -> None:
    rng = random.Random(5)
    delays = [next_check_after_success(NOW, HOUR, rng=rng, jitter=jitter) - NOW for _ in range(50)]

    assert all(HOUR * (1 - jitter) <= delay <= HOUR * (1 + jitter) for delay in delays)
    assert (max(delays) - min(delays) > HOUR * 0.2) == (jitter > 0.1)
