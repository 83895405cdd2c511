"""The API's review state under /api/review: a topic's inbox with states (filtered, paged),
changes of one or many articles' state and note, and one article's history.

Review notes are the team's own: reading needs the API token or a signed-in session even when
``web.public_reads`` opens the other reads; changing needs the token. Two writers changing one
article at once: the last write wins, and both changes are in its history.
"""

# No ``from __future__ import annotations``: a route's parameter is annotated with the read
# dependency handed in, which FastAPI must see as an object, not as a name to look up.
from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.routing import APIRoute
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import Engine
from sqlmodel import Session

from monitor.errors import NotFoundError
from monitor.models import Review, ReviewEvent, ReviewState, Topic
from monitor.reports.build import local_day
from monitor.review.inbox import (
    MAX_PAGE_SIZE,
    PAGE_SIZE,
    InboxFilter,
    InboxItem,
    check_language,
    day_range,
    inbox_page,
)
from monitor.review.store import (
    MAX_BULK,
    MAX_NOTE_CHARS,
    MAX_REVIEWER_CHARS,
    ReviewCounts,
    review_history,
    set_reviews,
)
from monitor.settings import Settings
from monitor.topics.catalog import get_topic

SLUG = r"^[a-z0-9][a-z0-9-]{0,99}$"
ArticleId = Annotated[int, Field(ge=1, le=2**31 - 1)]


def _storable(value: str) -> str:
    # PostgreSQL text cannot hold NUL, and neither backend can store a lone surrogate.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


class CountsOut(BaseModel):
    """How many of the filter's articles are in each state; ``done``: not new."""

    total: int
    new: int
    reviewed: int
    flagged: int
    dismissed: int
    done: int
    summary: str


class ReviewItemOut(BaseModel):
    """An inbox article with its review; ``matches`` is false once a retag dropped the match
    (the review stays); ``updated_*`` are empty while nobody has changed it."""

    article_id: int
    title: str
    url: str
    feed: str
    language: str
    first_seen_at: datetime
    backlog: bool
    story_id: int | None
    matches: bool
    state: ReviewState
    note: str
    updated_by: str
    updated_at: datetime | None


class ReviewPageOut(BaseModel):
    """A page of a topic's inbox; ``next_cursor`` continues it (null: the last page)."""

    topic: str
    start: date = Field(serialization_alias="from")
    end: date = Field(serialization_alias="to")
    counts: CountsOut
    items: list[ReviewItemOut]
    next_cursor: str | None


class ReviewIn(BaseModel):
    """A change of one or many articles of a topic: a state, a note ("" removes it), or both."""

    model_config = ConfigDict(extra="forbid")

    topic: str = Field(pattern=SLUG)
    article_ids: list[ArticleId] = Field(min_length=1, max_length=MAX_BULK)
    state: ReviewState | None = None
    note: Annotated[str, AfterValidator(_storable)] | None = Field(
        default=None, max_length=MAX_NOTE_CHARS
    )
    reviewer: Annotated[str, AfterValidator(_storable)] = Field(
        default="api", min_length=1, max_length=MAX_REVIEWER_CHARS, pattern=r"\S"
    )


class ReviewOut(BaseModel):
    """An article's review after a change."""

    article_id: int
    state: ReviewState
    note: str
    updated_by: str
    updated_at: datetime
    changes: int


class ReviewChangedOut(BaseModel):
    """The reviews of the articles a change named."""

    topic: str
    changed: list[ReviewOut]


class ReviewEventOut(BaseModel):
    """One change of a review: the state and note before and after, who, when."""

    id: int
    previous_state: ReviewState
    state: ReviewState
    previous_note: str
    note: str
    changed_by: str
    changed_at: datetime


def counts_out(counts: ReviewCounts) -> CountsOut:
    """The API's view of review counts."""
    return CountsOut(total=counts.total, new=counts.new, reviewed=counts.reviewed,
                     flagged=counts.flagged, dismissed=counts.dismissed, done=counts.done,
                     summary=counts.summary())  # fmt: skip


def item_out(item: InboxItem) -> ReviewItemOut:
    """The API's view of an inbox item."""
    a, review = item.article, item.review
    changed = review is not None and review.changes > 0
    return ReviewItemOut(
        article_id=a.id or 0, title=a.title, url=a.url, feed=item.feed_title,
        language=item.language, first_seen_at=a.first_seen_at, backlog=a.backlog,
        story_id=a.story_id, matches=item.match is not None, state=item.state,
        note=review.note if review else "", updated_by=review.updated_by if review else "",
        updated_at=review.updated_at if review and changed else None,
    )  # fmt: skip


