"""Webhooks: a signed JSON POST, through the address guard, inside a deadline and a size cap.

Signed as Standard Webhooks 1.0 says (Svix, Make, many others; their libraries verify it):
``webhook-id`` is the delivery's idempotency key (the same on every attempt),
``webhook-timestamp`` the attempt's Unix time, and ``webhook-signature`` ``v1,`` and the
base64 HMAC-SHA256, keyed by the channel's secret, of ``{id}.{timestamp}.{body}``. A receiver
recomputes it over the raw body, compares in constant time and refuses a timestamp more than
five minutes off, so a captured request cannot be replayed later. ``Idempotency-Key`` repeats
the id for receivers that look for that header.

The answer decides what happens next: 2xx is sent; 410 Gone disables the channel; 408, 425,
429 and 5xx, timeouts and connection failures are temporary (``Retry-After`` honoured); any
other status, redirects included (they are not followed: the URL should be updated), is
permanent. The answer's start is recorded either way.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

from monitor.delivery.channels.targets import mask_http_url, redact, secret_key
from monitor.errors import ChannelGoneError, PermanentDeliveryError, TemporaryDeliveryError
from monitor.settings import ChannelsSettings
from monitor.sources.fetch import httpcore_pool, parse_retry_after
from monitor.sources.guard import AddressPolicy, AddressRefusedError, GuardedBackend, Resolver

TEMPORARY_STATUSES = frozenset({408, 425, 429})
# The start of an answer kept in the delivery's last error.
ANSWER_CHARS = 200


@dataclass(frozen=True, slots=True)
class WebhookAnswer:
    """What a webhook endpoint answered: status, how long it took, its first words."""

    status: int
    seconds: float
    text: str


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,`` and base64 HMAC-SHA256 of id.timestamp.body."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, message_id: str, body: bytes, *, now: datetime) -> dict[str, str]:
    """The headers of one attempt: the id, the attempt's time and their signature."""
    timestamp = int(now.timestamp())
    return {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
        "Idempotency-Key": message_id,
    }


def build_webhook_client(
    settings: ChannelsSettings, user_agent: str, *, resolver: Resolver | None = None
) -> httpx.AsyncClient:
    """The HTTP client webhooks share: the feed fetcher's address guard on every connection
    (``channels.allow_networks`` opening networks), no redirects, no proxies from the
    environment (they would connect past the guard)."""
    policy = AddressPolicy.from_strings(settings.allow_networks, setting="channels.allow_networks")
    backend = (
        GuardedBackend(policy) if resolver is None else GuardedBackend(policy, resolver=resolver)
    )
    limits = httpx.Limits(max_connections=settings.concurrency * 2)
    transport = httpx.AsyncHTTPTransport(limits=limits, trust_env=False)
    transport._pool = httpcore_pool(limits, backend)
    seconds = settings.timeout.total_seconds()
    return httpx.AsyncClient(
        headers={"User-Agent": user_agent},
        timeout=httpx.Timeout(seconds),
        transport=transport,
        follow_redirects=False,
        trust_env=False,
    )


async def post_webhook(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    settings: ChannelsSettings,
    shown_url: str,
) -> WebhookAnswer:
    """POST ``body``; the answer when it is 2xx, else the DeliveryError it amounts to (its
    message names ``shown_url``, never the URL itself)."""
    deadline = settings.timeout.total_seconds()
    started = time.monotonic()
    try:
        async with asyncio.timeout(deadline):
            async with client.stream("POST", url, content=body, headers=headers) as response:
                text = await _read_answer(response, settings.max_response_bytes)
    except TimeoutError:
        raise TemporaryDeliveryError(
            f"webhook {shown_url}: no complete answer within {deadline:g} s"
        ) from None
    except AddressRefusedError as exc:
        raise PermanentDeliveryError(f"webhook {shown_url}: {exc.reason}") from None
    except httpx.HTTPError as exc:
        reason = redact(str(exc) or type(exc).__name__, url)
        raise TemporaryDeliveryError(f"webhook {shown_url}: {reason}") from None
    answer = WebhookAnswer(response.status_code, time.monotonic() - started, text)
    _judge(response, answer, shown_url, settings)
    return answer


async def _read_answer(response: httpx.Response, limit: int) -> str:
    """The answer's start (at most ``limit`` bytes are read), as one line of text."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    text = b"".join(chunks)[:limit].decode("utf-8", "replace")
    return " ".join(text.split())[:ANSWER_CHARS]


def _judge(
    response: httpx.Response, answer: WebhookAnswer, shown_url: str, settings: ChannelsSettings
) -> None:
    """Raise the error a non-2xx answer amounts to."""
    status = answer.status
    if 200 <= status < 300:
        return
    said = f"webhook {shown_url}: answered {status} {response.reason_phrase}".rstrip()
    if answer.text:
        said += f": {answer.text}"
    if status == 410:
        raise ChannelGoneError(said + " (the channel is disabled)")
    if status in TEMPORARY_STATUSES or status >= 500:
        wait = parse_retry_after(response.headers.get("Retry-After"), now=datetime.now(UTC))
        if wait is not None:
            wait = min(wait, settings.max_retry_after)
            said += f" (Retry-After {_seconds(wait)})"
        raise TemporaryDeliveryError(said, retry_after=wait)
    if 300 <= status < 400:
        location = response.headers.get("Location", "")
        said += " (redirects are not followed: give the channel the URL it moved to"
        said += f", {mask_http_url(location)})" if location else ")"
    raise PermanentDeliveryError(said)


def _seconds(wait: timedelta) -> str:
    return f"{wait.total_seconds():g} s"
