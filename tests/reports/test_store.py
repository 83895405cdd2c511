"""Stored reports: one row per local day, replaced when the day is built again."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import Session, func, select

from monitor.models import Report
from monitor.operations import build_daily_report, last_full_day
from monitor.reports import get_report, list_reports
from tests.reports.scenario import DAY, NOW, ZONE
from tests.utils.config import ConfigWriter


def test_building_a_day_again_replaces_its_report(seeded: Engine, config: ConfigWriter) -> None:
    config.extra_toml = f'[reports]\ntimezone = "{ZONE}"\nreviewers = ["ada@example.org"]\n'
    settings = config.settings()
    first = build_daily_report(seeded, settings, day=DAY, now=NOW)
    later = NOW + timedelta(hours=3)
    second = build_daily_report(seeded, settings, day=DAY, now=later)
    build_daily_report(seeded, settings, day=DAY - timedelta(days=1), now=later)
    with Session(seeded) as session:
        rows = session.exec(select(func.count()).select_from(Report).where(Report.day == DAY)).one()
        stored = get_report(session, DAY)
        days = [report.day for report in list_reports(session)]
    assert rows == 1
    assert stored is not None
    assert stored.generated_at == later
    assert stored.timezone == ZONE
    assert stored.payload == second.rendered.payload != first.rendered.payload
    assert (stored.html, stored.text) == (second.rendered.html, second.rendered.text)
    assert days == [DAY, DAY - timedelta(days=1)]
    assert second.email.recipients == ("ada@example.org",)


def test_the_default_day_is_the_last_full_local_day() -> None:
    # 05:00 UTC on the 10th is 07:00 in Berlin: the 9th is over. 21:30 UTC on the 9th is
    # still the 9th in New York (17:30), so the 8th is the last full day there.
    assert last_full_day(NOW, "Europe/Berlin") == DAY
    assert last_full_day(NOW - timedelta(hours=7, minutes=30), "America/New_York") == (
        DAY - timedelta(days=1)
    )
