"""The alerts inbox pages: per topic and day, the matched articles in story order with their
review state; bulk and one-at-a-time changes (CSRF-checked forms; ``static/inbox.js`` adds the
keyboard: j/k move, r/f/d set a state, x selects); filters, pages and CSV/JSON exports.

Every page works without JavaScript: each state change is a form button, and a change answers
with a redirect back to the view it came from (or JSON, when the script asks for it).
"""

# No ``from __future__ import annotations``: FastAPI must see the routes' annotations as objects.
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlmodel import Session

from monitor.errors import MonitorError, UsageError
from monitor.exports import csv_text
from monitor.models import Article, ReviewState, Topic
from monitor.reports.build import day_bounds, local_day
from monitor.review.inbox import (
    EXPORT_HEADER,
    InboxFilter,
    InboxItem,
    check_language,
    day_range,
    export_dicts,
    export_row,
    inbox_languages,
    inbox_page,
    iter_inbox,
    shift,
)
from monitor.review.store import ReviewCounts, review_counts, review_history, set_reviews
from monitor.sources.feeds import list_feeds
from monitor.topics.catalog import get_topic, list_topics
from monitor.web.pages import AdminVisit, CheckedVisit, Visit, WebPages

STATES = [state.value for state in ReviewState]
# The buttons of a change: value "STATE:ARTICLE" for one article, or "note:ARTICLE".
_ACTIONS = {"reviewed", "flagged", "dismissed", "new", "note"}


@dataclass(frozen=True, slots=True)
class StoryGroup:
    """Consecutive inbox items of one story (a story of one article is a group of one)."""

    story_id: int | None
    title: str
    outlets: int
    items: list[InboxItem]


def group_items(items: list[InboxItem]) -> tuple[list[StoryGroup], list[StoryGroup]]:
    """The page's items as story groups: the news, and the backlog apart."""
    news: list[StoryGroup] = []
    backlog: list[StoryGroup] = []
    for item in items:
        groups = backlog if item.article.backlog else news
        story_id = item.article.story_id
        if groups and story_id is not None and groups[-1].story_id == story_id:
            groups[-1].items.append(item)
            continue
        story = item.story
        title = (story.title if story else "") or item.article.title
        groups.append(StoryGroup(story_id, title, story.outlet_count if story else 1, [item]))
    return news, backlog


def inbox_routes(web: WebPages) -> APIRouter:
    """The /inbox routes of the web UI."""
    router = APIRouter()
    web.env.globals["inbox_url"] = inbox_url

    def zone() -> ZoneInfo:
        return ZoneInfo(web.settings.reports.timezone)

    @router.get("/inbox", response_class=HTMLResponse)
    def inbox(
        request: Request,
        visit: AdminVisit,
        topic: Annotated[str, Query(max_length=100)] = "",
        day: date | None = None,
        start: Annotated[date | None, Query(alias="from")] = None,
        end: Annotated[date | None, Query(alias="to")] = None,
        feed: Annotated[str, Query(max_length=12)] = "",  # "" from the form: any feed
        language: Annotated[str, Query(max_length=35)] = "",
        state: Annotated[list[ReviewState] | None, Query()] = None,
        cursor: Annotated[str | None, Query(max_length=40)] = None,
        format: Annotated[str, Query(pattern="^(html|csv|json)$")] = "html",
    ) -> Response:
        """The overview of a day (no topic), or one topic's inbox for the filter."""
        today = local_day(web.clock(), zone())
        try:
            first, last = day_range(day, start, end, today)
            lang = check_language(language) if language else None
            feed_id = _feed_id(feed)
        except UsageError as exc:
            return _error(web, request, visit, str(exc))
        if not topic:
            return overview(request, visit, first)
        with Session(web.engine) as session:
            found = get_topic(session, topic)
            if found is None:
                return web.render(request, visit, "error.html", 404, title="No such topic",
                                  message=f"There is no topic {topic!r}.")  # fmt: skip
            spec = InboxFilter(found.id or 0, first, last, web.settings.reports.timezone,
                               feed_id, lang, tuple(state or ()))  # fmt: skip
            if format != "html":
                return export(request, visit, session, spec, found, format)
            try:
                page = inbox_page(session, spec, cursor=cursor)
            except UsageError as exc:
                return _error(web, request, visit, str(exc))
            context = _list_context(session, spec)
        news, backlog = group_items(page.items)
        query = _query(found, spec)
        return web.render(
            request, visit, "inbox.html", topic=found, spec=spec, page=page, news=news,
            backlog=backlog, counts=page.counts, query=query, cursor=cursor,
            back=_path(query, cursor), today=today, states=STATES, **context,
        )  # fmt: skip

    def overview(request: Request, visit: Visit, day: date) -> Response:
        start, end = day_bounds(day, zone())
        with Session(web.engine) as session:
            topics = [t for t in list_topics(session) if t.enabled]
            counts = review_counts(session, start=start, end=end)
        rows = [(t, counts.get(t.id or 0, ReviewCounts())) for t in topics]
        return web.render(request, visit, "inbox_overview.html", day=day, rows=rows,
                          previous=shift(day, -1), next=shift(day, 1))  # fmt: skip

    @router.get("/inbox/{topic}/{day}", response_class=HTMLResponse)
    def inbox_day(request: Request, visit: AdminVisit, topic: str, day: date) -> Response:
        """One topic's inbox of one local day (the filters' shorthand)."""
        return inbox(request, visit, topic=topic, day=day)

    def export(request: Request, visit: Visit, session: Session, spec: InboxFilter,
               topic: Topic, kind: str) -> Response:  # fmt: skip
        items = list(iter_inbox(session, spec))
        name = f"inbox-{topic.slug}-{spec.first.isoformat()}"
        if spec.last != spec.first:
            name += f"-to-{spec.last.isoformat()}"
        if kind == "csv":
            body = csv_text(EXPORT_HEADER, (export_row(item, topic) for item in items))
            response: Response = Response(body, media_type="text/csv; charset=utf-8")
            response.headers["Content-Disposition"] = f'attachment; filename="{name}.csv"'
        else:
            response = JSONResponse({"topic": topic.slug, "from": spec.first.isoformat(),
                                     "to": spec.last.isoformat(),
                                     "items": export_dicts(items, topic)})  # fmt: skip
            response.headers["Content-Disposition"] = f'attachment; filename="{name}.json"'
        return web.finish(request, visit, response)

    @router.post("/inbox/review", response_class=HTMLResponse)
    async def review(request: Request, visit: CheckedVisit) -> Response:
        """Set the state (or note) of one article, or of the selected ones, then go back."""
        form = await request.form()
        wants_json = "application/json" in request.headers.get("accept", "")
        try:
            slug, ids, new_state, note = _change(form)
            with Session(web.engine) as session, session.begin():
                found = get_topic(session, slug)
                if found is None:
                    raise UsageError(f"no topic {slug!r}")
                reviews = set_reviews(session, topic_id=found.id or 0, article_ids=ids,
                                      state=new_state, note=note, by=visit.username or "",
                                      now=web.clock())  # fmt: skip
                changed = [{"article_id": r.article_id, "state": str(r.state), "note": r.note,
                            "updated_by": r.updated_by,
                            "updated_at": r.updated_at.isoformat()} for r in reviews]  # fmt: skip
        except MonitorError as exc:
            if wants_json:
                return web.finish(request, visit, JSONResponse({"error": str(exc)}, 400))
            return _error(web, request, visit, str(exc))
        if wants_json:
            return web.finish(request, visit, JSONResponse({"changed": changed}))
        back = str(form.get("back") or "/inbox")
        return web.redirect(request, visit, back if _is_inbox(back) else "/inbox")

    @router.get("/inbox/{topic}/articles/{article_id}/history", response_class=HTMLResponse)
    def history(request: Request, visit: AdminVisit, topic: str, article_id: int) -> Response:
        """Every change of one article's review for a topic."""
        with Session(web.engine) as session:
            found = get_topic(session, topic)
            article = session.get(Article, article_id) if article_id < 2**31 else None
            if found is None or article is None:
                return web.render(request, visit, "error.html", 404, title="Not found",
                                  message="No such topic or article.")  # fmt: skip
            events = review_history(session, topic_id=found.id or 0, article_id=article_id)
        day = local_day(article.first_seen_at, zone())
        return web.render(request, visit, "inbox_history.html", topic=found, article=article,
                          events=events, day=day)  # fmt: skip

    return router


