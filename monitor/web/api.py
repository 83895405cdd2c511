"""The JSON API under /api: feeds, topics (validation, backtest), subscriptions, articles,
reports, and its OpenAPI schema at /api/openapi.json.

Reads need ``Authorization: Bearer <web.api_token>`` or a signed-in session, unless
``web.public_reads`` opens them (private topics stay hidden then); subscriptions (personal data)
and backtests (they scan stored articles) and every write always need the token. Every error is
JSON, ``{"error": "...", ...}``, with a 4xx status: the route class below turns each error
monitor raises on purpose into one.
"""

import hmac
from collections.abc import Callable, Coroutine, Iterable
from datetime import date, datetime, timedelta
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from monitor.cursor import MAX_CURSOR_CHARS, decode_cursor, encode_cursor
from monitor.delivery.render import load_templates
from monitor.delivery.subscriptions import (
    check_email,
    check_timezone,
    get_subscriber,
    list_subscriptions,
    subscribe_topics,
    unsubscribe,
)
from monitor.errors import ConfigError, MonitorError, NotFoundError, UsageError
from monitor.ingest.store import list_articles
from monitor.models import (
    Article,
    ArticlePage,
    Feed,
    FetchPages,
    Frequency,
    Match,
    PageStatus,
    Topic,
    TopicPriority,
    utcnow,
)
from monitor.operations import retag_pending_topics
from monitor.reports.store import get_report, list_reports
from monitor.settings import Settings, parse_duration
from monitor.sources.admission import HostResolver, refused_address, system_addresses
from monitor.sources.feeds import add_feed, check_feed_url, import_feeds, list_feeds
from monitor.sources.guard import AddressPolicy
from monitor.sources.health import feed_health
from monitor.sources.opml import OpmlFeed, read_opml, write_opml
from monitor.topics.catalog import apply_changes, check_query, create_topic, get_topic, list_topics
from monitor.topics.query import QuerySyntaxError, parse_query
from monitor.topics.results import result_page
from monitor.untrusted import strip_controls, web_url
from monitor.web.channels_api import channels_router
from monitor.web.pages import signed_in
from monitor.web.review_api import review_router
from monitor.web.selfservice import schedule_from

# An OPML upload larger than this is refused (413) before the rest of it is read.
MAX_OPML_BYTES = 1_000_000
# The furthest back a backtest or an article listing may look: bounds the work of one request.
MAX_SINCE = timedelta(days=366)
# Feed URLs are unique, so indexed: PostgreSQL cannot index a value of about 2.7 kB or more.
MAX_URL_BYTES = 2000
# Ids are 32-bit on PostgreSQL: a larger one would be a database error, not a 404.
MAX_ID = 2**31 - 1
SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,99}$"
# The most articles one page of a backtest or an article listing holds; clients page on with
# ``next_cursor`` for more (an export of every match is a walk over the pages).
MAX_PAGE = 1000
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


# --- errors ----------------------------------------------------------------------------------


class PayloadTooLargeError(MonitorError):
    """A request body is larger than the endpoint accepts."""


def error_response(status: int, message: str, **extra: Any) -> JSONResponse:
    """The JSON body every API error has: a message people can act on, and details."""
    return JSONResponse({"error": message, **extra}, status_code=status)


def _validation_message(errors: Iterable[Any]) -> tuple[str, list[dict[str, Any]]]:
    details = []
    for error in errors:
        where = ".".join(str(part) for part in error.get("loc", ()))
        details.append({"field": where, "message": str(error.get("msg", "invalid"))})
    first = details[0] if details else {"field": "", "message": "invalid request"}
    return f"{first['field']}: {first['message']}", details


