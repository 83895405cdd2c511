"""Subscriber self-service, reached through the signed "Manage your subscription" link of
every digest: choose topics, frequency, time and time zone, or unsubscribe from everything.

The signed token in the URL is the only credential (as for unsubscribe links), so a page on
another site cannot post the form: it does not know the token. One schedule and one time zone
apply to every chosen topic.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import available_timezones

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from monitor.delivery.render import render_template
from monitor.delivery.subscriptions import (
    DEFAULT_SCHEDULE,
    Schedule,
    check_send_time,
    check_timezone,
    make_schedule,
    subscribe_topics,
    unsubscribe,
)
from monitor.delivery.tokens import InvalidTokenError, read_manage_token
from monitor.errors import UsageError
from monitor.models import Frequency, Subscriber, Subscription, Topic, utcnow

PAGE = "manage.html"
# A form of a few hundred topics is a few kilobytes; anything far larger is not this form.
MAX_FORM_BYTES = 64_000
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# The token is a credential in the URL: keep it out of caches, referrers and search engines.
PRIVATE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
}


def schedule_from(frequency: Frequency, send_time: str, weekday: int) -> Schedule:
    """The schedule a form or API call describes; the time must be HH:MM, weekday 0..6."""
    if not 0 <= weekday <= 6:
        raise UsageError(f"not a weekday: {weekday} (0 is Monday, 6 is Sunday)")
    return make_schedule(frequency, check_send_time(send_time), weekday)


@dataclass(slots=True)
class Choices:
    """What the form shows: the subscriber's topics, schedule and time zone."""

    topics: set[int]
    schedule: Schedule
    timezone: str
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Offered:
    """A topic the page offers: id, slug and name."""

    id: int
    slug: str
    name: str
    description: str


def current_choices(session: Session, subscriber: Subscriber) -> Choices:
    """The subscriber's active topics, the schedule of the first of them, and time zone."""
    active = list(
        session.exec(
            select(Subscription)
            .where(
                Subscription.subscriber_id == subscriber.id,
                col(Subscription.unsubscribed_at).is_(None),
            )
            .order_by(col(Subscription.id))
        )
    )
    schedule = Schedule.of(active[0]) if active else DEFAULT_SCHEDULE
    return Choices({sub.topic_id for sub in active}, schedule, subscriber.timezone)


def offered_topics(session: Session, subscribed: set[int]) -> list[Offered]:
    """Enabled public topics, and any the subscriber already has (private or disabled)."""
    rows = session.exec(select(Topic).order_by(col(Topic.name), col(Topic.slug)))
    return [
        Offered(topic.id or 0, topic.slug, topic.name, topic.description)
        for topic in rows
        if (topic.enabled and not topic.private) or topic.id in subscribed
    ]


def read_form(body: bytes, offered: list[Offered]) -> Choices:
    """The choices a posted form makes; problems are listed in ``errors``, not raised."""
    errors: list[str] = []
    try:
        fields = parse_qs(body.decode("utf-8"), max_num_fields=1000, errors="strict")
    except (UnicodeDecodeError, ValueError):
        fields = {}
        errors.append("The form could not be read.")
    known = {topic.slug: topic.id for topic in offered}
    chosen = {known[slug] for slug in fields.get("topic", []) if slug in known}
    frequency_text = _first(fields, "frequency", "")
    send_time = _first(fields, "time", DEFAULT_SCHEDULE.send_time)
    weekday_text = _first(fields, "weekday", "0")
    timezone = _first(fields, "timezone", "").strip()
    schedule = DEFAULT_SCHEDULE
    try:
        frequency = Frequency(frequency_text)
        weekday = int(weekday_text) if weekday_text.isdigit() else -1
        schedule = schedule_from(frequency, send_time, weekday)
    except ValueError:
        errors.append(f"Choose how often: {', '.join(f.value for f in Frequency)}.")
    except UsageError as exc:
        errors.append(f"{str(exc)[0].upper()}{str(exc)[1:]}.")
    try:
        check_timezone(timezone)
    except UsageError as exc:
        errors.append(f"{str(exc)[0].upper()}{str(exc)[1:]}.")
    return Choices(chosen, schedule, timezone, errors)


def _first(fields: dict[str, list[str]], name: str, default: str) -> str:
    values = fields.get(name)
    return values[0] if values else default


