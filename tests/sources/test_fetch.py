"""fetch_feed against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gzip
import time

import pytest

from monitor.errors import FetchError
from monitor.settings import FetchSettings
from monitor.sources.fetch import FetchedFeed, build_client, fetch_feed
from tests.utils.feedserver import LAST_MODIFIED, FeedServer
from tests.utils.smtpserver import free_port

BODY = b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title></channel></rss>'
CAP = 1_000
# The server is on 127.0.0.1, refused unless allowed.
LOCAL = FetchSettings(allow_networks=["127.0.0.0/8"])


def fetch(
    url: str,
    *,
    etag: str | None = None,
    max_bytes: int = CAP,
    deadline: float = 10.0,
) -> FetchedFeed:
    """Run one fetch_feed with a client built from default settings."""

    async def run() -> FetchedFeed:
        async with build_client(LOCAL) as client:
            return await fetch_feed(client, url, etag=etag, max_bytes=max_bytes, deadline=deadline)

    return asyncio.run(run())


def test_ok_returns_body_validators_and_url(feed_server: FeedServer) -> None:
    url = feed_server.add("/feed.xml", BODY, content_type="application/rss+xml")

    fetched = fetch(url)

    assert (fetched.status, fetched.body, fetched.url) == (200, BODY, url)
    assert fetched.etag == feed_server.routes["/feed.xml"].etag
    assert fetched.last_modified == LAST_MODIFIED
    assert fetched.content_type == "application/rss+xml"
    assert not fetched.not_modified


def test_conditional_request_with_etag_is_not_modified(feed_server: FeedServer) -> None:
    url = feed_server.add("/feed.xml", BODY)
    first = fetch(url)

    second = fetch(url, etag=first.etag)

    assert second.not_modified
    assert (second.status, second.body) == (304, b"")
    assert feed_server.requests[-1][1]["if-none-match"] == first.etag


def test_stale_etag_gets_the_body(feed_server: FeedServer) -> None:
    url = feed_server.add("/feed.xml", BODY)

    fetched = fetch(url, etag='"something-older"')

    assert (fetched.status, fetched.body) == (200, BODY)


@pytest.mark.parametrize(("path", "status"), [("/missing", 404), ("/broken", 500)])
def test_error_status_raises_fetch_error(feed_server: FeedServer, path: str, status: int) -> None:
    feed_server.add("/broken", b"oops", status=500, validators=False)

    with pytest.raises(FetchError) as caught:
        fetch(feed_server.url(path))

    assert caught.value.status == status
    assert f"HTTP {status}" in str(caught.value)


@pytest.mark.parametrize(
    "route",
    [
        pytest.param({}, id="content-length"),
        pytest.param({"chunk_size": 256}, id="chunked-without-length"),
        pytest.param({"headers": {"Content-Encoding": "gzip"}}, id="gzip-that-balloons"),
    ],
)
def test_body_over_cap_raises(feed_server: FeedServer, route: dict[str, object]) -> None:
    body = b"x" * (CAP * 20)
    if route.get("headers"):
        body = gzip.compress(body)
        assert len(body) < CAP, "the compressed body must pass any Content-Length check"
    url = feed_server.add("/big.xml", body, **route)

    with pytest.raises(FetchError, match=f"{CAP:,} byte cap"):
        fetch(url)


def test_body_at_cap_is_accepted(feed_server: FeedServer) -> None:
    url = feed_server.add("/exact.xml", b"y" * CAP, chunk_size=100)

    assert fetch(url).body == b"y" * CAP


def test_slow_drip_is_stopped_at_the_deadline(feed_server: FeedServer) -> None:
    # Each chunk arrives well inside any read timeout; only the overall deadline can stop this.
    url = feed_server.add("/slow.xml", b"z" * 100, chunk_size=1, chunk_delay=0.1)
    deadline = 1.0
    started = time.monotonic()

    with pytest.raises(FetchError, match="within 1 s"):
        fetch(url, deadline=deadline)

    assert time.monotonic() - started < deadline + 1


def test_connection_refused_says_cannot_connect() -> None:
    with pytest.raises(FetchError, match="cannot connect"):
        fetch(f"http://127.0.0.1:{free_port()}/feed.xml")


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/feed.xml", "file:///etc/passwd", "feed.xml", "mailto:a@b.example"]
)
def test_non_http_urls_are_refused(url: str) -> None:
    with pytest.raises(FetchError, match="only http and https"):
        fetch(url)


def test_redirect_is_followed_to_the_final_url(feed_server: FeedServer) -> None:
    final = feed_server.add("/new.xml", BODY)
    old = feed_server.add(
        "/old.xml", b"", status=301, validators=False, headers={"Location": final}
    )

    fetched = fetch(old)

    assert (fetched.status, fetched.body, fetched.url) == (200, BODY, final)
    assert feed_server.hits["/old.xml"] == feed_server.hits["/new.xml"] == 1


def test_redirect_loop_raises(feed_server: FeedServer) -> None:
    loop = feed_server.url("/loop.xml")
    feed_server.add("/loop.xml", b"", status=302, validators=False, headers={"Location": loop})

    with pytest.raises(FetchError, match="redirects"):
        fetch(loop)


def test_user_agent_names_monitor(feed_server: FeedServer) -> None:
    fetch(feed_server.add("/feed.xml", BODY))

    [(_, headers)] = feed_server.requests
    assert "monitor" in headers["user-agent"]
    assert "(+https://" in headers["user-agent"], "a contact URL for the people we poll"
    assert headers["accept-encoding"] == "gzip, deflate"
    assert "application/rss+xml" in headers["accept"]
