"""``parse``: parse_feed over every corpus document in this process, against bare feedparser.

Columns: feedparser with its defaults (HTML sanitiser and relative-URI rewriting on); feedparser
bare, as parse_feed's reference path calls it; the reference path alone (feedparser plus our
conversion to plain text, i.e. parse_feed before the fast path); and parse_feed, which reads
well-formed documents with lxml and sends the rest to feedparser. The share of documents on each
path is counted from ParsedFeed.parser.
"""

from __future__ import annotations

from collections import Counter
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
from monitor.sources.parse import FAST, JSON, REFERENCE, parse_feed, parse_feed_reference

TITLE = "parse: every corpus document, one process"
SLOWEST_SHOWN = 3
MAIN = "parse_feed"


@dataclass(slots=True)
class ParsePass:
    """One parser over the whole corpus."""

    seconds: float = 0.0
    entries: int = 0
    failed: list[str] = field(default_factory=list)
    times: dict[str, float] = field(default_factory=dict)
    paths: Counter[str] = field(default_factory=Counter)


# A parser gives the number of entries and the path that read the document (None: not ours).
Parser = Callable[[bytes, str, str], tuple[int, str | None]]


def _url(feed: CorpusFeed) -> str:
    return f"http://127.0.0.1/feeds/{feed.name}"


def with_parse_feed(body: bytes, url: str, content_type: str) -> tuple[int, str | None]:
    """monitor's parser: fast path where it applies, feedparser for the rest."""
    parsed = parse_feed(body, url=url, content_type=content_type)
    return len(parsed.entries), parsed.parser


def with_reference(body: bytes, url: str, content_type: str) -> tuple[int, str | None]:
    """parse_feed's reference path for every XML document (JSON Feeds go to their reader)."""
    if body.lstrip()[:1] == b"{":
        return with_parse_feed(body, url, content_type)
    parsed = parse_feed_reference(body, url=url, content_type=content_type)
    return len(parsed.entries), parsed.parser


def with_feedparser(body: bytes, url: str, content_type: str) -> tuple[int, str | None]:
    """feedparser with its defaults, entries not turned into text."""
    headers = {"content-location": url, "content-type": content_type}
    return len(feedparser.parse(body, response_headers=headers).entries), None


def with_bare_feedparser(body: bytes, _url: str, content_type: str) -> tuple[int, str | None]:
    """feedparser as the reference path calls it: no HTML sanitiser, no URI rewriting."""
    headers = {"content-type": content_type}
    document = feedparser.parse(
        body, response_headers=headers, resolve_relative_uris=False, sanitize_html=False
    )
    return len(document.entries), None


PARSERS: dict[str, Parser] = {
    "feedparser": with_feedparser,
    "feedparser, bare": with_bare_feedparser,
    "reference path": with_reference,
    MAIN: with_parse_feed,
}


def parse_all(documents: list[tuple[CorpusFeed, bytes]], parser: Parser) -> ParsePass:
    """Parse every document with ``parser``, timing each."""
    result = ParsePass()
    total = Clock()
    for feed, body in documents:
        clock = Clock()
        try:
            entries, path = parser(body, _url(feed), feed.content_type)
        except MonitorError as exc:
            result.failed.append(f"{feed.name} ({feed.format}): {exc}")
            path = "refused"
        else:
            result.entries += entries
        result.times[feed.name] = clock.seconds()
        if path is not None:
            result.paths[path] += 1
    result.seconds = total.seconds()
    return result


def run() -> list[Table]:
    """Parse the corpus with each parser and tabulate the figures."""
    corpus = find_corpus()
    if corpus is None:
        return [skipped(TITLE, corpus_missing())]
    documents = [(feed, feed.read()) for feed in corpus.feeds]
    count = len(documents)
    megabytes = corpus.total_bytes / 1e6
    passes: dict[str, ParsePass] = {}
    for name, parser in PARSERS.items():
        progress(f"parse: {count} documents with {name}")
        passes[name] = parse_all(documents, parser)
    table = Table(TITLE, list(passes))
    results = list(passes.values())
    main = passes[MAIN]
    table.add("documents", "", *(count for _ in results))
    table.add("entries", "", *(r.entries for r in results))
    # feedparser never refuses a document; only parse_feed says "not a feed".
    table.add("refused", "", *(len(r.failed) if r.paths else None for r in results))
    paths = ((FAST, "fast path (lxml)"), (REFERENCE, "feedparser path"), (JSON, "JSON Feed"))
    for path, label in paths:
        table.add(label, "docs", *(r.paths[path] if r.paths else None for r in results))
        share = (100 * r.paths[path] / count if r.paths else None for r in results)
        table.add(label, "%", *share)
    table.add("total", "s", *(r.seconds for r in results))
    table.add("per feed", "ms", *(1000 * r.seconds / count for r in results))
    table.add("throughput", "feeds/s", *(rate(count, r.seconds) for r in results))
    table.add("throughput", "MB/s", *(rate(megabytes, r.seconds) for r in results))
    table.add("throughput", "entries/s", *(rate(r.entries, r.seconds) for r in results))
    bare = passes["feedparser, bare"].seconds
    table.notes.append(f"{megabytes:.1f} MB in {count} documents from {corpus.root}")
    table.notes.append(f"parse_feed is {bare / main.seconds:.1f}x bare feedparser's speed")
    table.notes.extend(f"parse_feed refused: {failure}" for failure in main.failed)
    sizes = {feed.name: feed.size for feed in corpus.feeds}
    slowest = sorted(main.times.items(), key=lambda item: -item[1])[:SLOWEST_SHOWN]
    table.notes.extend(
        f"slow: {name} {sizes[name] / 1e6:.2f} MB in {seconds:.2f} s with parse_feed"
        for name, seconds in slowest
    )
    return [table]