def save_choices(
    session: Session,
    subscriber: Subscriber,
    choices: Choices,
    offered: list[Offered],
    now: datetime,
) -> None:
    """Subscribe to the chosen topics on the chosen schedule; end the others."""
    chosen = list(session.exec(select(Topic).where(col(Topic.id).in_(sorted(choices.topics)))))
    subscribe_topics(
        session,
        email=subscriber.email,
        topics=chosen,
        schedule=choices.schedule,
        timezone=choices.timezone,
        name=None,
        now=now,
    )
    dropped = {topic.id for topic in offered} - choices.topics
    if dropped:
        unsubscribe(session, subscriber_id=subscriber.id or 0, topic_ids=dropped, now=now)


def selfservice_router(
    engine: Engine,
    env: Environment,
    secret_key: str,
    *,
    clock: Callable[[], datetime] = utcnow,
) -> APIRouter:
    """The /manage/{token} pages."""
    router = APIRouter(include_in_schema=False)
    zones = sorted(available_timezones())
    check_page(env)

    def page(status: int, **context: Any) -> HTMLResponse:
        context.setdefault("zones", zones)
        html = render_template(env, PAGE, {"weekdays": WEEKDAY_NAMES, **context})
        return HTMLResponse(html, status_code=status, headers=PRIVATE_HEADERS)

    def subscriber_of(session: Session, token: str) -> Subscriber | None:
        try:
            subscriber_id = read_manage_token(secret_key, token)
        except InvalidTokenError:
            return None
        return session.get(Subscriber, subscriber_id)

    def form_page(
        status: int,
        token: str,
        subscriber: Subscriber,
        offered: list[Offered],
        choices: Choices,
        saved: bool = False,
    ) -> HTMLResponse:
        return page(
            status,
            state="form",
            email=subscriber.email,
            topics=offered,
            choices=choices,
            saved=saved,
            action=f"/manage/{token}",
            frequencies=[f.value for f in Frequency],
        )

    @router.get("/manage/{token}", response_class=HTMLResponse)
    def show(token: str) -> HTMLResponse:
        """The subscriber's topics and schedule, in a form; changes nothing."""
        with Session(engine) as session:
            subscriber = subscriber_of(session, token)
            if subscriber is None:
                return page(400, state="invalid")
            choices = current_choices(session, subscriber)
            offered = offered_topics(session, choices.topics)
            return form_page(200, token, subscriber, offered, choices)

    @router.post("/manage/{token}", response_class=HTMLResponse)
    async def save(token: str, request: Request) -> HTMLResponse:
        """Apply the form: subscribe to the chosen topics on the chosen schedule, end the rest."""
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                return page(413, state="too_large")
        return await run_in_threadpool(apply_form, token, body)

    def apply_form(token: str, body: bytes) -> HTMLResponse:
        with Session(engine) as session, session.begin():
            subscriber = subscriber_of(session, token)
            if subscriber is None:
                return page(400, state="invalid")
            subscribed = current_choices(session, subscriber).topics
            offered = offered_topics(session, subscribed)
            choices = read_form(body, offered)
            if choices.errors:
                return form_page(400, token, subscriber, offered, choices)
            save_choices(session, subscriber, choices, offered, clock())
            return form_page(200, token, subscriber, offered, choices, saved=True)

    @router.post("/manage/{token}/unsubscribe", response_class=HTMLResponse)
    def unsubscribe_all(token: str) -> HTMLResponse:
        """End every subscription of the subscriber the token names."""
        with Session(engine) as session, session.begin():
            subscriber = subscriber_of(session, token)
            if subscriber is None:
                return page(400, state="invalid")
            ended = unsubscribe(
                session, subscriber_id=subscriber.id or 0, topic_ids=None, now=clock()
            )
            return page(
                200, state="done", email=subscriber.email, ended=ended, action=f"/manage/{token}"
            )

    return router


def check_page(env: Environment) -> None:
    """Try the page in each state, so a broken override fails at start-up."""
    choices = Choices({1}, DEFAULT_SCHEDULE, "UTC", ["Sample error."])
    topics = [Offered(1, "sample", "Sample", "About samples")]
    common = {"weekdays": WEEKDAY_NAMES, "zones": ["UTC"]}
    render_template(
        env,
        PAGE,
        {
            **common,
            "state": "form",
            "email": "a@example.org",
            "topics": topics,
            "choices": choices,
            "saved": True,
            "action": "/m/t",
            "frequencies": ["daily"],
        },
    )
    render_template(
        env,
        PAGE,
        {**common, "state": "done", "email": "a@example.org", "ended": 1, "action": "/m/t"},
    )
    render_template(env, PAGE, {**common, "state": "invalid"})
    render_template(env, PAGE, {**common, "state": "too_large"})
