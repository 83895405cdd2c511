"""The API's channels under /api/channels: list, subscribe, end, send a test message.

Every endpoint needs the API token (channels hold credentials and personal data). URLs are
shown masked, secrets never, except a webhook's new signing secret in the answer that made it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.routing import APIRoute
from jinja2 import Environment
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine
from sqlmodel import Session

from monitor.delivery.channels.manage import send_test_message, subscribe_channel
from monitor.delivery.channels.store import (
    ChannelRow,
    end_channel,
    list_channels,
    require_channel,
)
from monitor.delivery.subscriptions import check_email, make_schedule
from monitor.errors import DeliveryError, NotFoundError
from monitor.models import Frequency
from monitor.settings import Settings
from monitor.sources.admission import HostResolver
from monitor.sources.guard import AddressPolicy
from monitor.topics.catalog import get_topic

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SLUG = r"^[a-z0-9][a-z0-9-]{0,99}$"
# Ids are 32-bit integers in the database.
ChannelId = Annotated[int, Path(ge=1, le=2**31 - 1, description="A channel's id.")]


class ChannelOut(BaseModel):
    """A channel as the API shows it: its URL masked, its secret never."""

    id: int
    email: str
    kind: str
    url: str
    name: str
    schedule: str
    topics: list[str]
    priority: str
    state: str
    last_status: str
    last_error: str
    last_at: datetime | None


class ChannelIn(BaseModel):
    """A channel for an address (made a subscriber if new): a webhook or an Apprise URL."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320)
    url: str = Field(min_length=1, max_length=2000)
    topics: list[Annotated[str, Field(pattern=SLUG)]] = Field(default_factory=list,
                                                              max_length=200)  # fmt: skip
    frequency: Frequency | None = None
    time: Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")] = "08:00"
    weekday: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = "mon"
    priority: Literal["high", "any"] | None = None
    name: str | None = Field(default=None, max_length=200)
    secret: str | None = Field(default=None, max_length=200)
    template: str | None = Field(default=None, max_length=100)


class ChannelSaved(BaseModel):
    """A channel subscribed; ``secret``: a webhook's signing secret made now, shown this once."""

    channel: ChannelOut
    created: bool
    secret: str | None


class ChannelEnded(BaseModel):
    """Whether the channel was active until now."""

    ended: bool


class ChannelTested(BaseModel):
    """What a test message got: ``ok``, and the channel's answer or why it failed."""

    ok: bool
    answer: str


def channel_out(row: ChannelRow) -> ChannelOut:
    """The API's view of a listed channel."""
    return ChannelOut(id=row.id, email=row.email, kind=row.kind, url=row.shown_url, name=row.name,
                      schedule=row.schedule, topics=list(row.topics), priority=row.priority,
                      state=row.state, last_status=row.last_status, last_error=row.last_error,
                      last_at=row.last_at)  # fmt: skip


def channels_router(
    settings: Settings,
    engine: Engine,
    env: Callable[[], Environment],
    admin: Callable[..., None],
    *,
    clock: Callable[[], datetime],
    resolve: HostResolver,
    route_class: type[APIRoute],
) -> APIRouter:
    """The /channels routes (mounted under /api); ``admin`` is the token dependency, and
    ``route_class`` the API's (errors as JSON)."""
    router = APIRouter(prefix="/channels", dependencies=[Depends(admin)], route_class=route_class)
    policy = AddressPolicy.from_strings(
        settings.channels.allow_networks, setting="channels.allow_networks"
    )

    def row_of(session: Session, channel_id: int) -> ChannelOut:
        [row] = [r for r in list_channels(session) if r.id == channel_id]
        return channel_out(row)

    @router.get("", response_model=list[ChannelOut])
    def get_channels(
        email: Annotated[str | None, Query(max_length=320)] = None,
    ) -> list[ChannelOut]:
        """Every channel (or one address's), ended ones too."""
        address = check_email(email) if email is not None else None
        with Session(engine) as session:
            return [channel_out(row) for row in list_channels(session, email=address)]

    @router.post("", response_model=ChannelSaved, status_code=201)
    def post_channel(body: ChannelIn, response: Response) -> ChannelSaved:
        """Give an address a channel (201), or change the one it has with that URL (200)."""
        email = check_email(body.email)
        schedule = None
        if body.frequency is not None:
            schedule = make_schedule(body.frequency, body.time, WEEKDAYS.index(body.weekday))
        with Session(engine) as session, session.begin():
            topics = []
            for slug in dict.fromkeys(body.topics):
                topic = get_topic(session, slug)
                if topic is None:
                    raise NotFoundError(f"no topic {slug!r}")
                topics.append(topic)
            saved = subscribe_channel(session, email=email, url=body.url, topics=topics,
                                      schedule=schedule, policy=policy, now=clock(),
                                      priority=body.priority, name=body.name, secret=body.secret,
                                      template=body.template, env=env() if body.template else None,
                                      resolve=resolve)  # fmt: skip
            channel_id = saved.channel.id or 0
        with Session(engine) as session:
            shown = row_of(session, channel_id)
        if not saved.created:
            response.status_code = 200
        return ChannelSaved(channel=shown, created=saved.created, secret=saved.new_secret)

    @router.delete("/{channel_id}", response_model=ChannelEnded)
    def delete_channel(channel_id: ChannelId) -> ChannelEnded:
        """End a channel (its history stays; what is pending for it still goes)."""
        with Session(engine) as session, session.begin():
            channel = require_channel(session, str(channel_id))
            active = channel.ended_at is None
            if active:
                end_channel(session, channel, now=clock())
        return ChannelEnded(ended=active)

    @router.post("/{channel_id}/test", response_model=ChannelTested)
    async def test_channel(channel_id: ChannelId) -> ChannelTested:
        """Send the channel a test message now (recorded nowhere); what it answered."""
        with Session(engine) as session:
            require_channel(session, str(channel_id))
        try:
            answer = await send_test_message(engine, settings, env(), channel_id)
        except DeliveryError as exc:
            return ChannelTested(ok=False, answer=str(exc))
        return ChannelTested(ok=True, answer=answer)

    return router
