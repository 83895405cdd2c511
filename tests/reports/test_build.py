"""The report's numbers: local days, usual levels, z, spikes, stories, on the scenario too."""

from __future__ import annotations

import statistics
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from monitor.reports import build_report
from monitor.reports.build import (
    Baseline,
    DailyReport,
    ReportRules,
    TopicReport,
    day_bounds,
    first_full_day,
    is_spike,
    story_key,
    usual_level,
    volume_series,
    z_score,
)
from tests.reports.scenario import DAY, NOW, PATTERN, SPIKE_COUNT

BERLIN = ZoneInfo("Europe/Berlin")
D = date(2024, 3, 1)


@pytest.mark.parametrize(
    ("day", "zone", "start", "hours"),
    [
        (date(2024, 9, 9), "Europe/Berlin", datetime(2024, 9, 8, 22, tzinfo=UTC), 24),
        (date(2024, 3, 31), "Europe/Berlin", datetime(2024, 3, 30, 23, tzinfo=UTC), 23),
        (date(2024, 10, 27), "Europe/Berlin", datetime(2024, 10, 26, 22, tzinfo=UTC), 25),
        (date(2024, 9, 9), "America/New_York", datetime(2024, 9, 9, 4, tzinfo=UTC), 24),
        (date(2024, 9, 9), "UTC", datetime(2024, 9, 9, tzinfo=UTC), 24),
    ],
)
def test_day_bounds_are_local_midnights(day: date, zone: str, start: datetime, hours: int) -> None:
    begin, end = day_bounds(day, ZoneInfo(zone))
    assert begin == start
    assert end - begin == timedelta(hours=hours)


@pytest.mark.parametrize(
    ("created", "first"),
    [
        (datetime(2024, 9, 8, 22, 0, tzinfo=UTC), date(2024, 9, 9)),  # local midnight
        (datetime(2024, 9, 8, 22, 1, tzinfo=UTC), date(2024, 9, 10)),
        (datetime(2024, 9, 8, 21, 59, tzinfo=UTC), date(2024, 9, 9)),  # 23:59 the day before
    ],
)
def test_first_full_day_skips_a_partial_creation_day(created: datetime, first: date) -> None:
    assert first_full_day(created, BERLIN) == first


def days(*counts: int, start: date = D) -> dict[date, int]:
    """Counts for consecutive days from ``start``."""
    return {start + timedelta(days=i): n for i, n in enumerate(counts)}


@pytest.mark.parametrize(
    ("counts", "day", "window", "since", "expected"),
    [
        # Seven days of 1..7: mean 4, population stdev 2.
        (days(1, 2, 3, 4, 5, 6, 7), D + timedelta(days=7), 28, D, Baseline(7, 4.0, 2.0)),
        # Days without articles count as zeros.
        (
            days(7),
            D + timedelta(days=7),
            28,
            D,
            Baseline(7, 1.0, statistics.pstdev([7, 0, 0, 0, 0, 0, 0])),
        ),
        # Only the last `window` days.
        (days(100, 1, 1, 1, 1, 1, 1, 1), D + timedelta(days=8), 7, D, Baseline(7, 1.0, 0.0)),
        # Not before the topic existed.
        (
            days(100, 100, 2, 2, 2, 2, 2, 2, 2),
            D + timedelta(days=9),
            28,
            D + timedelta(days=2),
            Baseline(7, 2.0, 0.0),
        ),
        # Too little history: no usual level.
        (days(1, 1, 1, 1, 1, 1), D + timedelta(days=6), 28, D, None),
        # The day itself is never part of its own baseline.
        (days(0, 0, 0, 0, 0, 0, 0, 50), D + timedelta(days=7), 28, D, Baseline(7, 0.0, 0.0)),
    ],
)
def test_usual_level(
    counts: dict[date, int], day: date, window: int, since: date, expected: Baseline | None
) -> None:
    assert usual_level(counts, day, days=window, since=since) == expected


@pytest.mark.parametrize(
    ("count", "baseline", "z"),
    [
        (10, Baseline(28, 4.0, 2.0), 3.0),
        (2, Baseline(28, 4.0, 2.0), -1.0),
        # A spread below one article counts as one: a flat history gives a finite z.
        (5, Baseline(28, 3.0, 0.0), 2.0),
        (5, Baseline(28, 3.0, 0.5), 2.0),
        (3, Baseline(28, 3.0, 0.0), 0.0),
        (9, None, None),
    ],
)
def test_z_score(count: int, baseline: Baseline | None, z: float | None) -> None:
    assert z_score(count, baseline) == z


