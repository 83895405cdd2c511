"""Fetch a feed over HTTP: conditional GET, a hard deadline and a cap on the decoded size."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass

import httpx

from monitor.errors import FetchError
from monitor.settings import FetchSettings

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
MAX_REDIRECTS = 5


@dataclass(frozen=True, slots=True)
class FetchedFeed:
    """What a fetch returned: a body (status 200) or nothing new (status 304)."""

    url: str
    status: int
    body: bytes
    etag: str | None
    last_modified: str | None
    content_type: str | None

    @property
    def not_modified(self) -> bool:
        """Whether the server said the feed has not changed since our last fetch."""
        return self.status == 304

    @property
    def body_hash(self) -> str:
        """SHA-256 of the body, to spot an unchanged feed behind a server whose validators lie."""
        return hashlib.sha256(self.body).hexdigest()


def build_client(settings: FetchSettings) -> httpx.AsyncClient:
    """The HTTP client every feed fetch shares."""
    timeout = httpx.Timeout(
        settings.timeout.total_seconds(), connect=settings.connect_timeout.total_seconds()
    )
    limits = httpx.Limits(
        max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency
    )
    return httpx.AsyncClient(
        headers={"User-Agent": settings.user_agent, "Accept": ACCEPT},
        timeout=timeout,
        limits=limits,
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
    )


def conditional_headers(etag: str | None, last_modified: str | None) -> dict[str, str]:
    """Validators for a conditional GET."""
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


async def fetch_feed(
    client: httpx.AsyncClient,
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    max_bytes: int,
    deadline: float,
) -> FetchedFeed:
    """GET a feed; raise FetchError saying what went wrong (status, size, deadline, network)."""
    scheme = httpx.URL(url).scheme if _is_url(url) else ""
    if scheme not in ("http", "https"):
        raise FetchError(url, "only http and https URLs can be fetched")
    try:
        async with asyncio.timeout(deadline):
            return await _get(client, url, conditional_headers(etag, last_modified), max_bytes)
    except TimeoutError:
        raise FetchError(url, f"no complete answer within {deadline:g} s") from None
    except httpx.TooManyRedirects:
        raise FetchError(url, f"more than {MAX_REDIRECTS} redirects") from None
    except httpx.TimeoutException:
        raise FetchError(url, "timed out") from None
    except httpx.ConnectError as exc:
        raise FetchError(url, f"cannot connect: {_reason(exc)}") from None
    except httpx.HTTPError as exc:
        raise FetchError(url, f"{type(exc).__name__}: {_reason(exc)}") from None


async def _get(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], max_bytes: int
) -> FetchedFeed:
    async with client.stream("GET", url, headers=headers) as response:
        if response.status_code != 304 and not response.is_success:
            raise FetchError(
                url,
                f"HTTP {response.status_code} {response.reason_phrase}".strip(),
                status=response.status_code,
            )
        body = b"" if response.status_code == 304 else await _read_capped(response, url, max_bytes)
        return FetchedFeed(
            url=str(response.url),
            status=response.status_code,
            body=body,
            etag=response.headers.get("ETag"),
            last_modified=response.headers.get("Last-Modified"),
            content_type=response.headers.get("Content-Type"),
        )


async def _read_capped(response: httpx.Response, url: str, max_bytes: int) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(url, f"body of {int(declared):,} bytes exceeds the {max_bytes:,} byte cap")
    chunks: list[bytes] = []
    size = 0
    # aiter_bytes yields decoded bytes, so the cap also stops compressed bodies that balloon.
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise FetchError(url, f"body exceeds the {max_bytes:,} byte cap")
        chunks.append(chunk)
    return b"".join(chunks)


def _is_url(url: str) -> bool:
    try:
        httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return False
    return True


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[-1] if text else type(exc).__name__