def _change(form: Any) -> tuple[str, list[int], ReviewState | None, str | None]:
    """The topic, articles, state and note a review form asks for."""
    slug = str(form.get("topic") or "")
    one = str(form.get("set") or "")
    if one:
        action, _, raw_id = one.partition(":")
        if action not in _ACTIONS or not raw_id.isdigit():
            raise UsageError(f"review: not a change: {one[:40]!r}")
        if action == "note":
            return slug, [int(raw_id)], None, str(form.get(f"note-{raw_id}") or "")
        return slug, [int(raw_id)], ReviewState(action), None
    picked = [str(v) for v in form.getlist("article")]
    if not all(v.isdigit() and len(v) < 11 for v in picked):
        raise UsageError("review: a selected article is not an article id")
    bulk = str(form.get("state") or "")
    if bulk not in STATES:
        raise UsageError(f"review: not a state: {bulk[:40]!r} (one of {', '.join(STATES)})")
    if not picked:
        raise UsageError("review: select at least one article (the x key, or its checkbox)")
    return slug, [int(v) for v in picked], ReviewState(bulk), None


def _feed_id(value: str) -> int | None:
    """The feed filter's id; None for any feed."""
    if not value.strip():
        return None
    if not value.strip().isdigit() or not 0 < int(value) < 2**31:
        raise UsageError(f"inbox: not a feed id: {value[:12]!r}")
    return int(value)


def _is_inbox(target: str) -> bool:
    return target.startswith("/inbox") and not target.startswith("//") and "\\" not in target


def _error(web: WebPages, request: Request, visit: Visit, message: str) -> Response:
    return web.render(request, visit, "error.html", 400, title="Inbox", message=message)


def _list_context(session: Session, spec: InboxFilter) -> dict[str, Any]:
    feeds = [(f.id, f.title or f.url) for f in list_feeds(session)]
    topics = [(t.slug, t.name) for t in list_topics(session)]
    return {"feeds": feeds, "topics": topics, "languages": inbox_languages(session, spec)}


def _query(topic: Topic, spec: InboxFilter) -> list[tuple[str, str]]:
    """The filter as query parameters (without the cursor)."""
    params = [("topic", topic.slug), ("from", spec.first.isoformat()),
              ("to", spec.last.isoformat())]  # fmt: skip
    if spec.feed_id is not None:
        params.append(("feed", str(spec.feed_id)))
    if spec.language:
        params.append(("language", spec.language))
    params += [("state", state.value) for state in spec.states]
    return params


def _path(query: list[tuple[str, str]], cursor: str | None = None, **extra: str) -> str:
    params = list(query) + ([("cursor", cursor)] if cursor else []) + list(extra.items())
    return "/inbox?" + urlencode(params)


def inbox_url(query: list[tuple[str, str]], **extra: str) -> str:
    """The inbox URL of ``query`` with ``extra`` parameters (a cursor, a format)."""
    return _path(query, **extra)
