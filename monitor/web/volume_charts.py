"""The charts the topic pages draw from stored matches (the topic's last 90 days), apart from
the routes so that ``pages.py`` and ``chart_pages.py`` can both use them."""

from __future__ import annotations

from datetime import datetime

from markupsafe import Markup
from sqlmodel import Session

from monitor.models import Topic
from monitor.reports.build import ReportRules, local_day
from monitor.reports.charts import volume_svg
from monitor.reports.volumes import topic_volume
from monitor.settings import Settings

TOPIC_DAYS = 90


def topic_volume_chart(
    session: Session, topic: Topic, settings: Settings, *, now: datetime, days: int = TOPIC_DAYS
) -> Markup:
    """``topic``'s stored matches per day over the last ``days`` days (today so far last),
    with its usual level as a band and its spike days in red."""
    rules = ReportRules.from_settings(settings.reports)
    today = local_day(now, rules.zone)
    series = topic_volume(session, topic, last=today, days=days, rules=rules)
    return volume_svg(series, label=f"{topic.name}: matched articles per day, last {days} days")
