"""The server-rendered web UI: sign-in, dashboard, reports, topics, feeds, subscribers, search,
articles.

Every page works without JavaScript; ``static/app.js`` only adds the topic editor's live
preview, which fetches the same server-rendered fragment a "Preview" button would show. Feed
content reaches the pages only through Jinja2's autoescaping (and ``highlight``, which escapes
too), and links from feeds only when they are http(s), so no markup from a feed ever runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, FastAPI, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape
from pydantic import BaseModel
from sqlalchemy import Engine, func, not_
from sqlmodel import Session, col, select

from monitor.delivery.channels.store import list_channels
from monitor.delivery.subscriptions import (
    check_email,
    check_send_time,
    check_timezone,
    get_subscriber,
    list_subscriptions,
    make_schedule,
    subscribe_topics,
    time_zones,
    unsubscribe,
)
from monitor.errors import MonitorError
from monitor.models import (
    Article,
    Frequency,
    Match,
    Report,
    Subscriber,
    Topic,
    TopicPriority,
)
from monitor.operations import retag_pending_topics
from monitor.pages.health import page_health
from monitor.reports.build import DayCount, day_bounds, local_day
from monitor.reports.charts import volume_svg
from monitor.reports.store import get_report, list_reports
from monitor.review.report import with_live_reviews
from monitor.review.store import ReviewCounts, review_counts
from monitor.settings import Settings
from monitor.sources.admission import HostResolver, refused_address, system_addresses
from monitor.sources.feeds import add_feed, check_feed_url, list_feeds, set_fetch_pages
from monitor.sources.guard import AddressPolicy
from monitor.sources.health import feed_health
from monitor.sources.opml import OpmlFeed, read_opml, write_opml
from monitor.text import shorten
from monitor.topics.catalog import apply_changes, create_topic, get_topic, list_topics
from monitor.topics.matcher import Span
from monitor.topics.query import parse_query
from monitor.untrusted import strip_controls
from monitor.web.auth import (
    SessionCodec,
    Throttle,
    WebSession,
    authenticate,
    end_session,
    session_user,
    start_session,
)
from monitor.web.channel_pages import channel_routes
from monitor.web.csrf import FIELD, HEADER, csrf_token, csrf_valid, notice_valid
from monitor.web.search_pages import PREVIEW_SAMPLES, Preview, SearchForm, run_search, search_routes
from monitor.web.volume_charts import TOPIC_DAYS, topic_volume_chart

COOKIE = "monitor_session"
STATIC_DIR = Path(__file__).parent / "static"
MAX_OPML_BYTES = 5_000_000
# Pages show admin data: no caching, no framing, scripts and styles from this site only.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}


def highlight(text: str, ranges: Sequence[Sequence[int]]) -> Markup:
    """``text`` escaped, with the character ranges wrapped in ``<mark>``."""
    parts: list[str] = []
    at = 0
    for start, end in sorted((int(r[0]), int(r[1])) for r in ranges):
        if start < at or end <= start:
            continue  # overlapping or empty: the first range wins
        parts += [str(escape(text[at:start])), f"<mark>{escape(text[start:end])}</mark>"]
        at = end
    parts.append(str(escape(text[at:])))
    return Markup("".join(parts))


def field_ranges(spans: Sequence[Any], name: str) -> list[tuple[int, int]]:
    """The ``(start, end)`` ranges in field ``name`` of Spans or ``[field, start, end]`` lists."""
    ranges = []
    for span in spans:
        field_name, start, end = (
            (span.field, span.start, span.end) if isinstance(span, Span) else span
        )
        if field_name == name:
            ranges.append((int(start), int(end)))
    return ranges


def safe_url(url: str | None) -> str | None:
    """``url`` when it is http(s), so a ``javascript:`` link from a feed is never a link."""
    if not url:
        return None
    return url if urlsplit(url.strip()).scheme.lower() in ("http", "https") else None


def shown_text(value: Any) -> Any:
    """Every value a page prints, text without control characters or bidi overrides (feed text
    an older version stored); removing characters from Markup adds no markup to it."""
    if isinstance(value, Markup):
        return Markup(strip_controls(str(value)))
    return strip_controls(value) if isinstance(value, str) else value


def page_environment() -> Environment:
    """The Jinja2 environment of the web pages (autoescaped, undefined names are errors)."""
    env = Environment(
        loader=PackageLoader("monitor", "templates/web"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=shown_text,
    )
    env.filters["highlight"] = highlight
    env.filters["safe_url"] = safe_url
    env.filters["field_ranges"] = field_ranges
    env.filters["shorten"] = shorten
    env.filters["when"] = lambda value: value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"
    return env


@dataclass
class Visit:
    """One request's session: who is signed in, the CSRF token, and whether to (re)set it."""

    session: WebSession
    username: str | None
    csrf: str
    fresh: bool = False
    notices: list[str] = field(default_factory=list)


