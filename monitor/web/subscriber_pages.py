"""One subscriber's page: their time zone (chosen from the IANA list), each subscription's
schedule, and their delivery history (the outbox rows, newest first). The same functions as
``monitor subscribe`` (a schedule or time zone given again changes it) and
``monitor deliveries list``."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func
from sqlmodel import Session, col, select

from monitor.delivery.digest import channel_period
from monitor.delivery.dispatch import channel_labels, list_deliveries
from monitor.delivery.subscriptions import (
    check_send_time,
    check_timezone,
    list_subscriptions,
    make_schedule,
    subscribe_topics,
    time_zones,
)
from monitor.errors import MonitorError, UsageError
from monitor.models import DeliveryItem, Frequency, Subscriber
from monitor.topics.catalog import get_topic
from monitor.web.csrf import notice_signature, notice_valid
from monitor.web.pages import WEEKDAYS, AdminVisit, CheckedVisit, Visit, WebPages

HISTORY = 100


def subscriber_routes(web: WebPages) -> APIRouter:
    """The ``/subscribers/{id}`` pages."""
    router = APIRouter()

    def page(request: Request, visit: Visit, subscriber_id: int, status: int = 200,
             errors: list[str] | None = None) -> Response:  # fmt: skip
        with Session(web.engine) as session:
            subscriber = session.get(Subscriber, subscriber_id)
            if subscriber is None:
                return web.render(request, visit, "error.html", 404, title="No such subscriber",
                                  message=f"There is no subscriber {subscriber_id}.")  # fmt: skip
            rows = list_subscriptions(session, email=subscriber.email)
            deliveries = list_deliveries(session, subscriber_id=subscriber_id, limit=HISTORY)
            labels = channel_labels(session, [d for d, _ in deliveries])
            ids = [d.id or 0 for d, _ in deliveries]
            items = dict(
                session.exec(
                    select(DeliveryItem.delivery_id, func.count())
                    .where(col(DeliveryItem.delivery_id).in_(ids))
                    .group_by(col(DeliveryItem.delivery_id))
                ).all()
            )
            history = [
                {"delivery": d, "to": labels.get(d.channel_id, "") if d.channel_id else "e-mail",
                 "period": channel_period(d.period_key), "articles": items.get(d.id or 0, 0)}
                for d, _ in deliveries
            ]  # fmt: skip
            return web.render(request, visit, "subscriber.html", status, subscriber=subscriber,
                              subscriptions=rows, history=history, zones=time_zones(),
                              weekdays=WEEKDAYS, frequencies=list(Frequency),
                              errors=errors or [])  # fmt: skip

    def done(request: Request, visit: Visit, subscriber_id: int, notice: str) -> Response:
        sig = notice_signature(web.secret_key, notice)
        target = f"/subscribers/{subscriber_id}?done={quote(notice)}&sig={sig}"
        return web.redirect(request, visit, target)

    @router.get("/subscribers/{subscriber_id:int}", response_class=HTMLResponse)
    def show(
        request: Request, visit: AdminVisit, subscriber_id: int, done: str = "", sig: str = ""
    ) -> Response:
        """One subscriber: time zone, subscriptions with their schedules, deliveries."""
        if done and notice_valid(web.secret_key, done, sig):
            visit.notices.append(done)
        return page(request, visit, subscriber_id)

    @router.post("/subscribers/{subscriber_id:int}/timezone", response_class=HTMLResponse)
    def set_zone(
        request: Request,
        visit: CheckedVisit,
        subscriber_id: int,
        timezone: Annotated[str, Form()] = "",
    ) -> Response:
        """Set the time zone the subscriber's daily and weekly times are in."""
        try:
            zone = check_timezone(timezone.strip())
            with Session(web.engine) as session, session.begin():
                subscriber = _subscriber(session, subscriber_id)
                subscribe_topics(session, email=subscriber.email, topics=[], schedule=None,
                                 timezone=zone, name=None, now=web.clock())  # fmt: skip
        except (MonitorError, ValueError) as exc:
            return page(request, visit, subscriber_id, 400, errors=[str(exc)])
        return done(request, visit, subscriber_id, f"Time zone: {zone}.")

    @router.post("/subscribers/{subscriber_id:int}/schedule", response_class=HTMLResponse)
    def set_schedule(
        request: Request,
        visit: CheckedVisit,
        subscriber_id: int,
        topic: Annotated[str, Form()] = "",
        frequency: Annotated[Frequency, Form()] = Frequency.DAILY,
        send_time: Annotated[str, Form()] = "08:00",
        weekday: Annotated[int, Form(ge=0, le=6)] = 0,
    ) -> Response:
        """Change one subscription's schedule (an ended one starts again, from now)."""
        try:
            schedule = make_schedule(frequency, check_send_time(send_time.strip()), weekday)
            with Session(web.engine) as session, session.begin():
                subscriber = _subscriber(session, subscriber_id)
                found = get_topic(session, topic)
                if found is None:
                    raise UsageError(f"no topic {topic!r}")
                result = subscribe_topics(session, email=subscriber.email, topics=[found],
                                          schedule=schedule, timezone=None, name=None,
                                          now=web.clock())  # fmt: skip
        except (MonitorError, ValueError) as exc:
            return page(request, visit, subscriber_id, 400, errors=[str(exc)])
        what = "unchanged" if result.unchanged else "started again" if result.reactivated else ""
        return done(request, visit, subscriber_id,
                    f"{topic}: {schedule.describe()}{f' ({what})' if what else ''}.")  # fmt: skip

    return router


def _subscriber(session: Session, subscriber_id: int) -> Subscriber:
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None:
        raise UsageError(f"There is no subscriber {subscriber_id}.")
    return subscriber
