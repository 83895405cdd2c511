"""Hostile servers on 127.0.0.1 and ::1: bombs, drips, loops and redirects into the network."""

from __future__ import annotations

import asyncio
import gzip
import re
import time
import tracemalloc
import zlib
from collections.abc import Iterator

import pytest

from monitor.errors import FetchError, ParseError
from monitor.settings import FetchSettings
from monitor.sources.fetch import FetchedFeed, build_client, fetch_feed
from monitor.sources.parse import parse_feed
from tests.utils.feedserver import FeedServer, running_feed_server

FEED = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
    b"<item><title>One</title><link>https://example.com/1</link></item></channel></rss>"
)
LOCAL = ["127.0.0.0/8"]


def fetch(
    url: str, *, allow: list[str] = LOCAL, max_bytes: int = 100_000, deadline: float = 10.0
) -> FetchedFeed:
    """One fetch_feed with the guard opened to ``allow`` only."""

    async def run() -> FetchedFeed:
        async with build_client(FetchSettings(allow_networks=allow)) as client:
            return await fetch_feed(client, url, max_bytes=max_bytes, deadline=deadline)

    return asyncio.run(run())


# --- size and time -------------------------------------------------------------------------


def gzip_of_zeros(size: int) -> bytes:
    """A gzip body that inflates to ``size`` zero bytes (about 1,000 times its own size)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    parts = [packer.compress(block) for _ in range(size // len(block))]
    return b"".join([*parts, packer.flush()])


@pytest.mark.slow
def test_gzip_bomb_is_stopped_at_the_cap_with_bounded_memory(feed_server: FeedServer) -> None:
    bomb = gzip_of_zeros(1 << 30)  # 1 GiB inflated
    assert len(bomb) < 1_100_000
    url = feed_server.add("/bomb.xml", bomb, headers={"Content-Encoding": "gzip"})
    cap = 10_000_000
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        baseline = tracemalloc.get_traced_memory()[0]
        with pytest.raises(FetchError, match=f"{cap:,} byte cap"):
            fetch(url, max_bytes=cap)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert peak - baseline < 50_000_000


@pytest.mark.parametrize(
    ("encoding", "pack"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda data: zlib.compress(data, wbits=-15)),  # raw deflate, as IIS sends
        ("gzip", lambda data: gzip.compress(data[:40]) + gzip.compress(data[40:])),
        ("identity", lambda data: data),
    ],
    ids=["gzip", "deflate-zlib", "deflate-raw", "gzip-two-members", "identity"],
)
def test_compressed_bodies_are_decoded(
    feed_server: FeedServer, encoding: str, pack: object
) -> None:
    body = pack(FEED)  # type: ignore[operator]
    url = feed_server.add("/feed.xml", body, headers={"Content-Encoding": encoding})

    assert fetch(url).body == FEED


def test_unknown_content_encoding_is_an_error(feed_server: FeedServer) -> None:
    url = feed_server.add("/feed.xml", FEED, headers={"Content-Encoding": "br"})

    with pytest.raises(FetchError, match="unsupported Content-Encoding 'br'"):
        fetch(url)


def test_slow_drip_ends_at_the_deadline(feed_server: FeedServer) -> None:
    # One byte every 0.2 s: every read succeeds, so only a total deadline ends it.
    url = feed_server.add("/drip.xml", FEED, chunk_size=1, chunk_delay=0.2)
    deadline = 1.5
    started = time.monotonic()

    with pytest.raises(FetchError, match=re.escape("no complete answer within 1.5 s")):
        fetch(url, deadline=deadline)

    assert time.monotonic() - started < deadline + 1


# --- redirects -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hops", "message"),
    [
        ({"/a": "/a"}, "redirect loop: .*/a redirects back to .*/a"),
        ({"/a": "/b", "/b": "/a"}, "redirect loop: .*/b redirects back to .*/a"),
        ({f"/{n}": f"/{n + 1}" for n in range(8)}, "more than 5 redirects"),
    ],
    ids=["self", "two-step", "too-long"],
)
def test_redirect_loops_end_with_a_clear_error(
    feed_server: FeedServer, hops: dict[str, str], message: str
) -> None:
    for here, there in hops.items():
        feed_server.add(
            here, b"", status=302, validators=False, headers={"Location": feed_server.url(there)}
        )
    first = next(iter(hops))

    with pytest.raises(FetchError, match=message):
        fetch(feed_server.url(first))

    assert sum(feed_server.hits.values()) <= 6


@pytest.fixture
def ipv6_server() -> Iterator[FeedServer]:
    """A feed server on ::1, so the guard can allow it and nothing else."""
    with running_feed_server("::1") as server:
        yield server


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("http://127.0.0.1:{port}/feed.xml", "loopback"),
        ("http://10.0.0.1/feed.xml", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[::ffff:127.0.0.1]:{port}/feed.xml", "IPv4-mapped"),
    ],
)
def test_redirect_into_a_refused_network_is_not_followed(
    ipv6_server: FeedServer, feed_server: FeedServer, target: str, reason: str
) -> None:
    inside = feed_server.add("/feed.xml", FEED)  # what an attacker would reach on 127.0.0.1
    assert inside.endswith(f":{feed_server.port}/feed.xml")
    location = target.format(port=feed_server.port)
    url = ipv6_server.add("/go", b"", status=301, validators=False, headers={"Location": location})

    with pytest.raises(FetchError, match=f"redirect to {re.escape(location)}.*refused: .*{reason}"):
        fetch(url, allow=["::1/128"])

    assert ipv6_server.hits["/go"] == 1
    assert feed_server.hits["/feed.xml"] == 0


@pytest.mark.parametrize(
    "location", ["file:///etc/passwd", "ftp://example.com/feed.xml", "gopher://example.com/"]
)
def test_redirect_to_another_scheme_is_refused(feed_server: FeedServer, location: str) -> None:
    url = feed_server.add("/go", b"", status=302, validators=False, headers={"Location": location})

    with pytest.raises(FetchError, match="only http and https"):
        fetch(url)


# --- entities ------------------------------------------------------------------------------


def entity_bomb(value_size: int = 100_000, references: int = 5_000) -> bytes:
    """A feed declaring one large entity and using it thousands of times (~500 MB expanded)."""
    uses = b"&big;" * references
    return (
        b'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY big "'
        + b"x" * value_size
        + b'">\n]>\n<rss version="2.0"><channel><title>T</title><item><title>'
        + uses
        + b"</title></item></channel></rss>"
    )


@pytest.mark.parametrize(
    "body",
    [
        entity_bomb(),
        entity_bomb().decode().encode("utf-16"),
        b'<?xml version="1.0"?><!-- a comment --><!DOCTYPE rss [<!ENTITY a "b">]><rss/>',
        b'<!DOCTYPE rss SYSTEM "x.dtd" [ <!ENTITY % p SYSTEM "http://127.0.0.1/p"> %p; ]><rss/>',
    ],
    ids=["bomb", "bomb-utf16", "small-entity", "parameter-entity"],
)
def test_documents_declaring_entities_are_refused_fast(body: bytes) -> None:
    started = time.monotonic()

    with pytest.raises(ParseError, match="declares XML entities"):
        parse_feed(body, url="http://feeds.example/x.xml")

    assert time.monotonic() - started < 1


def test_entity_text_inside_an_item_is_not_a_declaration() -> None:
    # A blog post about XML quotes a DOCTYPE in its body; that is content, not a declaration.
    body = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><item>'
        b"<title>XXE</title><description><![CDATA[<!DOCTYPE x [<!ENTITY a 'b'>]>]]>"
        b"</description></item></channel></rss>"
    )

    assert len(parse_feed(body, url="http://feeds.example/x.xml").entries) == 1


def test_external_dtd_is_never_fetched(feed_server: FeedServer) -> None:
    dtd = feed_server.add("/evil.dtd", b'<!ENTITY t "pwned">', content_type="text/plain")
    body = (
        b'<?xml version="1.0"?><!DOCTYPE rss SYSTEM "' + dtd.encode() + b'">'
        b'<rss version="2.0"><channel><title>Safe &amp; sound</title></channel></rss>'
    )

    parsed = parse_feed(body, url=feed_server.url("/feed.xml"))

    assert parsed.title == "Safe & sound"
    assert feed_server.hits["/evil.dtd"] == 0