class LoginRequiredError(Exception):
    """The page needs a signed-in admin."""

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.target = target


class CsrfRefusedError(Exception):
    """A state-changing request without the session's CSRF token."""


class WebPages:
    """The pages, sharing settings, engine, templates, the session codec and the clock."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        secret_key: str,
        clock: Callable[[], datetime],
        resolve: HostResolver = system_addresses,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.secret_key = secret_key
        self.clock = clock
        self.resolve = resolve
        self.env = page_environment()
        web = settings.web
        self.codec = SessionCodec(secret_key, lifetime=web.session_lifetime)
        self.throttle = Throttle(web.login_max_failures, web.login_window)
        self.policy = AddressPolicy.from_strings(settings.fetch.allow_networks)

    # --- sessions -------------------------------------------------------------------------

    def visit(self, request: Request) -> Visit:
        """The request's session (a new anonymous one when it has none or a bad one)."""
        loaded = self.codec.load(request.cookies.get(COOKIE))
        web = loaded or WebSession.anonymous()
        username = None
        if web.token is not None:
            lifetime = self.settings.web.session_lifetime
            user = session_user(self.engine, web, now=self.clock(), lifetime=lifetime)
            username = user.username if user else None
            if username is None:
                # Ended (signed out, a new password) or idle too long: the cookie is replaced.
                web = WebSession.anonymous()
        # Re-sent on every page: the lifetime counts from the last page, not the sign-in.
        return Visit(web, username, csrf_token(self.secret_key, web.nonce), fresh=True)

    def signed_in(self, request: Request) -> bool:
        """Whether the request carries the cookie of a live signed-in session (nothing is set:
        the JSON API and the Atom feeds read it, and answer without cookies)."""
        web = self.codec.load(request.cookies.get(COOKIE))
        if web is None or web.token is None:
            return False
        lifetime = self.settings.web.session_lifetime
        return session_user(self.engine, web, now=self.clock(), lifetime=lifetime) is not None

    def admin(self, request: Request) -> Visit:
        """The request's session, which must be signed in."""
        visit = self.visit(request)
        if visit.username is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise LoginRequiredError(target)
        return visit

    async def checked(self, request: Request) -> Visit:
        """The request's session, signed in, with the CSRF token in the form or header."""
        visit = self.admin(request)
        self.require_csrf(visit, await self._token(request))
        return visit

    async def checked_anonymous(self, request: Request) -> Visit:
        """The request's session, signed in or not, with the CSRF token (the sign-in form)."""
        visit = self.visit(request)
        self.require_csrf(visit, await self._token(request))
        return visit

    async def _token(self, request: Request) -> str | None:
        header = request.headers.get(HEADER)
        if header:
            return header
        form = await request.form()
        value = form.get(FIELD)
        return value if isinstance(value, str) else None

    def require_csrf(self, visit: Visit, token: str | None) -> None:
        """Raise CsrfRefusedError unless ``token`` belongs to the visit's session."""
        if not csrf_valid(self.secret_key, visit.session.nonce, token):
            raise CsrfRefusedError

    def secure(self, request: Request) -> bool:
        """Whether cookies must be marked Secure for this request."""
        mode = self.settings.web.secure_cookies
        if mode != "auto":
            return mode == "always"
        return request.url.scheme == "https" or self.settings.web.base_url.startswith("https:")

    def finish(self, request: Request, visit: Visit, response: Response) -> Response:
        """Attach the security headers and the (re-signed) session cookie."""
        response.headers.update(PAGE_HEADERS)
        if visit.fresh:
            response.set_cookie(
                COOKIE,
                self.codec.dump(visit.session),
                max_age=int(self.settings.web.session_lifetime.total_seconds()),
                httponly=True,
                samesite="lax",
                secure=self.secure(request),
                path="/",
            )
        return response

    def render(
        self, request: Request, visit: Visit, template: str, status: int = 200, **context: Any
    ) -> Response:
        """A page from ``template`` with the visit's user and CSRF token."""
        context.setdefault("notices", visit.notices)
        context.setdefault("errors", [])
        html = self.env.get_template(template).render(
            request_path=request.url.path, user=visit.username, csrf=visit.csrf, **context
        )
        return self.finish(request, visit, HTMLResponse(html, status_code=status))

    def redirect(self, request: Request, visit: Visit, target: str) -> Response:
        """A 303 to ``target`` (the browser GETs it), carrying the session cookie."""
        return self.finish(request, visit, RedirectResponse(target, status_code=303))

    # --- topics preview -------------------------------------------------------------------

    def preview(self, session: Session, query: str, *, limit: int = PREVIEW_SAMPLES) -> Preview:
        """Parse ``query`` and backtest it over the last PREVIEW_DAYS days of articles (the
        filters and pages are monitor.web.search_pages')."""
        return run_search(session, SearchForm(query), limit=limit, now=self.clock(),
                          timezone=self.settings.reports.timezone)  # fmt: skip