def api_error(exc: Exception) -> JSONResponse | None:
    """The JSON response for an error raised on purpose; None for a bug (left to crash)."""
    if isinstance(exc, RequestValidationError):
        message, details = _validation_message(exc.errors())
        return error_response(422, message, details=details)
    if isinstance(exc, StarletteHTTPException):  # FastAPI's own, and the body parser's
        message = str(exc.detail)
        if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
            message = "body: not JSON (it is not even UTF-8 text)"
        return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)
    if isinstance(exc, QuerySyntaxError):
        return error_response(422, str(exc), query=exc.query, column=exc.position + 1)
    if isinstance(exc, NotFoundError):
        return error_response(404, str(exc))
    if isinstance(exc, PayloadTooLargeError):
        return error_response(413, str(exc))
    if isinstance(exc, ConfigError | UsageError):
        return error_response(422, str(exc))
    if isinstance(exc, MonitorError):
        return error_response(400, str(exc))
    return None


class JSONErrorRoute(APIRoute):
    """A route whose errors (bad input, unknown names, refusals) are answered as JSON.

    A route class rather than app-wide exception handlers, so the HTML pages of the app keep
    their own error pages.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The usual handler, with monitor's errors turned into JSON responses."""
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                response = api_error(exc)
                if response is None:
                    raise
                return response

        return handle


# --- input checks ----------------------------------------------------------------------------


def _storable(value: str) -> str:
    # PostgreSQL text cannot hold NUL, and neither backend can store a lone surrogate.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


Text = Annotated[str, AfterValidator(_storable)]
Slug = Annotated[str, Path(pattern=SLUG_PATTERN, description="A topic slug.")]
SinceParam = Annotated[
    str | None, Query(max_length=20, description="How far back: 90s, 15m, 2h, 1d, 1w.")
]
LimitParam = Annotated[int, Query(ge=1, le=MAX_PAGE)]
CURSOR_DESCRIPTION = (
    "Where the page starts: the next_cursor of the page before (opaque). Pages run newest "
    "first, by first_seen_at then id, with no article repeated or skipped between them."
)
CursorParam = Annotated[
    str | None, Query(max_length=MAX_CURSOR_CHARS, description=CURSOR_DESCRIPTION)
]


def since_cutoff(since: str, now: datetime) -> datetime:
    """The instant ``since`` (a duration such as 7d) ago; at most MAX_SINCE ago."""
    try:
        span = parse_duration(since)
    except OverflowError:  # more days than a timedelta holds
        span = timedelta.max
    if span > MAX_SINCE:
        raise UsageError(f"since: at most {MAX_SINCE.days}d, not {since!r}")
    return now - span


def check_address(url: str, policy: AddressPolicy, resolve: HostResolver) -> None:
    """Refuse a feed URL the fetch guard would refuse anyway (the web form's rule), or one too
    long to be indexed."""
    if len(url.encode()) > MAX_URL_BYTES:
        raise UsageError(f"feed URL too long: over {MAX_URL_BYTES} bytes")
    reason = refused_address(url, policy, resolve)
    if reason is not None:
        raise UsageError(f"feed URL refused: {reason}")


# --- models ----------------------------------------------------------------------------------


class FeedOut(BaseModel):
    """A feed and how its polling goes."""

    id: int
    url: str
    title: str
    site_url: str
    category: str
    state: str
    error_count: int
    last_error: str | None
    last_success_at: datetime | None
    next_check_at: datetime
    interval_seconds: int
    # Whether new articles' pages are fetched for their full text.
    fetch_pages: Literal["auto", "always", "never"] = "auto"


class FeedIn(BaseModel):
    """A feed to add."""

    model_config = ConfigDict(extra="forbid")

    url: Text = Field(min_length=1, max_length=2000)
    title: Text = Field(default="", max_length=500)
    category: Text = Field(default="", max_length=200)
    fetch_pages: Literal["auto", "always", "never"] = "auto"


class FeedAdded(BaseModel):
    """The feed, and whether it was new."""

    created: bool
    feed: FeedOut


class FeedHealthOut(BaseModel):
    """One feed's health, as ``monitor feeds health`` shows it."""

    url: str
    title: str
    state: str
    last_success_at: datetime | None
    error_count: int
    last_error: str | None
    disabled_reason: str | None
    interval_seconds: int
    new_per_day: float
    next_check_at: datetime
    silent: str | None
    # What the last parsed document warned of (malformed, items skipped); null: nothing.
    warning: str | None = None


class ImportOut(BaseModel):
    """What an OPML import added, found there already, or could not use."""

    added: list[str]
    existing: list[str]
    rejected: list[str]


