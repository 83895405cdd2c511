"""Fetch a feed over HTTP, safely: the address guard on every connection, redirects followed
one by one (loops and non-http targets refused), a hard deadline for the whole exchange, and a
cap on the decoded size enforced while decompressing."""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpcore
import httpx

from monitor.errors import FetchError
from monitor.settings import FetchSettings
from monitor.sources.guard import AddressPolicy, AddressRefusedError, GuardedBackend, Resolver

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
# Only encodings we decompress ourselves, with a bounded output per step (see _Inflater).
ACCEPT_ENCODING = "gzip, deflate"
MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
PERMANENT_REDIRECTS = frozenset({301, 308})
RETRY_AFTER_STATUSES = frozenset({429, 503})


class FetchStatusError(FetchError):
    """The server answered with an error status; ``retry_after`` when it asked us to wait."""

    def __init__(
        self, url: str, message: str, *, status: int, retry_after: timedelta | None = None
    ) -> None:
        super().__init__(url, message, status=status)
        self.retry_after = retry_after

    @property
    def gone(self) -> bool:
        """Whether the server says the feed is gone for good (410)."""
        return self.status == 410


@dataclass(frozen=True, slots=True)
class FetchedFeed:
    """What a fetch returned: a body (status 200) or nothing new (status 304).

    ``moved_to`` is the new address when the feed's URL answered with permanent redirects
    (301/308 only, from the first hop on). The cache headers are kept raw for the scheduler.
    """

    url: str
    status: int
    body: bytes
    etag: str | None
    last_modified: str | None
    content_type: str | None
    moved_to: str | None = None
    cache_control: str | None = None
    expires: str | None = None
    date: str | None = None

    @property
    def not_modified(self) -> bool:
        """Whether the server said the feed has not changed since our last fetch."""
        return self.status == 304

    @property
    def body_hash(self) -> str:
        """SHA-256 of the body, to spot an unchanged feed behind a server whose validators lie."""
        return hashlib.sha256(self.body).hexdigest()


def build_client(settings: FetchSettings, *, resolver: Resolver | None = None) -> httpx.AsyncClient:
    """The HTTP client every feed fetch shares, its connections guarded by the address policy."""
    timeout = httpx.Timeout(
        settings.timeout.total_seconds(), connect=settings.connect_timeout.total_seconds()
    )
    limits = httpx.Limits(
        max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency
    )
    policy = AddressPolicy.from_strings(settings.allow_networks)
    backend = (
        GuardedBackend(policy) if resolver is None else GuardedBackend(policy, resolver=resolver)
    )
    transport = httpx.AsyncHTTPTransport(limits=limits, trust_env=False)
    # httpx has no public hook for the network backend; its pool is rebuilt around ours.
    transport._pool = httpcore_pool(limits, backend)
    return httpx.AsyncClient(
        headers={
            "User-Agent": settings.user_agent,
            "Accept": ACCEPT,
            "Accept-Encoding": ACCEPT_ENCODING,
        },
        timeout=timeout,
        transport=transport,
        # Redirects are followed by hand, so each hop is checked and counted (_follow).
        follow_redirects=False,
        # No proxy from the environment: a proxy would connect on our behalf, past the guard.
        trust_env=False,
    )


def httpcore_pool(limits: httpx.Limits, backend: GuardedBackend) -> httpcore.AsyncConnectionPool:
    """A connection pool like httpx's own, on the guarded network backend."""
    return httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=backend,
    )


def conditional_headers(etag: str | None, last_modified: str | None) -> dict[str, str]:
    """Validators for a conditional GET."""
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