def _pages(request: Request) -> WebPages:
    pages = request.app.state.web_pages
    assert isinstance(pages, WebPages)
    return pages


def signed_in(request: Request) -> bool:
    """Whether ``request`` comes from a signed-in admin (False in an app without the pages)."""
    pages = getattr(request.app.state, "web_pages", None)
    return isinstance(pages, WebPages) and pages.signed_in(request)


def any_visit(request: Request) -> Visit:
    """Dependency: the request's session, signed in or not."""
    return _pages(request).visit(request)


def admin_visit(request: Request) -> Visit:
    """Dependency: the request's session, which must be signed in."""
    return _pages(request).admin(request)


async def checked_visit(request: Request) -> Visit:
    """Dependency: a signed-in session whose form carries its CSRF token."""
    return await _pages(request).checked(request)


async def login_visit(request: Request) -> Visit:
    """Dependency: any session whose form carries its CSRF token (the sign-in form)."""
    return await _pages(request).checked_anonymous(request)


AnyVisit = Annotated[Visit, Depends(any_visit)]
AdminVisit = Annotated[Visit, Depends(admin_visit)]
CheckedVisit = Annotated[Visit, Depends(checked_visit)]
LoginVisit = Annotated[Visit, Depends(login_visit)]


def _next_target(value: str) -> str:
    # Only a path on this site: "//evil.example" and "https://..." would leave it.
    if value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def _wait_text(wait: timedelta) -> str:
    seconds = max(1, math.ceil(wait.total_seconds()))
    if seconds < 60:
        return f"{seconds} seconds" if seconds != 1 else "1 second"
    minutes = -(-seconds // 60)
    return f"{minutes} minutes" if minutes != 1 else "1 minute"


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def install_pages(
    app: FastAPI,
    settings: Settings,
    engine: Engine,
    *,
    secret_key: str,
    clock: Callable[[], datetime],
    resolve: HostResolver = system_addresses,
) -> WebPages:
    """Add the UI's routes, static files and error handlers to ``app``."""
    web = WebPages(settings, engine, secret_key=secret_key, clock=clock, resolve=resolve)
    app.state.web_pages = web
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    async def login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequiredError)
        visit = web.visit(request)
        return web.redirect(request, visit, "/login?next=" + quote(exc.target, safe="/"))

    async def csrf_refused(request: Request, _exc: Exception) -> Response:
        visit = web.visit(request)
        message = (
            "This form was refused: it did not carry this session's security token. It may have "
            "expired, or come from another site. Go back, reload the page and try again."
        )
        return web.render(request, visit, "error.html", 403, title="Form refused", message=message)

    app.add_exception_handler(LoginRequiredError, login_required)
    app.add_exception_handler(CsrfRefusedError, csrf_refused)
    app.include_router(_auth_routes(web))
    app.include_router(_report_routes(web))
    # Before the topic routes: /topics/preview is not the topic "preview".
    app.include_router(search_routes(web, Depends(admin_visit)))
    app.include_router(_topic_routes(web))
    app.include_router(_feed_routes(web))
    app.include_router(_subscriber_routes(web))
    return web


