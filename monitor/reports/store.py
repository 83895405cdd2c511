"""The report table: one row per local day, replaced when the day is built again."""

from __future__ import annotations

from datetime import date

from sqlmodel import Session, SQLModel, col, select

from monitor.db import dialect_insert
from monitor.models import Report
from monitor.reports.build import DailyReport
from monitor.reports.render import RenderedReport

REPORTS = SQLModel.metadata.tables["report"]


def save_report(session: Session, *, report: DailyReport, rendered: RenderedReport) -> Report:
    """Store the report of its day, replacing the one built before (an upsert on the day)."""
    values = {
        "day": report.day,
        "timezone": report.rules.timezone,
        "generated_at": report.generated_at,
        "payload": rendered.payload,
        "html": rendered.html,
        "text": rendered.text,
        "subject": rendered.subject,
        "email_html": rendered.email_html,
    }
    insert = dialect_insert(session, REPORTS).values(**values)
    updated = {key: getattr(insert.excluded, key) for key in values if key != "day"}
    session.execute(insert.on_conflict_do_update(index_elements=["day"], set_=updated))
    stored = get_report(session, report.day)
    assert stored is not None  # just written in this transaction
    return stored


def get_report(session: Session, day: date) -> Report | None:
    """The stored report of a local day, if it was built."""
    session.expire_all()
    return session.exec(select(Report).where(Report.day == day)).first()


def list_reports(session: Session, *, limit: int = 30) -> list[Report]:
    """The most recent stored reports, newest day first."""
    return list(session.exec(select(Report).order_by(col(Report.day).desc()).limit(limit)))
