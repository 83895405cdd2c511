"""Review counts in a stored report's payload brought up to date, for the web's report pages
(the stored payload keeps the counts of when it was built)."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from monitor.models import Topic
from monitor.reports.build import day_bounds
from monitor.review.store import review_counts


def with_live_reviews(session: Session, payload: dict[str, Any]) -> dict[str, Any]:
    """A copy of a report payload whose topics' ``reviewed`` counts are as of now."""
    try:
        day = date.fromisoformat(str(payload["date"]))
        zone = ZoneInfo(str(payload.get("timezone") or "UTC"))
    except (KeyError, ValueError):
        return payload
    start, end = day_bounds(day, zone)
    slugs = [str(t.get("slug")) for t in payload.get("topics", [])]
    ids = dict(session.exec(select(Topic.slug, Topic.id).where(col(Topic.slug).in_(slugs))).all())
    counts = review_counts(session, start=start, end=end, topic_ids=[i for i in ids.values() if i])
    fresh = copy.deepcopy(payload)
    for topic in fresh.get("topics", []):
        found = counts.get(ids.get(topic.get("slug")) or 0)
        topic["reviewed"] = found.done if found else 0
    return fresh