def _auth_routes(web: WebPages) -> APIRouter:
    router = APIRouter()

    @router.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, visit: AnyVisit, next: str = "/") -> Response:
        """The sign-in form."""
        return web.render(request, visit, "login.html", next=_next_target(next), username="")

    @router.post("/login", response_class=HTMLResponse)
    def login(
        request: Request,
        visit: LoginVisit,
        username: Annotated[str, Form()] = "",
        password: Annotated[str, Form()] = "",
        next: Annotated[str, Form()] = "/",
    ) -> Response:
        """Sign in, unless this name or address failed too often lately."""
        now, address = web.clock(), _client_address(request)
        username = username.strip()
        with Session(web.engine) as session, session.begin():
            wait = web.throttle.wait(session, username=username, address=address, now=now)
            user = None
            if not wait:
                user = authenticate(session, username=username, password=password, now=now)
                if user is None:
                    web.throttle.record_failure(
                        session, username=username, address=address, now=now
                    )
                else:
                    web.throttle.forget(session, username=username, address=address)
            started = (
                start_session(session, user, now=now, lifetime=web.settings.web.session_lifetime)
                if user
                else None
            )
        context = {"next": _next_target(next), "username": username}
        if wait:
            error = f"Too many failed sign-ins from here. Try again in {_wait_text(wait)}."
            return web.render(request, visit, "login.html", 429, errors=[error], **context)
        if started is None:
            error = "Wrong user name or password."
            return web.render(request, visit, "login.html", 401, errors=[error], **context)
        visit = Visit(started, username, csrf_token(web.secret_key, started.nonce), True)
        return web.redirect(request, visit, _next_target(next))

    @router.post("/logout")
    def logout(request: Request, visit: CheckedVisit) -> Response:
        """Sign out: the session ends on the server, and the cookie becomes an anonymous one."""
        with Session(web.engine) as session, session.begin():
            end_session(session, visit.session)
        fresh = WebSession.anonymous()
        visit = Visit(fresh, None, csrf_token(web.secret_key, fresh.nonce), True)
        return web.redirect(request, visit, "/login")

    return router


def _today_counts(session: Session, start: datetime) -> dict[int, int]:
    statement = (
        select(Match.topic_id, func.count())
        .join(Article, col(Article.id) == Match.article_id)
        .where(col(Article.first_seen_at) >= start, not_(col(Article.backlog)))
        .group_by(col(Match.topic_id))
    )
    return {topic_id: int(count) for topic_id, count in session.exec(statement)}


def _charts(payload: dict[str, Any]) -> dict[str, Markup]:
    charts = {}
    for topic in payload.get("topics", []):
        series = [
            DayCount(
                date.fromisoformat(d["date"]),
                int(d["articles"]),
                bool(d["spike"]),
                d.get("mean"),
                d.get("stdev"),
            )
            for d in topic.get("series", [])
        ]
        charts[topic["slug"]] = volume_svg(series, label=f"{topic['name']}: articles per day")
    return charts


