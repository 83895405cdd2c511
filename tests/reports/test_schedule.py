"""The service's report job: it builds and stores the report of the local day that ended."""

from __future__ import annotations

import asyncio

from sqlalchemy import Engine
from sqlmodel import Session

from monitor.models import utcnow
from monitor.operations import last_full_day
from monitor.reports import get_report
from monitor.service import Service
from tests.utils.config import ConfigWriter


def test_report_tick_stores_yesterdays_report(engine: Engine, config: ConfigWriter) -> None:
    config.extra_toml = '[reports]\ntimezone = "Pacific/Auckland"\n'
    settings = config.settings()
    before = last_full_day(utcnow(), "Pacific/Auckland")
    asyncio.run(Service(engine, settings).report_tick())
    after = last_full_day(utcnow(), "Pacific/Auckland")
    with Session(engine) as session:
        # Both are the same day unless midnight in Auckland fell during the tick.
        stored = get_report(session, before) or get_report(session, after)
        day = before if get_report(session, before) else after
    assert stored is not None
    assert stored.timezone == "Pacific/Auckland"
    assert stored.payload["date"] == day.isoformat()