class TopicOut(BaseModel):
    """A topic (never its feed token)."""

    slug: str
    name: str
    description: str
    query: str
    priority: TopicPriority
    enabled: bool
    private: bool
    version: int
    updated_at: datetime


class TopicIn(BaseModel):
    """A topic to add."""

    model_config = ConfigDict(extra="forbid")

    slug: Annotated[str, Field(pattern=SLUG_PATTERN)]
    query: Text = Field(min_length=1, max_length=10_000)
    name: Text = Field(default="", max_length=200)
    description: Text = Field(default="", max_length=2000)
    priority: TopicPriority = TopicPriority.NORMAL


class TopicChange(BaseModel):
    """Fields of a topic to change; those left out stay."""

    model_config = ConfigDict(extra="forbid")

    query: Text | None = Field(default=None, min_length=1, max_length=10_000)
    name: Text | None = Field(default=None, max_length=200)
    description: Text | None = Field(default=None, max_length=2000)
    priority: TopicPriority | None = None
    enabled: bool | None = None


class QueryIn(BaseModel):
    """A query to check."""

    model_config = ConfigDict(extra="forbid")

    query: Text = Field(max_length=10_000)


class QueryOk(BaseModel):
    """A query that parses, and how monitor reads it."""

    valid: Literal[True] = True
    query: str
    parsed: str


class BacktestIn(BaseModel):
    """A query to try on stored articles."""

    model_config = ConfigDict(extra="forbid")

    query: Text = Field(max_length=10_000)
    since: Text = Field(default="30d", max_length=20)
    limit: int = Field(default=20, ge=1, le=MAX_PAGE, description="Matches on this page.")
    cursor: str | None = Field(
        default=None,
        max_length=MAX_CURSOR_CHARS,
        description=CURSOR_DESCRIPTION
        + " With a cursor, scanned, total and per_day count the articles older than it only.",
    )


class SampleOut(BaseModel):
    """An article a backtest matched."""

    article_id: int
    title: str
    url: str
    feed: str
    first_seen_at: datetime
    terms: list[str]
    backlog: bool = False


class BacktestOut(BaseModel):
    """What a query matches among stored articles (older than the cursor, if one was given)."""

    scanned: int
    total: int
    per_day: dict[str, int]
    samples: list[SampleOut]
    next_cursor: str | None = Field(
        default=None, description="The cursor of the next page; null on the last page."
    )


class SubscriptionOut(BaseModel):
    """One subscription of one address."""

    email: str
    timezone: str
    topic: str
    frequency: Frequency
    schedule: str
    active: bool
    unsubscribed_at: datetime | None


class SubscriptionIn(BaseModel):
    """Subscribe an address (made if new) to topics on one schedule."""

    model_config = ConfigDict(extra="forbid")

    email: Text = Field(max_length=320)
    topics: list[Annotated[str, Field(pattern=SLUG_PATTERN)]] = Field(min_length=1, max_length=200)
    frequency: Frequency | None = None
    time: Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")] = "08:00"
    weekday: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = "mon"
    timezone: Text | None = Field(default=None, max_length=64)
    name: Text | None = Field(default=None, max_length=200)


class SubscribeOut(BaseModel):
    """What a subscribe changed, by topic slug."""

    subscriber_added: bool
    added: list[str]
    reactivated: list[str]
    changed: list[str]
    unchanged: list[str]


class UnsubscribeOut(BaseModel):
    """How many active subscriptions ended."""

    ended: int


class ArticleOut(BaseModel):
    """An article and the slugs of the topics it matched."""

    id: int
    title: str
    url: str = Field(description="The article's link: http(s) only, empty for any other kind.")
    author: str
    published_at: datetime | None
    first_seen_at: datetime
    topics: list[str]
    # Published well before it was first seen: not counted in reports nor sent in digests.
    backlog: bool = False
    # Declared by the feed, and detected from the text ("" when too short to tell).
    language: str = ""
    detected_language: str = ""