def _report_routes(web: WebPages) -> APIRouter:
    router = APIRouter()

    @router.get("/", response_class=HTMLResponse)
    def dashboard(request: Request, visit: AdminVisit) -> Response:
        """The latest report with its spikes, and today's matches so far."""
        zone = ZoneInfo(web.settings.reports.timezone)
        today = local_day(web.clock(), zone)
        with Session(web.engine) as session:
            latest = next(iter(list_reports(session, limit=1)), None)
            counts = _today_counts(session, day_bounds(today, zone)[0])
            topics = [t for t in list_topics(session) if t.enabled]
            start, end = day_bounds(today, zone)
            reviews = review_counts(session, start=start, end=end)
            payload = with_live_reviews(session, latest.payload) if latest else None
        return web.render(
            request, visit, "dashboard.html", report=payload,
            charts=_charts(payload) if payload else {}, today=today,
            today_rows=[(t, counts.get(t.id or 0, 0)) for t in topics],
            reviews={t.id: reviews.get(t.id or 0, ReviewCounts()) for t in topics},
        )  # fmt: skip

    @router.get("/reports", response_class=HTMLResponse)
    def reports(request: Request, visit: AdminVisit) -> Response:
        """Stored daily reports, newest first."""
        with Session(web.engine) as session:
            rows: list[Report] = list_reports(session, limit=366)
        return web.render(request, visit, "reports.html", reports=[r.payload for r in rows])

    @router.get("/reports/{day}", response_class=HTMLResponse)
    def report(request: Request, visit: AdminVisit, day: date) -> Response:
        """One day's stored report: per topic its volume chart, top stories and sources."""
        with Session(web.engine) as session:
            found = get_report(session, day)
            payload = with_live_reviews(session, found.payload) if found else {}
        if found is None:
            message = f"No report was built for {day.isoformat()}."
            return web.render(request, visit, "error.html", 404, title="No report", message=message)
        return web.render(request, visit, "report.html", report=payload, charts=_charts(payload))

    return router


class TopicForm(BaseModel):
    """The topic editor's fields; ``action`` is "save" or "preview" (the no-script button)."""

    slug: str = ""
    name: str = ""
    query: str = ""
    description: str = ""
    priority: TopicPriority = TopicPriority.NORMAL
    enabled: bool = False
    action: str = "save"


TopicFields = Annotated[TopicForm, Form()]


def _topic_form(topic: Topic | None = None) -> dict[str, Any]:
    if topic is None:
        return {"slug": "", "name": "", "description": "", "query": "", "priority": "normal",
                "enabled": True}  # fmt: skip
    return {"slug": topic.slug, "name": topic.name, "description": topic.description,
            "query": topic.query, "priority": str(topic.priority),
            "enabled": topic.enabled}  # fmt: skip


