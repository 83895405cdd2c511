"""``parse``: parse_feed over every corpus document in this process.

Two reference rows show where the time goes: feedparser alone with the options parse_feed
passes it, and feedparser with its HTML sanitiser and relative-URI resolution turned off (work
parse_feed throws away when it turns the HTML into plain text).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import feedparser

from benchmarks.common import (
    Clock,
    CorpusFeed,
    Table,
    corpus_missing,
    find_corpus,
    progress,
    rate,
    skipped,
)
from monitor.errors import MonitorError
from monitor.sources.parse import parse_feed

TITLE = "parse: every corpus document, one process"
SLOWEST_SHOWN = 3


@dataclass(slots=True)
class ParsePass:
    """One parser over the whole corpus."""

    seconds: float = 0.0
    entries: int = 0
    failed: list[str] = field(default_factory=list)
    times: dict[str, float] = field(default_factory=dict)


Parser = Callable[[bytes, str, str], int]


def _url(feed: CorpusFeed) -> str:
    return f"http://127.0.0.1/feeds/{feed.name}"


def with_parse_feed(body: bytes, url: str, content_type: str) -> int:
    """monitor's parser; the number of entries."""
    return len(parse_feed(body, url=url, content_type=content_type).entries)


def with_feedparser(body: bytes, url: str, content_type: str) -> int:
    """feedparser as parse_feed calls it, without turning entries into text."""
    headers = {"content-location": url, "content-type": content_type}
    document = feedparser.parse(body, response_headers=headers, resolve_relative_uris=True)
    return len(document.entries)


def with_bare_feedparser(body: bytes, url: str, content_type: str) -> int:
    """feedparser without its HTML sanitiser and relative-URI resolution."""
    headers = {"content-location": url, "content-type": content_type}
    document = feedparser.parse(
        body, response_headers=headers, resolve_relative_uris=False, sanitize_html=False
    )
    return len(document.entries)


PARSERS: dict[str, Parser] = {
    "parse_feed": with_parse_feed,
    "feedparser as called": with_feedparser,
    "feedparser, no sanitiser": with_bare_feedparser,
}


def parse_all(documents: list[tuple[CorpusFeed, bytes]], parser: Parser) -> ParsePass:
    """Parse every document with ``parser``, timing each."""
    result = ParsePass()
    total = Clock()
    for feed, body in documents:
        clock = Clock()
        try:
            result.entries += parser(body, _url(feed), feed.content_type)
        except MonitorError as exc:
            result.failed.append(f"{feed.name} ({feed.format}): {exc}")
        result.times[feed.name] = clock.seconds()
    result.seconds = total.seconds()
    return result


def run() -> list[Table]:
    """Parse the corpus with each parser and tabulate the figures."""
    corpus = find_corpus()
    if corpus is None:
        return [skipped(TITLE, corpus_missing())]
    documents = [(feed, feed.read()) for feed in corpus.feeds]
    megabytes = corpus.total_bytes / 1e6
    passes: dict[str, ParsePass] = {}
    for name, parser in PARSERS.items():
        progress(f"parse: {len(documents)} documents with {name}")
        passes[name] = parse_all(documents, parser)
    table = Table(TITLE, list(passes))
    results = list(passes.values())
    main = passes["parse_feed"]
    table.add("documents", "", *(len(documents) for _ in results))
    table.add("entries", "", *(r.entries for r in results))
    # feedparser never refuses a document; only parse_feed says "not a feed".
    table.add("refused", "", *(len(r.failed) if r is main else None for r in results))
    table.add("total", "s", *(r.seconds for r in results))
    table.add("per document", "ms", *(1000 * r.seconds / len(documents) for r in results))
    table.add("throughput", "MB/s", *(rate(megabytes, r.seconds) for r in results))
    table.add("throughput", "entries/s", *(rate(r.entries, r.seconds) for r in results))
    table.notes.append(f"{megabytes:.1f} MB in {len(documents)} documents from {corpus.root}")
    table.notes.extend(f"parse_feed failed: {failure}" for failure in main.failed)
    sizes = {feed.name: feed.size for feed in corpus.feeds}
    slowest = sorted(main.times.items(), key=lambda item: -item[1])[:SLOWEST_SHOWN]
    table.notes.extend(
        f"slow: {name} {sizes[name] / 1e6:.2f} MB in {seconds:.2f} s with parse_feed"
        for name, seconds in slowest
    )
    return [table]
