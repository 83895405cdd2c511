"""Daily alert reports: per-topic volume against the usual level, spikes, feed health."""

from monitor.reports.build import SCHEMA_VERSION, DailyReport, ReportRules, build_report
from monitor.reports.render import (
    RenderedReport,
    ReportEmail,
    render_report,
    report_email,
    report_environment,
)
from monitor.reports.store import get_report, list_reports, save_report

__all__ = [
    "SCHEMA_VERSION",
    "DailyReport",
    "RenderedReport",
    "ReportEmail",
    "ReportRules",
    "build_report",
    "get_report",
    "list_reports",
    "render_report",
    "report_email",
    "report_environment",
    "save_report",
]
