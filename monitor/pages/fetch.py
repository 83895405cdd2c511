"""Fetch an article's page through the feed fetcher: the same guarded client, address guard on
every hop, whole-request deadline, decoded-size cap and User-Agent; HTML asked for, and a page
whose Content-Type says it is something else refused before its body is read."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from monitor.errors import ExtractError
from monitor.pages.extract import HTML_TYPES, VAGUE_TYPES, media_type
from monitor.sources.fetch import fetch_feed

PAGE_ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"


@dataclass(frozen=True, slots=True)
class FetchedPage:
    """A page's bytes, where they came from in the end (after redirects), and their type."""

    url: str
    body: bytes
    content_type: str | None


def check_page_type(url: str, content_type: str | None) -> None:
    """Raise ExtractError when the Content-Type says the answer is not an HTML page."""
    kind = media_type(content_type)
    if kind not in HTML_TYPES and kind not in VAGUE_TYPES:
        raise ExtractError(url, f"not an HTML page: {kind}")


async def fetch_page(
    client: httpx.AsyncClient, url: str, *, max_bytes: int, deadline: float
) -> FetchedPage:
    """GET an article's page; raise FetchError (HTTP, network, size, deadline) or ExtractError
    (not HTML)."""
    fetched = await fetch_feed(
        client,
        url,
        max_bytes=max_bytes,
        deadline=deadline,
        accept=PAGE_ACCEPT,
        check_type=lambda content_type: check_page_type(url, content_type),
    )
    return FetchedPage(fetched.url, fetched.body, fetched.content_type)