class ArticlesPage(BaseModel):
    """A page of articles, newest first, and the cursor of the next page."""

    articles: list[ArticleOut]
    next_cursor: str | None = Field(
        default=None, description="The cursor of the next page; null on the last page."
    )


class MatchOut(BaseModel):
    """Where a topic matched an article."""

    topic: str
    score: float
    terms: list[str]
    snippet: str
    matched_at: datetime
    # The text the match was made on: "feed" (title and feed text) or "page" (with the body).
    text_source: str = "feed"


class PageOut(BaseModel):
    """An article's page: its fetch status, and what the page said of itself."""

    status: str
    attempts: int
    reason: str | None
    http_status: int | None
    fetched_at: datetime | None
    next_attempt_at: datetime | None
    final_url: str | None
    canonical_url: str | None
    language: str
    published_at: datetime | None


class ArticleDetail(ArticleOut):
    """An article with its text and its matches."""

    summary: str
    feed: str
    matches: list[MatchOut]
    # The body extracted from the article's page ("" while there is none), the extractor, and
    # where the text matching reads comes from ("page" or "feed").
    body: str = ""
    body_method: str = ""
    text_source: str = "feed"
    page: PageOut | None = None


class ReportSummary(BaseModel):
    """A stored daily report."""

    day: date
    timezone: str
    generated_at: datetime


class ReportOut(ReportSummary):
    """A stored daily report with its data (``payload.schema_version`` versions it)."""

    payload: dict[str, Any]


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": text, "content": {"application/json": {"example": {"error": text}}}}
    for status, text in (
        (400, "a body that cannot be read at all"),
        (401, "missing or wrong API token (reads: or no signed-in session)"),
        (404, "no such feed, topic, article or report"),
        (422, "invalid input, with a message naming the field"),
    )
}


# --- conversions -----------------------------------------------------------------------------


def feed_out(feed: Feed) -> FeedOut:
    """The API's view of a feed."""
    return FeedOut(
        id=feed.id or 0,
        url=feed.url,
        title=feed.title,
        site_url=feed.site_url,
        category=feed.category,
        state=str(feed.state),
        error_count=feed.error_count,
        last_error=feed.last_error,
        last_success_at=feed.last_success_at,
        next_check_at=feed.next_check_at,
        interval_seconds=feed.interval_seconds,
        fetch_pages=FetchPages(feed.fetch_pages).value,
    )


def page_out(page: ArticlePage) -> PageOut:
    """The API's view of an article's page."""
    return PageOut(
        status=str(page.status),
        attempts=page.attempts,
        reason=page.reason,
        http_status=page.http_status,
        fetched_at=page.fetched_at,
        next_attempt_at=page.next_attempt_at if page.status == PageStatus.PENDING else None,
        final_url=page.final_url,
        canonical_url=page.canonical_url,
        language=page.language,
        published_at=page.published_at,
    )


def topic_out(topic: Topic) -> TopicOut:
    """The API's view of a topic."""
    return TopicOut(
        slug=topic.slug,
        name=topic.name,
        description=topic.description,
        query=topic.query,
        priority=TopicPriority(topic.priority),
        enabled=topic.enabled,
        private=bool(topic.private),
        version=topic.version,
        updated_at=topic.updated_at,
    )


# --- the router ------------------------------------------------------------------------------


