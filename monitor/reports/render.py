"""Render a daily report: a standalone HTML page, an e-mail HTML body, plain text and JSON.

``render_report`` returns every part; the delivery outbox takes ``subject``, ``text`` and
``email_html`` from ``report_email`` once reports are e-mailed to reviewers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, TemplateError

from monitor.delivery.render import build_environment
from monitor.errors import ConfigError
from monitor.reports.build import DailyReport, TopicReport, report_payload
from monitor.reports.charts import sparkline, volume_svg, volume_table
from monitor.reports.health import format_duration

SUBJECT_PREFIX = "[monitor]"


@dataclass(frozen=True, slots=True)
class RenderedReport:
    """A report as a web page, an e-mail body, plain text and JSON."""

    subject: str
    html: str
    email_html: str
    text: str
    json: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ReportEmail:
    """What the outbox needs to e-mail a report to its reviewers."""

    recipients: tuple[str, ...]
    subject: str
    text: str
    html: str


def report_environment(override_dir: Path | None = None) -> Environment:
    """The digest templates' environment (same overrides, escaping), with the chart helpers."""
    env = build_environment(override_dir)
    env.globals.update(
        volume_svg=volume_svg, volume_table=volume_table, sparkline=sparkline, spread=spread
    )
    env.filters["duration"] = format_duration
    env.filters["number"] = number
    return env


def number(value: float | None, digits: int = 1) -> str:
    """A float with ``digits`` decimals, or an en dash when there is none."""
    return "\u2013" if value is None else f"{value:.{digits}f}"


def spread(topic: TopicReport) -> str:
    """The usual level in words: ``usually 3.1 ± 1.2 a day over 28 days``, or why there is none."""
    if topic.baseline is None:
        return "no usual level yet (too little history)"
    base = topic.baseline
    return f"usually {base.mean:.1f} ± {base.stdev:.1f} a day over {base.days} days"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def report_subject(report: DailyReport) -> str:
    """One line: the day, the spikes (the first three named), the feed problems."""
    spikes = report.spikes
    named = ", ".join(topic.name for topic in spikes[:3]) + (" and more" if len(spikes) > 3 else "")
    spike_part = _plural(len(spikes), "spike") + (f" ({named})" if spikes else "")
    day = f"{report.day:%a} {report.day.day} {report.day:%b %Y}"
    problems = _plural(report.health.problems, "feed problem")
    return f"{SUBJECT_PREFIX} Daily report {day}: {spike_part}, {problems}"


def render_report(report: DailyReport, env: Environment) -> RenderedReport:
    """Every rendered form of ``report``."""
    payload = report_payload(report)
    subject = report_subject(report)
    zone = report.rules.timezone
    context = {"report": report, "subject": subject, "zone": zone, "local": _local(zone)}
    try:
        html = env.get_template("report.html").render(context, email=False)
        email_html = env.get_template("report.html").render(context, email=True)
        text = env.get_template("report.txt").render(context)
    except TemplateError as exc:
        raise ConfigError("report template", f"cannot render: {exc}") from None
    document = json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
    return RenderedReport(subject, html, email_html, text, document, payload)


def report_email(rendered: RenderedReport, reviewers: Sequence[str]) -> ReportEmail:
    """The parts the delivery outbox sends to ``reviewers`` (nothing is sent here)."""
    return ReportEmail(tuple(reviewers), rendered.subject, rendered.text, rendered.email_html)


def _local(zone: str) -> Any:
    tz = ZoneInfo(zone)

    def local(value: datetime | None, fmt: str = "%d %b %H:%M") -> str:
        return value.astimezone(tz).strftime(fmt) if value is not None else ""

    return local
