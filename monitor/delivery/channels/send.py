"""Sending one delivery to its channel: compose what the channel takes, hand it over, say how
it went. The outbox (``dispatch.py``) leases, marks and retries; this only sends."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import httpx
from jinja2 import Environment

from monitor.delivery.channels.apprise_sender import (
    SyncResolver,
    body_limit,
    native_format,
    send_apprise,
    system_pairs,
)
from monitor.delivery.channels.compose import (
    ChatMessage,
    render_chat,
    webhook_body,
    webhook_payload,
)
from monitor.delivery.channels.targets import guard_log, instantiate_apprise
from monitor.delivery.channels.webhook import (
    build_webhook_client,
    post_webhook,
    signed_headers,
)
from monitor.delivery.digest import AlsoCarried, Digest, DigestArticle, DigestSection
from monitor.delivery.render import Letterhead
from monitor.delivery.tokens import make_digest_token
from monitor.errors import PermanentDeliveryError
from monitor.models import Channel, ChannelKind, utcnow
from monitor.settings import Settings
from monitor.sources.guard import AddressPolicy, Resolver


@dataclass(frozen=True, slots=True)
class ChannelJob:
    """One delivery to one channel, as the sender needs it."""

    delivery_id: int
    key: str
    period_key: str
    channel: Channel
    digest: Digest
    kind: str = "digest"


class ChannelSender:
    """Sends to webhooks (one guarded HTTP client, opened on first use) and Apprise services,
    with the settings' limits; the resolvers are injectable so tests need no DNS."""

    def __init__(
        self,
        settings: Settings,
        env: Environment,
        *,
        resolver: Resolver | None = None,
        sync_resolver: SyncResolver = system_pairs,
    ) -> None:
        self.settings = settings
        self.env = env
        self.resolver = resolver
        self.sync_resolver = sync_resolver
        self.policy = AddressPolicy.from_strings(
            settings.channels.allow_networks, setting="channels.allow_networks"
        )
        self._client: httpx.AsyncClient | None = None
        self._letterhead: Letterhead | None = None

    @property
    def letterhead(self) -> Letterhead:
        """The instance's sender details and link key, loaded on first use."""
        if self._letterhead is None:
            self._letterhead = Letterhead.from_settings(self.settings)
        return self._letterhead

    def client(self) -> httpx.AsyncClient:
        """The webhook client, made on first use."""
        if self._client is None:
            self._client = build_webhook_client(
                self.settings.channels, self.settings.fetch.user_agent, resolver=self.resolver
            )
        return self._client

    async def aclose(self) -> None:
        """Close the webhook client's connections."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def digest_url(self, job: ChannelJob) -> str:
        """The page listing every story of the delivery (a chat lists only the first few)."""
        if job.kind != "digest":
            return ""
        letterhead = self.letterhead
        token = make_digest_token(
            letterhead.secret_key,
            delivery_id=job.delivery_id,
            subscriber_id=job.digest.subscriber_id,
        )
        return f"{letterhead.base_url.rstrip('/')}/digests/{token}"

    async def send(self, job: ChannelJob) -> str:
        """Send the job; what the channel answered, in words. A DeliveryError when it did not
        take it (ConfigError when a template fails on this digest)."""
        guard_log(job.channel.url, job.channel.secret)
        if job.channel.kind == ChannelKind.WEBHOOK:
            return await self._send_webhook(job)
        return await self._send_apprise(job)

    async def _send_webhook(self, job: ChannelJob) -> str:
        channel = job.channel
        if not channel.secret:
            raise PermanentDeliveryError(f"webhook {channel.shown_url}: it has no signing secret")
        payload = webhook_payload(job.digest, key=job.key, period_key=job.period_key,
                                  channel_id=channel.id or 0, channel_name=channel.name,
                                  digest_url=self.digest_url(job), kind=job.kind)  # fmt: skip
        body = webhook_body(self.env, payload, template=channel.template)
        # Signed per attempt: the timestamp is the attempt's, as receivers' replay checks expect.
        headers = signed_headers(channel.secret, job.key, body, now=utcnow())
        answer = await post_webhook(self.client(), channel.url, body, headers,
                                    settings=self.settings.channels,
                                    shown_url=channel.shown_url)  # fmt: skip
        return f"answered {answer.status} in {answer.seconds:.2f} s"

    async def _send_apprise(self, job: ChannelJob) -> str:
        channel = job.channel
        plugin = instantiate_apprise(channel.url)
        if plugin is None:
            raise PermanentDeliveryError(f"channel {channel.shown_url}: Apprise cannot read it")
        message = self.chat_message(job, plugin)
        await send_apprise(
            channel.url,
            message,
            key=job.key,
            shown_url=channel.shown_url,
            policy=self.policy,
            deadline=self.settings.channels.timeout.total_seconds(),
            resolve=self.sync_resolver,
        )
        return f"accepted ({message.format})"

    def chat_message(self, job: ChannelJob, plugin: Any) -> ChatMessage:
        """The chat message for the service, in its format, listing as many stories as fit
        in one of its messages (at most ``channels.max_stories``)."""
        limit = body_limit(plugin)
        stories = self.settings.channels.max_stories
        while True:
            message = render_chat(
                self.env,
                job.digest,
                format_name=native_format(plugin),
                prefix=self.settings.digest.subject_prefix,
                digest_url=self.digest_url(job),
                max_stories=stories,
                template=job.channel.template,
            )
            if len(message.body) <= limit or stories <= 1:
                return message
            stories = max(1, stories // 2)


def trial_job(channel: Channel, *, email: str, now: datetime) -> ChannelJob:
    """A test message for a channel: one sample story, its own idempotency key."""
    article = DigestArticle(
        title="Test message from monitor: this channel works",
        url="https://github.com/monitor-news/monitor",
        outlet="monitor",
        published_at=now,
        first_seen_at=now,
        excerpt="Sent by `monitor channels test`: alerts for the topics this channel follows "
        "will look like this.",
        terms=("test",),
        also=(AlsoCarried("monitor docs", "https://github.com/monitor-news/monitor#readme"),),
        language="en",
    )
    digest = Digest(
        delivery_id=0,
        message_id="",
        email=email,
        name="",
        timezone="UTC",
        created_at=now,
        sections=[DigestSection("test", "Test", [article])],
        frequency=str(channel.frequency),
        articles=2,
    )
    key = f"msg_test_{secrets.token_hex(8)}"
    return ChannelJob(0, key, f"test:{now:%Y-%m-%dT%H:%M:%SZ}", channel, replace(digest), "test")