def review_out(review: Review) -> ReviewOut:
    """The API's view of a review."""
    return ReviewOut(article_id=review.article_id, state=ReviewState(review.state),
                     note=review.note, updated_by=review.updated_by,
                     updated_at=review.updated_at, changes=review.changes)  # fmt: skip


def event_out(event: ReviewEvent) -> ReviewEventOut:
    """The API's view of a history event."""
    return ReviewEventOut(id=event.id or 0, previous_state=ReviewState(event.previous_state),
                          state=ReviewState(event.state), previous_note=event.previous_note,
                          note=event.note, changed_by=event.changed_by,
                          changed_at=event.changed_at)  # fmt: skip


def review_router(
    settings: Settings,
    engine: Engine,
    admin: Callable[..., None],
    reader: Callable[..., bool],
    *,
    clock: Callable[[], datetime],
    route_class: type[APIRoute],
) -> APIRouter:
    """The /review routes (mounted under /api); ``admin`` is the token dependency, ``reader``
    the read one (True: the token or a session), and ``route_class`` the API's."""
    router = APIRouter(prefix="/review", route_class=route_class)

    def member(allowed: Annotated[bool, Depends(reader)]) -> None:
        if not allowed:
            raise HTTPException(
                401,
                "review state needs Authorization: Bearer <web.api_token> or a signed-in session",
                headers={"WWW-Authenticate": "Bearer"},
            )

    def topic_of(session: Session, slug: str) -> Topic:
        topic = get_topic(session, slug)
        if topic is None:
            raise NotFoundError(f"no topic {slug!r}")
        return topic

    @router.get("", response_model=ReviewPageOut, response_model_by_alias=True,
                dependencies=[Depends(member)])  # fmt: skip
    def get_review(
        topic: Annotated[str, Query(pattern=SLUG)],
        day: date | None = None,
        start: Annotated[date | None, Query(alias="from")] = None,
        end: Annotated[date | None, Query(alias="to")] = None,
        feed: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
        language: Annotated[str | None, Query(max_length=35)] = None,
        state: Annotated[list[ReviewState] | None, Query()] = None,
        cursor: Annotated[str | None, Query(max_length=40)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = PAGE_SIZE,
    ) -> ReviewPageOut:
        """A topic's inbox: its articles of a local day (or from/to; default today) in story
        order, backlog last, each with its review state; filter by feed, language, state."""
        today = local_day(clock(), ZoneInfo(settings.reports.timezone))
        first, last = day_range(day, start, end, today)
        lang = check_language(language) if language else None
        with Session(engine) as session:
            found = topic_of(session, topic)
            spec = InboxFilter(found.id or 0, first, last, settings.reports.timezone, feed,
                               lang, tuple(state or ()))  # fmt: skip
            page = inbox_page(session, spec, cursor=cursor, limit=limit)
            items = [item_out(item) for item in page.items]
        return ReviewPageOut(topic=found.slug, start=first, end=last,
                             counts=counts_out(page.counts), items=items,
                             next_cursor=page.next_cursor)  # fmt: skip

    @router.post("", response_model=ReviewChangedOut, dependencies=[Depends(admin)])
    def post_review(body: ReviewIn) -> ReviewChangedOut:
        """Set the state and/or note of one or many of a topic's articles (last write wins;
        every change is kept in the article's history)."""
        with Session(engine) as session, session.begin():
            found = topic_of(session, body.topic)
            rows = set_reviews(session, topic_id=found.id or 0, article_ids=body.article_ids,
                               state=body.state, note=body.note, by=body.reviewer,
                               now=clock())  # fmt: skip
            changed = [review_out(row) for row in rows]
            slug = found.slug
        return ReviewChangedOut(topic=slug, changed=changed)

    @router.get("/history", response_model=list[ReviewEventOut], dependencies=[Depends(member)])
    def get_history(
        topic: Annotated[str, Query(pattern=SLUG)],
        article_id: Annotated[int, Query(ge=1, le=2**31 - 1)],
    ) -> list[ReviewEventOut]:
        """Every change of one article's review for a topic, oldest first."""
        with Session(engine) as session:
            found = topic_of(session, topic)
            events = review_history(session, topic_id=found.id or 0, article_id=article_id)
        return [event_out(event) for event in events]

    return router