@pytest.mark.parametrize(
    ("count", "z", "spike"),
    [
        (5, 3.0, True),  # both thresholds met exactly
        (4, 9.0, False),  # too few articles, however unusual
        (50, 2.99, False),  # many articles, but usual for this topic
        (50, None, False),  # no usual level yet
    ],
)
def test_spike_rule(count: int, z: float | None, spike: bool) -> None:
    assert is_spike(count, z, ReportRules()) is spike


def test_volume_series_marks_each_day_against_its_own_baseline() -> None:
    counts = days(*([1] * 20), 9, 1, 1)
    series = volume_series(counts, D + timedelta(days=22), ReportRules(chart_days=10), since=D)
    assert len(series) == 10
    assert series[-1].day == D + timedelta(days=22)
    assert [d.day for d in series if d.spike] == [D + timedelta(days=20)]
    assert [d.articles for d in series] == [1] * 7 + [9, 1, 1]


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (("Élection: Kremlin denies it!", "h1"), ("election  kremlin DENIES it", "h2"), True),
        (("Kremlin denies", "h1"), ("Kremlin denies claims", "h1"), False),
        (("", "h1"), ("", "h1"), True),
        (("", "h1"), ("", "h2"), False),
    ],
)
def test_story_key(a: tuple[str, str], b: tuple[str, str], same: bool) -> None:
    assert (story_key(*a) == story_key(*b)) is same


def topic(report: DailyReport, slug: str) -> TopicReport:
    """The section of one topic."""
    return next(t for t in report.topics if t.slug == slug)


def test_scenario_counts_baselines_and_spikes(scenario_report: DailyReport) -> None:
    election = topic(scenario_report, "election-interference")
    # 00:30 local on DAY is 22:30 UTC the day before; 00:10 local the day after is not in.
    assert election.articles == SPIKE_COUNT
    assert election.stories == SPIKE_COUNT - 2  # three copies of one story
    expected = [PATTERN[back % 7] for back in range(1, 29)]
    assert election.baseline is not None
    assert election.baseline.days == 28
    assert election.baseline.mean == pytest.approx(statistics.fmean(expected))
    assert election.baseline.stdev == pytest.approx(statistics.pstdev(expected))
    assert election.z == pytest.approx((12 - 11 / 7) / 1.0)
    assert election.spike
    # The 23:50 local article of the day before counts there, not on DAY.
    assert election.series[-2].articles == PATTERN[1]
    assert [d.articles for d in election.series if d.articles == 0] == [0] * 4

    banks = topic(scenario_report, "central-banks")
    assert (banks.articles, banks.z, banks.spike) == (3, 0.0, False)
    assert banks.baseline == Baseline(28, 3.0, 0.0)

    # Created mid-window: its usual level is the 9 full days it existed (1 a day), not the
    # retagged history of 4 a day before that.
    climate = topic(scenario_report, "climate-risk")
    assert climate.baseline == Baseline(9, 1.0, 0.0)
    assert (climate.articles, climate.z, climate.spike) == (6, 5.0, True)

    debris = topic(scenario_report, "space-debris")
    assert (debris.articles, debris.stories, debris.spike) == (0, 0, False)
    assert [d.articles for d in debris.series] == [0] * 30
    assert [t.slug for t in scenario_report.spikes] == ["election-interference", "climate-risk"]


def test_scenario_top_stories_sources_and_priority_articles(scenario_report: DailyReport) -> None:
    election = topic(scenario_report, "election-interference")
    top = [(s.title, s.outlets, s.articles) for s in election.top_stories[:3]]
    assert top == [
        ("Officials warn of election interference by troll farms", 3, 3),
        ("Kremlin denies meddling claims", 2, 1),
        ("Vote counting starts amid interference fears", 1, 1),
    ]
    assert len(election.top_stories) == 5
    assert [(s.title, s.articles) for s in election.top_sources] == [
        ("Example News", 5),
        ("Wire Service", 5),
        ("Daily Planet", 3),
    ]
    assert len(election.priority_articles) == SPIKE_COUNT
    assert election.priority_articles[0].title == "Election watch update 7"
    # Only high-priority topics list every article.
    assert topic(scenario_report, "central-banks").priority_articles == []


def test_a_report_day_in_another_zone_counts_other_articles(seeded: Engine) -> None:
    with Session(seeded) as session:
        utc = build_report(session, day=DAY, rules=ReportRules(timezone="UTC"), now=NOW)
    election = topic(utc, "election-interference")
    titles = {a.title for a in election.priority_articles}
    # In UTC, 00:30 Berlin falls on the day before, and 00:10 Berlin the next day on DAY.
    assert "Vote counting starts amid interference fears" not in titles
    assert "Late count update" in titles
    assert election.series[-2].articles == PATTERN[1] + 1
