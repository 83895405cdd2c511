"""The web's archive queries: /search and the topic editor's live preview, with filters (topic,
date range, feed, site, language), cursor pages to the end, and ``?format=csv`` / ``json``
exports of every match of the current filter, streamed a page at a time.

The filters are the query language's own clauses (``site:``, ``feed:``, ``lang:``, and the
topic's current query), ANDed with the query, so a filter means here what it means in a topic.
The date range is local days in ``reports.timezone``: from the first day's start to the last
day's end.
"""

# No ``from __future__ import annotations``: the routes' parameters are annotated with the
# dependency handed in, which FastAPI must see as an object, not as a name to look up.
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from markupsafe import Markup
from sqlalchemy import Engine
from sqlmodel import Session

from monitor.cursor import Position
from monitor.errors import MonitorError
from monitor.exports import csv_chunks, json_document_chunks
from monitor.reports.build import DayCount, day_bounds, local_day
from monitor.reports.charts import volume_svg
from monitor.sources.feeds import list_feeds
from monitor.topics.catalog import get_topic, list_topics
from monitor.topics.query import Node, QuerySyntaxError, parse_query
from monitor.topics.results import (
    COLUMNS,
    every_match,
    filtered_query,
    later_bound,
    record_row,
    result_page,
    sample_record,
)
from monitor.topics.tagging import Backtest

if TYPE_CHECKING:  # pages.py imports this module: a type only, not a run-time import
    from monitor.web.pages import WebPages

PREVIEW_DAYS = 30
PREVIEW_SAMPLES = 10
SEARCH_LIMIT = 50
# The longest date range one search covers (a scan over more would hold a worker too long).
MAX_RANGE_DAYS = 366
EXPORT_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


@dataclass(frozen=True, slots=True)
class SearchForm:
    """What a search asks: the query, the filters, and where the page starts."""

    query: str = ""
    topic: str = ""
    start: str = ""
    end: str = ""
    feed: str = ""
    site: str = ""
    lang: str = ""
    cursor: str = ""

    def link(self, path: str, *, query_name: str = "q", **changes: str) -> str:
        """``path`` with this form (fields changed by ``changes``; other names in ``changes``
        added, as ``format``) as its query string, empty values left out; the query is named
        ``query_name`` (``q`` on /search, ``query`` for the preview)."""
        names = set(asdict(self))
        values = asdict(replace(self, **{k: v for k, v in changes.items() if k in names}))
        values |= {k: v for k, v in changes.items() if k not in names}
        values[query_name] = values.pop("query")
        # The date fields are "from" and "to" in URLs, as the form names them.
        values["from"], values["to"] = values.pop("start"), values.pop("end")
        order = [query_name, "topic", "from", "to", "feed", "site", "lang", "cursor"]
        keys = order + [key for key in values if key not in order]
        shown = [(key, values[key]) for key in keys if values.get(key)]
        return path + ("?" + urlencode(shown) if shown else "")

    def filtered(self) -> bool:
        """Whether any filter besides the query (and the page) is set."""
        return any((self.topic, self.start, self.end, self.feed, self.site, self.lang))


@dataclass(frozen=True, slots=True)
class Plan:
    """A search resolved: the query with its filters, the window and the page's start."""

    node: Node
    since: datetime
    before: Position | None
    first_day: date
    last_day: date
    end: Position


@dataclass(frozen=True, slots=True)
class Preview:
    """What a search or the topic editor shows: an error, or counts, a chart and a page."""

    query: str
    error: QuerySyntaxError | None = None
    result: Backtest | None = None
    chart: Markup | None = None
    since: date | None = None
    until: date | None = None
    problem: str | None = None
    form: SearchForm = field(default_factory=SearchForm)
    next_cursor: str | None = None
    # A later page: its counts are of the matches older than the page before.
    paged: bool = False


def _day(value: str, name: str) -> date | None:
    if not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise MonitorError(f"{name}: {value.strip()[:40]!r} is not a date (YYYY-MM-DD)") from None


def plan_search(
    session: Session, form: SearchForm, *, now: datetime, zone: ZoneInfo
) -> Plan | None:
    """The search ``form`` asks for (None: nothing asked yet); QuerySyntaxError for a broken
    query, MonitorError naming the field for a bad filter."""
    node = parse_query(form.query) if form.query.strip() else None
    topic_node = None
    if form.topic.strip():
        topic = get_topic(session, form.topic.strip())
        if topic is None:
            raise MonitorError(f"topic: there is no topic {form.topic.strip()!r}")
        topic_node = parse_query(topic.query)
    combined = filtered_query(
        node, topic=topic_node, site=form.site, feed=form.feed, language=form.lang
    )
    if combined is None:
        return None
    today = local_day(now, zone)
    last = _day(form.end, "to") or today
    first = _day(form.start, "from") or last - timedelta(days=PREVIEW_DAYS - 1)
    if first > last:
        raise MonitorError(f"from: {first.isoformat()} is after to: {last.isoformat()}")
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise MonitorError(f"from, to: at most {MAX_RANGE_DAYS} days at a time")
    since, _ = day_bounds(first, zone)
    _, until = day_bounds(last, zone)
    end: Position = (until, 0)  # strictly before the end of the last day
    before = later_bound(end, form.cursor.strip() or None)
    return Plan(combined, since, before, first, last, end)