def parse_retry_after(value: str | None, *, now: datetime) -> timedelta | None:
    """A Retry-After header (seconds, or an HTTP date) as a wait from ``now``."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when - now, timedelta(0))


async def fetch_feed(
    client: httpx.AsyncClient,
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    max_bytes: int,
    deadline: float,
    accept: str | None = None,
    check_type: Callable[[str | None], None] | None = None,
) -> FetchedFeed:
    """GET a feed; raise FetchError saying what went wrong (status, size, deadline, network).

    ``accept`` replaces the client's Accept header (article pages ask for HTML);
    ``check_type`` sees the final answer's Content-Type before its body is read, and raises to
    refuse it (a page that is a PDF is not downloaded).
    """
    if not _is_http(url):
        raise FetchError(url, "only http and https URLs can be fetched")
    headers = conditional_headers(etag, last_modified)
    if accept:
        headers["Accept"] = accept
    try:
        async with asyncio.timeout(deadline):
            return await _follow(client, url, headers, max_bytes, check_type)
    except TimeoutError:
        raise FetchError(url, f"no complete answer within {deadline:g} s") from None
    except AddressRefusedError as exc:
        raise FetchError(url, str(exc)) from None
    except httpx.TimeoutException:
        raise FetchError(url, "timed out") from None
    except httpx.ConnectError as exc:
        raise FetchError(url, f"cannot connect: {_reason(exc)}") from None
    except httpx.HTTPError as exc:
        raise FetchError(url, f"{type(exc).__name__}: {_reason(exc)}") from None


async def _follow(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    max_bytes: int,
    check_type: Callable[[str | None], None] | None = None,
) -> FetchedFeed:
    current, seen = url, {url}
    moved_to: str | None = None
    permanent_so_far = True
    for _ in range(MAX_REDIRECTS + 1):
        try:
            async with client.stream("GET", current, headers=headers) as response:
                target = _redirect_target(response)
                if target is None:
                    return await _answer(response, url, max_bytes, moved_to, check_type)
        except AddressRefusedError as exc:
            if current == url:
                raise
            raise FetchError(url, f"redirect to {current}: {exc}") from None
        if not _is_http(target):
            raise FetchError(url, f"redirect to {target!r} refused: only http and https")
        if target in seen:
            raise FetchError(url, f"redirect loop: {current} redirects back to {target}")
        # Only a chain of permanent redirects from the first hop moves the feed for good.
        permanent_so_far = permanent_so_far and response.status_code in PERMANENT_REDIRECTS
        if permanent_so_far:
            moved_to = target
        seen.add(target)
        current = target
    raise FetchError(url, f"more than {MAX_REDIRECTS} redirects")


def _redirect_target(response: httpx.Response) -> str | None:
    location = response.headers.get("Location")
    if response.status_code not in REDIRECT_STATUSES or not location:
        return None
    try:
        return str(response.url.join(location.strip()))
    except httpx.InvalidURL:
        return str(location)


async def _answer(
    response: httpx.Response,
    url: str,
    max_bytes: int,
    moved_to: str | None,
    check_type: Callable[[str | None], None] | None = None,
) -> FetchedFeed:
    status = response.status_code
    if status != 304 and not response.is_success:
        retry_after = None
        if status in RETRY_AFTER_STATUSES:
            retry_after = parse_retry_after(
                response.headers.get("Retry-After"), now=datetime.now(UTC)
            )
        raise FetchStatusError(
            url,
            f"HTTP {status} {response.reason_phrase}".strip(),
            status=status,
            retry_after=retry_after,
        )
    if check_type is not None and status != 304:
        check_type(response.headers.get("Content-Type"))
    body = b"" if status == 304 else await _read_capped(response, url, max_bytes)
    return FetchedFeed(
        url=str(response.url),
        status=status,
        body=body,
        etag=response.headers.get("ETag"),
        last_modified=response.headers.get("Last-Modified"),
        content_type=response.headers.get("Content-Type"),
        moved_to=moved_to,
        cache_control=response.headers.get("Cache-Control"),
        expires=response.headers.get("Expires"),
        date=response.headers.get("Date"),
    )


class _Inflater:
    """Decodes a Content-Encoding step by step, never producing more than asked for."""

    def __init__(self, url: str, encoding: str) -> None:
        names = [part.strip().lower() for part in encoding.split(",") if part.strip()]
        names = [name for name in names if name != "identity"]
        if len(names) > 1 or (names and names[0] not in ("gzip", "x-gzip", "deflate")):
            raise FetchError(url, f"unsupported Content-Encoding {encoding!r}")
        self.url = url
        self.encoding = names[0] if names else ""
        # wbits 47: zlib or gzip header, detected; "deflate" sent raw is handled in _start_raw.
        self._decoder = zlib.decompressobj(wbits=47) if self.encoding else None
        self._started = False

    def decode(self, data: bytes, room: int) -> tuple[bytes, bytes]:
        """Up to ``room`` decoded bytes from ``data``, and the input left to decode."""
        if self._decoder is None:
            return data[:room], data[room:]
        try:
            out = self._decoder.decompress(data, room)
        except zlib.error as exc:
            if self.encoding == "deflate" and not self._started:
                self._decoder = zlib.decompressobj(wbits=-zlib.MAX_WBITS)
                self._started = True
                return self.decode(data, room)
            raise FetchError(self.url, f"corrupt {self.encoding} body: {exc}") from None
        self._started = True
        rest = self._decoder.unconsumed_tail
        if self._decoder.eof and self._decoder.unused_data:
            # Another gzip member follows (concatenated gzip files are valid gzip).
            rest = self._decoder.unused_data
            self._decoder = zlib.decompressobj(wbits=47)
        return out, rest


async def _read_capped(response: httpx.Response, url: str, max_bytes: int) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(url, f"body of {int(declared):,} bytes exceeds the {max_bytes:,} byte cap")
    inflater = _Inflater(url, response.headers.get("Content-Encoding", ""))
    chunks: list[bytes] = []
    size = 0
    # Raw bytes, decoded here: httpx would inflate a whole network chunk at once, and 64 KB of
    # gzip can inflate to 64 MB. Asking for at most one byte over the cap bounds the memory.
    async for raw in response.aiter_raw():
        data = raw
        while data:
            out, rest = inflater.decode(data, max_bytes - size + 1)
            size += len(out)
            if size > max_bytes:
                raise FetchError(url, f"body exceeds the {max_bytes:,} byte cap")
            chunks.append(out)
            if not out and len(rest) >= len(data):
                break  # no progress: the decoder needs more input first
            data = rest
    return b"".join(chunks)


def _is_http(url: str) -> bool:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return False
    return parsed.scheme in ("http", "https") and bool(parsed.host)


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[-1] if text else type(exc).__name__