def _topic_routes(web: WebPages) -> APIRouter:
    router = APIRouter()

    @router.get("/topics", response_class=HTMLResponse)
    def topics(request: Request, visit: AdminVisit) -> Response:
        """Every topic, with its query and version."""
        with Session(web.engine) as session:
            rows = list_topics(session)
        return web.render(request, visit, "topics.html", topics=rows)

    @router.get("/topics/new", response_class=HTMLResponse)
    def new_topic(request: Request, visit: AdminVisit) -> Response:
        """An empty topic editor."""
        return web.render(request, visit, "topic_edit.html", creating=True, form=_topic_form(),
                          preview=Preview(""))  # fmt: skip

    @router.get("/topics/{slug}", response_class=HTMLResponse)
    def edit_topic(request: Request, visit: AdminVisit, slug: str, saved: bool = False) -> Response:
        """The editor of one topic, with the preview of its current query."""
        if saved:
            visit.notices.append("Saved.")
        with Session(web.engine) as session:
            topic = get_topic(session, slug)
            if topic is None:
                return web.render(request, visit, "error.html", 404, title="No such topic",
                                  message=f"There is no topic {slug!r}.")  # fmt: skip
            preview = web.preview(session, topic.query)
            volume = topic_volume_chart(session, topic, web.settings, now=web.clock())
        return web.render(request, visit, "topic_edit.html", creating=False,
                          form=_topic_form(topic), preview=preview, volume=volume,
                          volume_days=TOPIC_DAYS)  # fmt: skip

    @router.post("/topics", response_class=HTMLResponse)
    def add_topic(request: Request, visit: CheckedVisit, fields: TopicFields) -> Response:
        """Preview (the no-script button) or save a new topic, tagging recent articles."""
        return save_topic(request, visit, fields, slug=None)

    @router.post("/topics/{slug}", response_class=HTMLResponse)
    def change_topic(
        request: Request, visit: CheckedVisit, fields: TopicFields, slug: str
    ) -> Response:
        """Preview or save a topic; a new query bumps its version and retags recent articles."""
        return save_topic(request, visit, fields, slug=slug)

    def save_topic(
        request: Request, visit: Visit, fields: TopicForm, *, slug: str | None
    ) -> Response:
        creating = slug is None
        form: dict[str, Any] = {"slug": slug or fields.slug.strip(), "name": fields.name.strip(),
                                "query": fields.query, "description": fields.description.strip(),
                                "priority": str(fields.priority),
                                "enabled": fields.enabled}  # fmt: skip
        errors: list[str] = []
        if fields.action != "preview":
            try:
                _store_topic(web, form, creating=creating, priority=fields.priority)
            except MonitorError as exc:
                errors.append(str(exc))
            else:
                retag_pending_topics(web.engine, web.settings, now=web.clock())
                return web.redirect(request, visit, f"/topics/{quote(form['slug'])}?saved=1")
        with Session(web.engine) as session:
            preview = web.preview(session, fields.query)
        status = 400 if errors else 200
        return web.render(request, visit, "topic_edit.html", status, creating=creating,
                          form=form, preview=preview, errors=errors)  # fmt: skip

    return router


def _store_topic(
    web: WebPages, form: dict[str, Any], *, creating: bool, priority: TopicPriority
) -> None:
    now = web.clock()
    with Session(web.engine) as session, session.begin():
        if creating:
            topic = create_topic(session, slug=form["slug"], name=form["name"],
                                 query=form["query"], description=form["description"],
                                 priority=priority, now=now)  # fmt: skip
            topic.enabled = form["enabled"]
            session.add(topic)
            return
        found = get_topic(session, form["slug"])
        if found is None:
            raise MonitorError(f"no topic {form['slug']!r}")
        parse_query(form["query"])  # a broken query is refused before anything changes
        apply_changes(found, query=form["query"].strip(), name=form["name"] or None,
                      description=form["description"], priority=priority,
                      enabled=form["enabled"], now=now)  # fmt: skip
        session.add(found)


