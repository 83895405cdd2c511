"""Feed health: each lasting problem is listed once, under its kind; passing trouble is not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.models import Feed, FeedState
from monitor.reports import DailyReport
from monitor.reports.health import (
    SightingRow,
    assess_feeds,
    format_duration,
    is_failing,
    last_polls_all_new,
    usual_gap,
)

T = datetime(2024, 9, 1, tzinfo=UTC)
H = timedelta(hours=1)


@pytest.mark.parametrize(
    ("title", "kind"),
    [
        ("Broken Gazette", "failing"),
        ("Quiet Courier", "silent"),
        ("Dead Link Times", "disabled"),
        ("Firehose Post", "all_new"),
        ("Blip Herald", None),  # one failed check two hours after a success
        ("Example News", None),
        ("Wire Service", None),
        ("Daily Planet", None),
    ],
)
def test_scenario_feed_health(scenario_report: DailyReport, title: str, kind: str | None) -> None:
    health = scenario_report.health
    kinds = {
        name: [p.title for p in problems]
        for name, problems in (
            ("failing", health.failing),
            ("silent", health.silent),
            ("disabled", health.disabled),
            ("all_new", health.all_new),
        )
    }
    listed = [name for name, titles in kinds.items() if title in titles]
    assert listed == ([kind] if kind else [])


@pytest.mark.parametrize(
    ("fields", "failing"),
    [
        ({"state": FeedState.ERRORING, "error_count": 1, "last_success_at": T - 2 * H}, False),
        ({"state": FeedState.ERRORING, "error_count": 30, "last_success_at": T - 23 * H}, False),
        ({"state": FeedState.ERRORING, "error_count": 4, "last_success_at": T - 25 * H}, True),
        # Never worked since it was added two days ago.
        ({"state": FeedState.ERRORING, "error_count": 8, "created_at": T - 48 * H}, True),
        ({"state": FeedState.ACTIVE, "error_count": 0, "last_success_at": T - 72 * H}, False),
    ],
)
def test_failing_means_for_longer_than_failing_for(
    fields: dict[str, object], failing: bool
) -> None:
    feed = Feed.model_validate({"url": "https://x.example/rss", "created_at": T - 90 * H, **fields})
    assert is_failing(feed, now=T, failing_for=24 * H) is failing


@pytest.mark.parametrize(
    ("offsets", "gap"),
    [
        ([0, 1, 2, 3, 4, 5], H),
        ([0, 1, 2, 3, 4], None),  # four gaps: too few to judge
        ([0, 1, 1, 2, 3, 4, 5], H),  # one poll bringing two items is one moment
        ([0, 1, 2, 10, 11, 12, 13], H),
    ],
)
def test_usual_gap_is_the_median(offsets: list[int], gap: timedelta | None) -> None:
    assert usual_gap([T + n * H for n in offsets]) == gap


@pytest.mark.parametrize(
    ("silence_hours", "silent"),
    [
        (3, False),  # within 4 x the usual hour
        (5, False),  # longer than 4 x, but a night without news was 8 hours
        (9, True),
    ],
)
def test_silent_needs_a_silence_longer_than_usual_and_than_any_before(
    silence_hours: int, silent: bool
) -> None:
    feed = Feed(id=1, url="https://x.example/rss", title="X")
    moments = [T + n * H for n in (0, 1, 2, 3, 4, 5, 13, 14, 15, 16, 17)]
    rows = [SightingRow(1, m, m + H) for m in moments]
    now = moments[-1] + silence_hours * H
    health = assess_feeds([feed], rows, now=now, failing_for=24 * H, silent_factor=4)
    assert bool(health.silent) is silent


def polls(*listing: tuple[int, int, int]) -> list[SightingRow]:
    """Sightings for ``(count, first poll hour, last poll hour)`` groups."""
    return [
        SightingRow(1, T + first * H, T + last * H)
        for count, first, last in listing
        for _ in range(count)
    ]


@pytest.mark.parametrize(
    ("rows", "items"),
    [
        (polls((3, 0, 0), (3, 1, 1), (3, 2, 2)), 3),
        (polls((3, 1, 1), (3, 2, 2)), None),  # the first poll of a feed: all new, naturally
        (polls((3, 0, 0), (3, 1, 2), (3, 2, 2)), None),  # last poll also listed older items
        (polls((3, 0, 0), (2, 0, 1), (3, 1, 1), (3, 2, 2)), None),  # the poll before did
        (polls((5, 0, 0), (1, 1, 1), (3, 2, 2)), 3),
    ],
)
def test_all_new_on_the_last_two_polls(rows: list[SightingRow], items: int | None) -> None:
    assert last_polls_all_new(rows) == items


@pytest.mark.parametrize(
    ("span", "text"),
    [
        (timedelta(minutes=45), "45m"),
        (timedelta(hours=5, minutes=10), "5h 10m"),
        (timedelta(days=3, hours=4, minutes=2), "3d 4h"),
        (timedelta(days=2), "2d"),
        (timedelta(seconds=20), "0m"),
    ],
)
def test_format_duration(span: timedelta, text: str) -> None:
    assert format_duration(span) == text
