"""Fixtures for report tests: the scenario stored and its report built."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from monitor.reports import DailyReport, build_report
from tests.reports.scenario import DAY, NOW, RULES, seed


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    """A database holding the scenario, committed."""
    with Session(engine) as session, session.begin():
        seed(session)
    return engine


@pytest.fixture
def scenario_report(seeded: Engine) -> Iterator[DailyReport]:
    """The scenario's report of ``DAY`` built at ``NOW``."""
    with Session(seeded) as session:
        yield build_report(session, day=DAY, rules=RULES, now=NOW)
