"""The channels part of the subscribers page: add a channel to an address, send one a test
message, end, disable or enable it. URLs are shown masked; a webhook's new signing secret is
shown once, in the notice of the page that made it."""

# No ``from __future__ import annotations``: the routes' parameters are annotated with the
# dependency handed in, which FastAPI must see as an object, not as a name to look up.
import asyncio
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from monitor.delivery.channels.manage import send_test_message, subscribe_channel
from monitor.delivery.channels.store import end_channel, require_channel, set_disabled
from monitor.delivery.render import load_templates
from monitor.delivery.subscriptions import check_email, check_send_time, make_schedule
from monitor.errors import DeliveryError, MonitorError
from monitor.models import Frequency
from monitor.sources.guard import AddressPolicy
from monitor.topics.catalog import list_topics

# The subscribers page, rendered with what a channel action adds (a status, notices, errors).
Page = Callable[..., Response]


def channel_routes(web: Any, page: Page, checked: Any) -> APIRouter:
    """The /subscribers/channels routes; ``page`` renders the subscribers page, ``checked``
    is the signed-in, CSRF-checked visit's dependency."""
    router = APIRouter()
    policy = AddressPolicy.from_strings(
        web.settings.channels.allow_networks, setting="channels.allow_networks"
    )

    @router.post("/subscribers/channels", response_class=HTMLResponse)
    def add(
        request: Request,
        visit: Annotated[Any, checked],
        email: Annotated[str, Form()] = "",
        url: Annotated[str, Form()] = "",
        name: Annotated[str, Form()] = "",
        priority: Annotated[str, Form()] = "any",
        frequency: Annotated[Frequency, Form()] = Frequency.INSTANT,
        send_time: Annotated[str, Form()] = "08:00",
        weekday: Annotated[int, Form(ge=0, le=6)] = 0,
        topic: Annotated[list[str] | None, Form()] = None,
    ) -> Response:
        """Give an address (made a subscriber if new) a webhook or an Apprise channel."""
        form = {"email": email, "name": name, "priority": priority, "frequency": frequency.value,
                "send_time": send_time, "weekday": weekday, "topics": topic or []}  # fmt: skip
        try:
            address = check_email(email.strip())
            schedule = make_schedule(frequency, check_send_time(send_time.strip()), weekday)
            with Session(web.engine) as session, session.begin():
                chosen = [t for t in list_topics(session) if t.slug in (topic or [])]
                saved = subscribe_channel(session, email=address, url=url, topics=chosen,
                                          schedule=schedule, policy=policy, now=web.clock(),
                                          priority=priority, name=name.strip(),
                                          resolve=web.resolve)  # fmt: skip
                said = f"Channel {saved.channel.id} of {address}: {saved.channel.shown_url}."
        except (MonitorError, ValueError) as exc:
            return page(request, visit, 400, channel_form=form, errors=[str(exc)])
        visit.notices.append(said)
        if saved.new_secret:
            visit.notices.append(
                f"Its signing secret, shown this once (keep it now): {saved.new_secret}"
            )
        return page(request, visit)

    @router.post("/subscribers/channels/{channel_id}/{action}", response_class=HTMLResponse)
    def act(request: Request, visit: Annotated[Any, checked], channel_id: int,
            action: str) -> Response:  # fmt: skip
        """test, end, disable or enable one channel."""
        try:
            said = _act(web, channel_id, action)
        except MonitorError as exc:
            return page(request, visit, 400, errors=[str(exc)])
        visit.notices.append(said)
        return page(request, visit)

    return router


def _act(web: Any, channel_id: int, action: str) -> str:
    now = web.clock()
    if action == "test":
        env = load_templates(web.settings)
        try:
            answer = asyncio.run(send_test_message(web.engine, web.settings, env, channel_id))
        except DeliveryError as exc:
            return f"Test message to channel {channel_id} failed: {exc}"
        return f"Test message sent to channel {channel_id}: {answer}."
    with Session(web.engine) as session, session.begin():
        channel = require_channel(session, str(channel_id))
        if action == "end":
            end_channel(session, channel, now=now)
            return f"Channel {channel_id} ended."
        if action in ("disable", "enable"):
            reason = "disabled on the web" if action == "disable" else None
            set_disabled(session, channel_id, reason, now=now)
            return f"Channel {channel_id} {action}d."
    raise MonitorError(f"no such action {action!r}")