def _feed_routes(web: WebPages) -> APIRouter:
    router = APIRouter()

    def feeds_page(request: Request, visit: Visit, status: int = 200, **context: Any) -> Response:
        with Session(web.engine) as session:
            rows = feed_health(session, now=web.clock(),
                               silent_factor=web.settings.reports.silent_factor)  # fmt: skip
            listed = list_feeds(session)
            modes = {feed.url: str(feed.fetch_pages) for feed in listed}
            context.setdefault("ids", {feed.url: feed.id for feed in listed})
            hosts = [host for host in page_health(session, now=web.clock()) if host.failed]
        context.setdefault("form", {"url": "", "title": ""})
        context.setdefault("imported", None)
        return web.render(request, visit, "feeds.html", status, feeds=rows, modes=modes,
                          page_hosts=hosts, **context)  # fmt: skip

    @router.get("/feeds", response_class=HTMLResponse)
    def feeds(request: Request, visit: AdminVisit, done: str = "", sig: str = "") -> Response:
        """Every feed with its health, the add-feed form and OPML import and export."""
        if done and notice_valid(web.secret_key, done, sig):  # what a feed's page just did
            visit.notices.append(done)
        return feeds_page(request, visit)

    @router.post("/feeds", response_class=HTMLResponse)
    def add(
        request: Request,
        visit: CheckedVisit,
        url: Annotated[str, Form()] = "",
        title: Annotated[str, Form()] = "",
    ) -> Response:
        """Add a feed, after the URL check and the address guard."""
        form = {"url": url, "title": title}
        try:
            checked = check_feed_url(url)
        except MonitorError as exc:
            return feeds_page(request, visit, 400, form=form, errors=[str(exc)])
        reason = refused_address(checked, web.policy, web.resolve)
        if reason is not None:
            return feeds_page(request, visit, 400, form=form, errors=[f"Refused: {reason}"])
        with Session(web.engine) as session, session.begin():
            _, is_new = add_feed(session, url=checked, title=title.strip(), now=web.clock(),
                                 interval=web.settings.schedule.poll_interval)  # fmt: skip
        visit.notices.append(f"Added {checked}." if is_new else f"{checked} was already there.")
        return feeds_page(request, visit)

    @router.post("/feeds/pages", response_class=HTMLResponse)
    def set_pages(
        request: Request,
        visit: CheckedVisit,
        url: Annotated[str, Form()] = "",
        fetch_pages: Annotated[str, Form()] = "",
    ) -> Response:
        """Set whether a feed's new articles have their pages fetched (auto, always, never)."""
        try:
            with Session(web.engine) as session, session.begin():
                set_fetch_pages(session, url, fetch_pages)
        except MonitorError as exc:
            return feeds_page(request, visit, 400, errors=[str(exc)])
        visit.notices.append(f"Article pages of {url.strip()}: {fetch_pages}.")
        return feeds_page(request, visit)

    @router.post("/feeds/import", response_class=HTMLResponse)
    async def import_opml(request: Request, visit: CheckedVisit, file: UploadFile) -> Response:
        """Import an OPML file: new feeds added (the address guard applies), the rest listed."""
        data = await file.read(MAX_OPML_BYTES + 1)
        if len(data) > MAX_OPML_BYTES:
            errors = [f"The file is larger than {MAX_OPML_BYTES // 1_000_000} MB."]
            return feeds_page(request, visit, 400, errors=errors)
        try:
            items = read_opml(data, source=file.filename or "upload")
        except MonitorError as exc:
            return feeds_page(request, visit, 400, errors=[str(exc)])
        outcome = _import(web, items)
        return feeds_page(request, visit, imported=outcome)

    @router.get("/feeds/export.opml")
    def export_opml(request: Request, visit: AdminVisit) -> Response:
        """Every feed as an OPML file, categories as folders."""
        with Session(web.engine) as session:
            items = [
                OpmlFeed(f.url, f.title, f.site_url, f.category, f.fetch_pages)
                for f in list_feeds(session)
            ]
        response = Response(write_opml(items), media_type="text/x-opml; charset=utf-8")
        response.headers["Content-Disposition"] = 'attachment; filename="monitor-feeds.opml"'
        return web.finish(request, visit, response)

    return router


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    """What an OPML import through the web added, found already there, or refused."""

    added: list[str]
    existing: list[str]
    refused: list[str]


def _import(web: WebPages, items: list[OpmlFeed]) -> ImportOutcome:
    outcome = ImportOutcome([], [], [])
    with Session(web.engine) as session, session.begin():
        for item in items:
            try:
                url = check_feed_url(item.url)
            except MonitorError as exc:
                outcome.refused.append(str(exc))
                continue
            reason = refused_address(url, web.policy, web.resolve)
            if reason is not None:
                outcome.refused.append(f"{url}: {reason}")
                continue
            _, is_new = add_feed(session, url=url, title=item.title, site_url=item.site_url,
                                 category=item.category, now=web.clock(),
                                 interval=web.settings.schedule.poll_interval)  # fmt: skip
            (outcome.added if is_new else outcome.existing).append(url)
    return outcome


WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _subscriber_routes(web: WebPages) -> APIRouter:
    router = APIRouter()

    def page(request: Request, visit: Visit, status: int = 200, **context: Any) -> Response:
        with Session(web.engine) as session:
            rows = list_subscriptions(session)
            topics = list_topics(session)
            context.setdefault("channels", list_channels(session))
            ids = {s.email: s.id for s in session.exec(select(Subscriber))}
        context.setdefault("form", {"email": "", "name": "", "timezone": "UTC",
                                    "frequency": "daily", "send_time": "08:00", "weekday": 0,
                                    "topics": []})  # fmt: skip
        context.setdefault("channel_form", {"email": "", "name": "", "priority": "any",
                                            "frequency": "instant", "send_time": "08:00",
                                            "weekday": 0, "topics": []})  # fmt: skip
        return web.render(request, visit, "subscribers.html", status, subscriptions=rows,
                          topics=topics, weekdays=WEEKDAYS, frequencies=list(Frequency),
                          zones=time_zones(), subscriber_ids=ids, **context)  # fmt: skip

    router.include_router(channel_routes(web, page, Depends(checked_visit)))

    @router.get("/subscribers", response_class=HTMLResponse)
    def subscribers(request: Request, visit: AdminVisit) -> Response:
        """Every subscription, and a form to subscribe an address."""
        return page(request, visit)

    @router.post("/subscribers", response_class=HTMLResponse)
    def subscribe(
        request: Request,
        visit: CheckedVisit,
        email: Annotated[str, Form()] = "",
        name: Annotated[str, Form()] = "",
        timezone: Annotated[str, Form()] = "UTC",
        frequency: Annotated[Frequency, Form()] = Frequency.DAILY,
        send_time: Annotated[str, Form()] = "08:00",
        weekday: Annotated[int, Form(ge=0, le=6)] = 0,
        topic: Annotated[list[str] | None, Form()] = None,
    ) -> Response:
        """Subscribe an address (made a subscriber if new) to the ticked topics."""
        slugs = topic or []
        form = {"email": email, "name": name, "timezone": timezone, "frequency": frequency.value,
                "send_time": send_time, "weekday": weekday, "topics": slugs}  # fmt: skip
        try:
            address = check_email(email.strip())
            zone = check_timezone(timezone.strip())
            schedule = make_schedule(frequency, check_send_time(send_time.strip()), weekday)
            if not slugs:
                raise MonitorError("tick at least one topic")
            with Session(web.engine) as session, session.begin():
                chosen = [t for t in list_topics(session) if t.slug in slugs]
                result = subscribe_topics(session, email=address, topics=chosen,
                                          schedule=schedule, timezone=zone,
                                          name=name.strip() or None, now=web.clock())  # fmt: skip
        except (MonitorError, ValueError) as exc:
            return page(request, visit, 400, form=form, errors=[str(exc)])
        done = [*result.added, *result.reactivated, *result.changed]
        visit.notices.append(f"{address}: subscribed to {', '.join(done) or 'nothing new'}.")
        return page(request, visit)

    @router.post("/subscribers/unsubscribe", response_class=HTMLResponse)
    def end(
        request: Request,
        visit: CheckedVisit,
        email: Annotated[str, Form()],
        topic: Annotated[str, Form()],
    ) -> Response:
        """End one subscription (the row stays, marked, as an e-mailed unsubscribe does)."""
        with Session(web.engine) as session, session.begin():
            subscriber = get_subscriber(session, email)
            found = get_topic(session, topic)
            ended = 0
            if subscriber is not None and found is not None:
                ended = unsubscribe(session, subscriber_id=subscriber.id or 0,
                                    topic_ids=[found.id or 0], now=web.clock())  # fmt: skip
        visit.notices.append(f"Ended {email}'s subscription to {topic}." if ended
                             else "Nothing to end.")  # fmt: skip
        return page(request, visit)

    return router
