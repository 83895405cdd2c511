"""The charts page: topics compared over a chosen range of days, and the share of their
matched articles by source."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from monitor.models import Topic
from monitor.reports.build import ReportRules, local_day
from monitor.reports.charts import SERIES_COLOURS, Line, Share, compare_svg, share_svg
from monitor.reports.volumes import MAX_RANGE_DAYS, days_between, source_counts, topic_day_counts
from monitor.topics.catalog import list_topics
from monitor.web.pages import AdminVisit, WebPages

DEFAULT_DAYS = 30
TOP_SOURCES = 10


def _parse_day(value: str, name: str, errors: list[str]) -> date | None:
    if not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        errors.append(f"{name}: {value.strip()!r} is not a date (use YYYY-MM-DD)")
        return None


def chart_routes(web: WebPages) -> APIRouter:
    """The ``/charts`` page."""
    router = APIRouter()

    @router.get("/charts", response_class=HTMLResponse)
    def charts(
        request: Request,
        visit: AdminVisit,
        topic: Annotated[list[str] | None, Query()] = None,
        since: str = "",
        until: str = "",
    ) -> Response:
        """Chosen topics' matches per day over a range, and their sources' shares."""
        rules = ReportRules.from_settings(web.settings.reports)
        today = local_day(web.clock(), rules.zone)
        errors: list[str] = []
        last = _parse_day(until, "To", errors) or today
        first = _parse_day(since, "From", errors) or last - timedelta(days=DEFAULT_DAYS - 1)
        if first > last:
            errors.append(f"From ({first}) is after To ({last}).")
        elif (last - first).days + 1 > MAX_RANGE_DAYS:
            errors.append(f"The range is longer than {MAX_RANGE_DAYS} days.")
        with Session(web.engine) as session:
            every = list_topics(session)
            wanted = set(topic or [])
            chosen = (
                [t for t in every if t.slug in wanted]
                if wanted
                else [t for t in every if t.enabled][: len(SERIES_COLOURS)]
            )
            context: dict[str, Any] = {
                "topics": every,
                "chosen": [t.slug for t in chosen],
                "since": first.isoformat(),
                "until": last.isoformat(),
                "errors": errors,
                "compare": None,
                "share": None,
            }
            if len(chosen) > len(SERIES_COLOURS):
                errors.append(f"Choose at most {len(SERIES_COLOURS)} topics.")
            if not errors and chosen:
                context.update(_charts(session, chosen, first, last, rules))
        return web.render(request, visit, "charts.html", 400 if errors else 200, **context)

    return router


def _charts(
    session: Session, chosen: list[Topic], first: date, last: date, rules: ReportRules
) -> dict[str, Any]:
    ids = [t.id or 0 for t in chosen]
    counts = topic_day_counts(session, ids, first=first, last=last, rules=rules)
    days = days_between(first, last)
    lines = [Line(t.name, [counts[t.id or 0][d] for d in days]) for t in chosen]
    sources, total = source_counts(session, ids, first=first, last=last, rules=rules,
                                   limit=TOP_SOURCES)  # fmt: skip
    shares = [Share(s.title or s.url, s.articles) for s in sources]
    rest = total - sum(s.articles for s in sources)
    if rest:
        shares.append(Share("all other sources", rest))
    label = f"Matched articles per day, {first} to {last}"
    return {
        "compare": compare_svg(days, lines, label=label),
        "share": share_svg(shares, total=total, label=f"Share by source, {first} to {last}"),
        "lines": lines,
        "days": days,
        "shares": shares,
        "total": total,
    }