def run_search(
    session: Session, form: SearchForm, *, limit: int, now: datetime, timezone: str
) -> Preview:
    """One page of what ``form`` matches, with counts per day and a chart on the first page."""
    zone = ZoneInfo(timezone)
    try:
        plan = plan_search(session, form, now=now, zone=zone)
    except QuerySyntaxError as exc:
        return Preview(form.query, error=exc, form=form)
    except MonitorError as exc:
        return Preview(form.query, problem=str(exc), form=form)
    if plan is None:
        return Preview(form.query, form=form)
    page = result_page(session, plan.node, since=plan.since, limit=limit, timezone=timezone,
                       before=plan.before)  # fmt: skip
    paged = bool(form.cursor.strip())
    days = (
        plan.first_day + timedelta(days=n) for n in range((plan.last_day - plan.first_day).days + 1)
    )
    series = [DayCount(day, page.result.per_day.get(day, 0), False) for day in days]
    label = f"Matches per day, {plan.first_day.isoformat()} to {plan.last_day.isoformat()}"
    chart = None if paged else volume_svg(series, label=label)
    return Preview(form.query, result=page.result, chart=chart, since=plan.first_day,
                   until=plan.last_day, form=form, next_cursor=page.next_cursor,
                   paged=paged)  # fmt: skip


def export_chunks(
    engine: Engine, plan: Plan, form: SearchForm, kind: str, timezone: str
) -> Iterator[str]:
    """Every match of the plan's filter (from its first page, whatever the cursor) as CSV or
    one JSON document, a chunk at a time."""
    records = (
        sample_record(sample)
        for sample in every_match(engine, plan.node, since=plan.since, before=plan.end)
    )
    if kind == "csv":
        return csv_chunks(COLUMNS, (record_row(record) for record in records))
    head: dict[str, object] = {
        "query": str(plan.node),
        "from": plan.first_day.isoformat(),
        "to": plan.last_day.isoformat(),
        "timezone": timezone,
        "filters": {name: value for name, value in asdict(form).items()
                    if value and name not in ("query", "cursor")},
    }  # fmt: skip
    return json_document_chunks(head, "articles", records)


def search_routes(web: "WebPages", admin: Any) -> APIRouter:
    """/search and /topics/preview on the pages' ``web`` (monitor.web.pages.WebPages);
    ``admin`` is the signed-in visit's dependency."""
    router = APIRouter()

    def choices() -> dict[str, Any]:
        with Session(web.engine) as session:
            topics = list_topics(session)
            feeds = list_feeds(session)
        return {"topics": topics, "feed_names": sorted({f.title or f.url for f in feeds})}

    def search_page(request: Request, visit: Any, form: SearchForm) -> Response:
        with Session(web.engine) as session:
            preview = run_search(session, form, limit=SEARCH_LIMIT, now=web.clock(),
                                 timezone=web.settings.reports.timezone)  # fmt: skip
        status = 400 if preview.problem or preview.error else 200
        return web.render(request, visit, "search.html", status, query=form.query, preview=preview,
                          form=form, **choices())  # fmt: skip

    def export(request: Request, visit: Any, form: SearchForm, kind: str) -> Response:
        zone_name = web.settings.reports.timezone
        with Session(web.engine) as session:
            try:
                plan = plan_search(session, form, now=web.clock(), zone=ZoneInfo(zone_name))
            except MonitorError:  # a broken query or filter: the page says what and where
                plan = None
        if plan is None:
            return search_page(request, visit, form)
        stamp = web.clock().strftime("%Y%m%d-%H%M")
        response = StreamingResponse(export_chunks(web.engine, plan, form, kind, zone_name),
                                     media_type=EXPORT_TYPES[kind])  # fmt: skip
        response.headers["Content-Disposition"] = (
            f'attachment; filename="monitor-search-{stamp}.{kind}"'
        )
        return web.finish(request, visit, response)

    @router.get("/search", response_class=HTMLResponse)
    def search(
        request: Request,
        visit: Annotated[Any, admin],
        q: str = "",
        topic: str = "",
        start: Annotated[str, Query(alias="from")] = "",
        end: Annotated[str, Query(alias="to")] = "",
        feed: str = "",
        site: str = "",
        lang: str = "",
        cursor: str = "",
        output: Annotated[str, Query(alias="format")] = "",
    ) -> Response:
        """Search stored articles with the query language and filters, a page at a time; with
        ``format=csv`` or ``json``, every match of the filter as a download."""
        form = SearchForm(q, topic, start, end, feed, site, lang, cursor)
        kind = output.strip().lower()
        if kind in EXPORT_TYPES:
            return export(request, visit, form, kind)
        if kind and kind != "html":
            visit.notices.append(f"format: {kind[:20]!r} is not csv or json; showing the page.")
        return search_page(request, visit, form)

    @router.get("/topics/preview", response_class=HTMLResponse)
    def topic_preview(
        request: Request,
        visit: Annotated[Any, admin],
        query: str = "",
        topic: str = "",
        start: Annotated[str, Query(alias="from")] = "",
        end: Annotated[str, Query(alias="to")] = "",
        feed: str = "",
        site: str = "",
        lang: str = "",
        cursor: str = "",
    ) -> Response:
        """The preview fragment for ``query`` and the filters (the editor's script swaps it in
        as you type, and pages it in place)."""
        form = SearchForm(query, topic, start, end, feed, site, lang, cursor)
        with Session(web.engine) as session:
            preview = run_search(session, form, limit=PREVIEW_SAMPLES, now=web.clock(),
                                 timezone=web.settings.reports.timezone)  # fmt: skip
        return web.render(request, visit, "_preview.html", preview=preview)

    return router