def api_router(
    settings: Settings,
    engine: Engine,
    *,
    clock: Callable[[], datetime] = utcnow,
    resolve: HostResolver = system_addresses,
) -> APIRouter:
    """The /api routes on ``engine``."""
    router = APIRouter(prefix="/api", route_class=JSONErrorRoute, responses=ERRORS)
    bearer = HTTPBearer(auto_error=False, description="web.api_token")
    policy = AddressPolicy.from_strings(settings.fetch.allow_networks)

    def authorized(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> bool:
        token = settings.web.api_token
        given = credentials.credentials if credentials is not None else ""
        # Compared in constant time, so the token cannot be guessed a character at a time.
        return bool(token) and hmac.compare_digest(given.encode(), token.encode())

    def require_token(allowed: Annotated[bool, Depends(authorized)]) -> None:
        if not allowed:
            raise HTTPException(
                401,
                "this endpoint needs Authorization: Bearer <web.api_token>"
                + ("" if settings.web.api_token else " (web.api_token is not set)"),
                headers={"WWW-Authenticate": "Bearer"},
            )

    def read_access(request: Request, allowed: Annotated[bool, Depends(authorized)]) -> bool:
        """Whether the caller may see private topics; 401 when it may read nothing."""
        if allowed or signed_in(request):
            return True
        if settings.web.public_reads:
            return False
        raise HTTPException(
            401,
            "reading needs Authorization: Bearer <web.api_token> or a signed-in session "
            "(web.public_reads is off)",
            headers={"WWW-Authenticate": "Bearer"},
        )

    Admin = Annotated[None, Depends(require_token)]  # noqa: N806 (a type alias)
    # A read: open with web.public_reads (private topics hidden), else the token or a session.
    Reader = Annotated[bool, Depends(read_access)]  # noqa: N806

    def visible_topic(session: Session, slug: str, allowed: bool) -> Topic:
        topic = get_topic(session, slug)
        # A private topic is not admitted to exist without the token.
        if topic is None or (topic.private and not allowed):
            raise NotFoundError(f"no topic {slug!r}")
        return topic

    @router.get("/openapi.json", include_in_schema=False)
    def openapi() -> JSONResponse:
        """The OpenAPI schema of the /api routes."""
        # This router's routes only: the HTML pages are not part of the API.
        schema = get_openapi(
            title="monitor API", version="1", description=__doc__ or "", routes=router.routes
        )
        return JSONResponse(schema)

    # --- feeds ---

    @router.get("/feeds", response_model=list[FeedOut])
    def get_feeds(_: Reader) -> list[FeedOut]:
        """Every feed, by URL."""
        with Session(engine) as session:
            return [feed_out(feed) for feed in list_feeds(session)]

    @router.post(
        "/feeds",
        response_model=FeedAdded,
        status_code=201,
        responses={200: {"model": FeedAdded, "description": "The URL was a feed already: kept."}},
    )
    def post_feed(body: FeedIn, _: Admin, response: Response) -> FeedAdded:
        """Add a feed, polled on the next tick; an existing URL is kept (200)."""
        try:
            url = check_feed_url(body.url)
        except ValueError:  # IDNA and other host encodings httpx refuses
            raise UsageError(f"not a valid feed URL: {body.url!r}") from None
        check_address(url, policy, resolve)
        with Session(engine) as session, session.begin():
            feed, created = add_feed(
                session,
                url=url,
                title=body.title,
                category=body.category,
                interval=settings.schedule.poll_interval,
                now=clock(),
                fetch_pages=body.fetch_pages,
            )
            result = FeedAdded(created=created, feed=feed_out(feed))
        if not created:
            response.status_code = 200
        return result

    @router.get("/feeds/health", response_model=list[FeedHealthOut])
    def get_feed_health(_: Reader) -> list[FeedHealthOut]:
        """Every feed's health: state, errors, interval, new items a day, silence."""
        with Session(engine) as session:
            rows = feed_health(session, now=clock(), silent_factor=settings.reports.silent_factor)
        return [
            FeedHealthOut(
                url=row.url,
                title=row.title,
                state=str(row.state),
                last_success_at=row.last_success_at,
                error_count=row.error_count,
                last_error=row.last_error,
                disabled_reason=row.disabled_reason,
                interval_seconds=int(row.interval.total_seconds()),
                new_per_day=row.new_per_day,
                next_check_at=row.next_check_at,
                silent=row.silent,
                warning=row.warning,
            )
            for row in rows
        ]

    @router.get(
        "/feeds/opml", response_class=Response, responses={200: {"content": {"text/x-opml": {}}}}
    )
    def export_opml(_: Reader) -> Response:
        """Every feed as an OPML 2.0 document, folders by category."""
        with Session(engine) as session:
            feeds = [
                OpmlFeed(f.url, f.title, f.site_url, f.category, f.fetch_pages)
                for f in list_feeds(session)
            ]
        return Response(write_opml(feeds), media_type="text/x-opml; charset=utf-8")

    @router.post(
        "/feeds/opml",
        response_model=ImportOut,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "text/x-opml": {"schema": {"type": "string"}},
                    "application/xml": {"schema": {"type": "string"}},
                },
            }
        },
        responses={413: {"description": f"the document is over {MAX_OPML_BYTES} bytes"}},
    )
    async def import_opml(request: Request, _: Admin) -> ImportOut:
        """Import an OPML document (the request body, at most 1 MB): feeds not there are added."""
        data = await read_limited(request, MAX_OPML_BYTES)
        try:
            feeds = read_opml(data, source="request body")
        except (ValueError, LookupError) as exc:  # odd encodings expat hands on
            raise UsageError(f"request body: not valid OPML/XML: {exc}") from None
        return await run_in_threadpool(add_opml_feeds, feeds)

    def add_opml_feeds(feeds: list[OpmlFeed]) -> ImportOut:
        usable: list[OpmlFeed] = []
        refused: list[str] = []
        for feed in feeds:
            try:
                check_address(check_feed_url(feed.url), policy, resolve)
            except (UsageError, ValueError) as exc:
                refused.append(
                    str(exc) if isinstance(exc, UsageError) else f"not a URL: {feed.url!r}"
                )
                continue
            usable.append(feed)
        with Session(engine) as session, session.begin():
            done = import_feeds(
                session, usable, interval=settings.schedule.poll_interval, now=clock()
            )
        return ImportOut(added=done.added, existing=done.existing, rejected=refused + done.rejected)

    # --- topics ---

    @router.get("/topics", response_model=list[TopicOut])
    def get_topics(allowed: Reader) -> list[TopicOut]:
        """Every topic, by slug (private ones only with the API token)."""
        with Session(engine) as session:
            return [topic_out(t) for t in list_topics(session) if allowed or not t.private]

    @router.post("/topics/validate", response_model=QueryOk)
    def validate_query(body: QueryIn) -> QueryOk:
        """Check a query: 200 with how it reads, or 422 with the message and column."""
        node = parse_query(body.query)
        return QueryOk(query=body.query.strip(), parsed=str(node))

    @router.post("/topics/backtest", response_model=BacktestOut)
    def post_backtest(body: BacktestIn, _: Admin) -> BacktestOut:
        """Try a query on stored articles without saving anything: per day and newest matches,
        a page at a time (``cursor`` from ``next_cursor``)."""
        node = parse_query(body.query)
        cutoff = since_cutoff(body.since, clock())
        before = decode_cursor(body.cursor) if body.cursor is not None else None
        with Session(engine) as session:
            page = result_page(session, node, since=cutoff, limit=body.limit,
                               timezone=settings.reports.timezone, before=before)  # fmt: skip
        result = page.result
        samples = [
            SampleOut(
                article_id=s.article.id or 0,
                title=strip_controls(s.article.title),
                url=web_url(s.article.url),
                feed=s.feed.title or s.feed.url,
                first_seen_at=s.article.first_seen_at,
                terms=sorted(s.hit.terms),
                backlog=s.article.backlog,
            )
            for s in result.samples
        ]
        per_day = {day.isoformat(): count for day, count in result.per_day.items()}
        return BacktestOut(
            scanned=result.scanned,
            total=result.total,
            per_day=per_day,
            samples=samples,
            next_cursor=page.next_cursor,
        )

    @router.get("/topics/{slug}", response_model=TopicOut)
    def get_one_topic(slug: Slug, allowed: Reader) -> TopicOut:
        """One topic."""
        with Session(engine) as session:
            return topic_out(visible_topic(session, slug, allowed))

    @router.post("/topics", response_model=TopicOut, status_code=201)
    def post_topic(body: TopicIn, _: Admin) -> TopicOut:
        """Add a topic (its query checked first) and tag the recent articles with it."""
        with Session(engine) as session, session.begin():
            topic = create_topic(
                session,
                slug=body.slug,
                name=body.name,
                query=body.query,
                description=body.description,
                priority=body.priority,
                now=clock(),
            )
            result = topic_out(topic)
        retag_pending_topics(engine, settings, now=clock())
        return result

    @router.patch("/topics/{slug}", response_model=TopicOut)
    def patch_topic(slug: Slug, body: TopicChange, _: Admin) -> TopicOut:
        """Change a topic; a new query bumps its version and retags the recent articles."""
        if body.query is not None:
            check_query(body.query)
        with Session(engine) as session, session.begin():
            topic = visible_topic(session, slug, True)
            apply_changes(topic, now=clock(), **body.model_dump(exclude_none=True))
            session.add(topic)
            session.flush()
            result = topic_out(topic)
        retag_pending_topics(engine, settings, now=clock())
        return result

    # --- subscriptions ---

    @router.get("/subscriptions", response_model=list[SubscriptionOut])
    def get_subscriptions(
        _: Admin, email: Annotated[Text | None, Query(max_length=320)] = None
    ) -> list[SubscriptionOut]:
        """Every subscription (or one address's), ended ones too."""
        address = check_email(email) if email is not None else None
        with Session(engine) as session:
            rows = list_subscriptions(session, email=address)
        return [
            SubscriptionOut(
                email=row.email,
                timezone=row.timezone,
                topic=row.topic,
                frequency=row.schedule.frequency,
                schedule=row.schedule.describe(),
                active=row.unsubscribed_at is None,
                unsubscribed_at=row.unsubscribed_at,
            )
            for row in rows
        ]

    @router.post("/subscriptions", response_model=SubscribeOut)
    def post_subscription(body: SubscriptionIn, _: Admin) -> SubscribeOut:
        """Subscribe an address (made if new) to topics; an ended subscription starts again."""
        email = check_email(body.email)
        zone = check_timezone(body.timezone) if body.timezone is not None else None
        schedule = (
            schedule_from(body.frequency, body.time, WEEKDAYS.index(body.weekday))
            if body.frequency is not None
            else None
        )
        with Session(engine) as session, session.begin():
            topics = [visible_topic(session, slug, True) for slug in dict.fromkeys(body.topics)]
            result = subscribe_topics(
                session,
                email=email,
                topics=topics,
                schedule=schedule,
                timezone=zone,
                name=body.name,
                now=clock(),
            )
        return SubscribeOut(
            subscriber_added=result.subscriber_added,
            added=list(result.added),
            reactivated=list(result.reactivated),
            changed=list(result.changed),
            unchanged=list(result.unchanged),
        )

    @router.delete("/subscriptions", response_model=UnsubscribeOut)
    def delete_subscriptions(
        _: Admin,
        email: Annotated[Text, Query(max_length=320)],
        topic: Annotated[list[Annotated[str, Field(pattern=SLUG_PATTERN)]] | None, Query()] = None,
    ) -> UnsubscribeOut:
        """End an address's subscriptions to these topics (``topic`` repeated), or to all."""
        address = check_email(email)
        with Session(engine) as session, session.begin():
            subscriber = get_subscriber(session, address)
            if subscriber is None:
                raise NotFoundError(f"no subscriber {address!r}")
            ids = None if not topic else [visible_topic(session, s, True).id or 0 for s in topic]
            ended = unsubscribe(
                session, subscriber_id=subscriber.id or 0, topic_ids=ids, now=clock()
            )
        return UnsubscribeOut(ended=ended)

    # --- articles ---

    @router.get("/articles", response_model=ArticlesPage)
    def get_articles(
        allowed: Reader,
        topic: Annotated[str | None, Query(pattern=SLUG_PATTERN)] = None,
        since: SinceParam = None,
        limit: LimitParam = 50,
        cursor: CursorParam = None,
    ) -> ArticlesPage:
        """The newest articles (of one topic), with the topics they matched, a page at a time
        (``cursor`` from ``next_cursor``)."""
        cutoff = since_cutoff(since, clock()) if since is not None else None
        before = decode_cursor(cursor) if cursor is not None else None
        with Session(engine) as session:
            topic_id = visible_topic(session, topic, allowed).id if topic else None
            hidden = set() if allowed else private_slugs(session)
            # One more than the page: whether there is a next page, without counting them all.
            rows = list_articles(
                session, since=cutoff, topic_id=topic_id, limit=limit + 1, before=before
            )
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            last = rows[-1][0]
            next_cursor = encode_cursor(last.first_seen_at, last.id or 0)
        articles = [
            ArticleOut(
                id=a.id or 0,
                title=strip_controls(a.title),
                url=web_url(a.url),
                author=strip_controls(a.author),
                published_at=a.published_at,
                first_seen_at=a.first_seen_at,
                topics=[s for s in slugs if s not in hidden],
                backlog=a.backlog,
                language=a.language,
                detected_language=a.detected_language,
            )
            for a, slugs in rows
        ]
        return ArticlesPage(articles=articles, next_cursor=next_cursor)

    @router.get("/articles/{article_id}", response_model=ArticleDetail)
    def get_article(
        article_id: Annotated[int, Path(ge=1, le=MAX_ID)], allowed: Reader
    ) -> ArticleDetail:
        """One article, with where each topic matched it."""
        with Session(engine) as session:
            found = session.exec(
                select(Article, Feed)
                .join(Feed, col(Feed.id) == Article.feed_id)
                .where(Article.id == article_id)
            ).first()
            if found is None:
                raise NotFoundError(f"no article {article_id}")
            article, feed = found
            matches = session.exec(
                select(Match, Topic)
                .join(Topic, col(Topic.id) == Match.topic_id)
                .where(Match.article_id == article_id)
                .order_by(col(Topic.slug))
            ).all()
            shown = [
                MatchOut(
                    topic=t.slug,
                    score=m.score,
                    terms=list(m.terms),
                    snippet=m.snippet,
                    matched_at=m.matched_at,
                    text_source=m.text_source,
                )
                for m, t in matches
                if allowed or not t.private
            ]
            page = session.get(ArticlePage, article_id)
        return ArticleDetail(
            id=article.id or 0,
            title=strip_controls(article.title),
            url=web_url(article.url),
            author=strip_controls(article.author),
            published_at=article.published_at,
            first_seen_at=article.first_seen_at,
            topics=[m.topic for m in shown],
            backlog=article.backlog,
            language=article.language,
            detected_language=article.detected_language,
            summary=strip_controls(article.summary),
            feed=feed.title or feed.url,
            matches=shown,
            body=article.body,
            body_method=article.body_method,
            text_source="page" if article.body else "feed",
            page=page_out(page) if page is not None else None,
        )

    # --- reports ---

    @router.get("/reports", response_model=list[ReportSummary])
    def get_reports(
        _: Reader, limit: Annotated[int, Query(ge=1, le=366)] = 30
    ) -> list[ReportSummary]:
        """The stored daily reports, newest day first."""
        with Session(engine) as session:
            return [
                ReportSummary(day=r.day, timezone=r.timezone, generated_at=r.generated_at)
                for r in list_reports(session, limit=limit)
            ]

    @router.get("/reports/{day}", response_model=ReportOut)
    def get_one_report(day: date, _: Reader) -> ReportOut:
        """The stored report of a local day (YYYY-MM-DD), with its data."""
        with Session(engine) as session:
            report = get_report(session, day)
            if report is None:
                raise NotFoundError(f"no report for {day.isoformat()} (see `monitor report`)")
            return ReportOut(
                day=report.day,
                timezone=report.timezone,
                generated_at=report.generated_at,
                payload=report.payload,
            )

    # --- channels (their own module) ---

    router.include_router(
        channels_router(
            settings,
            engine,
            partial(load_templates, settings),
            require_token,
            clock=clock,
            resolve=resolve,
            route_class=JSONErrorRoute,
        )
    )
    router.include_router(
        review_router(
            settings, engine, require_token, read_access, clock=clock, route_class=JSONErrorRoute
        )
    )

    return router


def private_slugs(session: Session) -> set[str]:
    """The slugs of the private topics."""
    return set(session.exec(select(Topic.slug).where(col(Topic.private).is_(True))))


async def read_limited(request: Request, limit: int) -> bytes:
    """The request body, refused with PayloadTooLargeError as soon as it passes ``limit``."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"request body: over {limit} bytes ({declared} declared)")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"request body: over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
