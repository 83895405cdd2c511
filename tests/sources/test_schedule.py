"""When a feed is checked next: the interval with jitter, and a capped doubling after errors."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from monitor.sources.schedule import next_check_after_error, next_check_after_success

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
