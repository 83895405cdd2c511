"""``poll``: the 200-feed corpus from 127.0.0.1, polled cold and then warm with poll_feeds.

The feed server runs in this process; each poll runs in a fresh child process, so the child's
peak RSS is the poller's own and the server does not compete with it for the GIL.
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import tempfile
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, func
from sqlmodel import Session, select

from benchmarks.common import (
    TOPICS_FILE,
    Clock,
    Table,
    corpus_missing,
    find_corpus,
    fresh_databases,
    isolate_environment,
    peak_rss_mb,
    postgres_unavailable,
    progress,
    rate,
    skipped,
)
from monitor.models import Article, utcnow
from monitor.operations import open_database, poll_feeds, sync_config
from monitor.settings import Settings, load_settings
from monitor.sources.opml import OpmlFeed, write_opml
from tests.utils.feedserver import running_feed_server

TITLE = "poll: corpus from 127.0.0.1 -> poll_feeds (fetch, parse, store, tag)"


@dataclass(slots=True)
class PollFigures:
    """What one cold and one warm poll of the corpus measured."""

    feeds: int = 0
    concurrency: int = 0
    topics: int = 0
    cold_seconds: float = 0.0
    cold_statuses: dict[str, int] = field(default_factory=dict)
    new_articles: int = 0
    stored_articles: int = 0
    matches: int = 0
    warm_seconds: float = 0.0
    warm_statuses: dict[str, int] = field(default_factory=dict)
    setup_rss_mb: float = 0.0
    peak_rss_mb: float = 0.0
    failures: list[str] = field(default_factory=list)


def _write_config(directory: Path, database_url: str, feeds: list[tuple[str, str]]) -> Path:
    """monitor.toml on ``database_url``, feeds.opml listing ``feeds``, the shipped topics."""
    opml = write_opml([OpmlFeed(url, title) for url, title in feeds], title="benchmark corpus")
    (directory / "feeds.opml").write_bytes(opml)
    config = directory / "monitor.toml"
    config.write_text(
        "[database]\n"
        f"url = {json.dumps(database_url)}\n"
        # The corpus is served from 127.0.0.1, which the address guard refuses by default;
        # its 200 feeds stand for 200 hosts, so the per-host limit is lifted to the global one.
        "[fetch]\n"
        'allow_networks = ["127.0.0.0/8"]\n'
        "per_host = 20\n"
        "[files]\n"
        'feeds = "feeds.opml"\n'
        f"topics = {json.dumps(str(TOPICS_FILE))}\n"
        'subscriptions = "absent.yaml"\n',
        encoding="utf-8",
    )
    return config


def poll_corpus(database_url: str, feeds: list[tuple[str, str]]) -> PollFigures:
    """Set up a monitor on an empty database, then poll every feed twice (cold, then warm)."""
    isolate_environment()
    logging.basicConfig(level=logging.ERROR, format="    [poller] %(levelname)s %(message)s")
    figures = PollFigures()
    with tempfile.TemporaryDirectory(prefix="monitor-bench-config-") as directory:
        settings = load_settings(_write_config(Path(directory), database_url, feeds))
        engine = open_database(settings)
        synced = sync_config(engine, settings, now=utcnow())
    figures.feeds = len(synced.feeds.added)
    figures.topics = len(synced.topics.added)
    figures.concurrency = settings.fetch.concurrency
    figures.setup_rss_mb = peak_rss_mb()
    try:
        _poll_twice(engine, settings, figures)
    finally:
        engine.dispose()
    figures.peak_rss_mb = peak_rss_mb()
    return figures


def _poll_twice(engine: Engine, settings: Settings, figures: PollFigures) -> None:
    clock = Clock()
    cold = asyncio.run(poll_feeds(engine, settings))
    figures.cold_seconds = clock.seconds()
    figures.cold_statuses = dict(Counter(str(result.status) for result in cold))
    figures.new_articles = sum(result.new_articles for result in cold)
    figures.matches = sum(result.matches for result in cold)
    figures.failures = [f"{r.feed_url.rsplit('/', 1)[-1]}: {r.error}" for r in cold if r.error]
    with Session(engine) as session:
        figures.stored_articles = session.exec(select(func.count()).select_from(Article)).one()

    clock = Clock()
    warm = asyncio.run(poll_feeds(engine, settings))
    figures.warm_seconds = clock.seconds()
    figures.warm_statuses = dict(Counter(str(result.status) for result in warm))


def _in_child(database_url: str, feeds: list[tuple[str, str]]) -> PollFigures:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(poll_corpus, database_url, feeds).result()


def _statuses(statuses: dict[str, int]) -> str:
    return ", ".join(f"{count} {status}" for status, count in sorted(statuses.items()))


def run() -> list[Table]:
    """Poll the corpus on each available database and tabulate the figures."""
    corpus = find_corpus()
    if corpus is None:
        return [skipped(TITLE, corpus_missing())]
    results: dict[str, PollFigures] = {}
    with running_feed_server() as server, fresh_databases("bench_poll") as dbs:
        # No charset in the Content-Type: the documents declare their own encodings.
        feeds = [
            (server.add(f"/feeds/{feed.name}", feed.read(), content_type=feed.content_type),
             feed.title)
            for feed in corpus.feeds
        ]  # fmt: skip
        for label, url in dbs:
            progress(f"poll: {len(feeds)} feeds into {label} (cold, then warm)")
            results[label] = _in_child(url, feeds)
        served = dict(server.statuses)
    table = Table(TITLE, list(results))
    figures = list(results.values())
    table.add("feeds", "", *(f.feeds for f in figures))
    table.add("cold poll", "s", *(f.cold_seconds for f in figures))
    table.add("cold poll", "feeds/s", *(rate(f.feeds, f.cold_seconds) for f in figures))
    table.add("cold poll", "articles/s", *(rate(f.new_articles, f.cold_seconds) for f in figures))
    table.add("articles stored", "", *(f.stored_articles for f in figures))
    table.add("topic matches", "", *(f.matches for f in figures))
    table.add("warm poll (304s)", "s", *(f.warm_seconds for f in figures))
    table.add("warm poll", "feeds/s", *(rate(f.feeds, f.warm_seconds) for f in figures))
    table.add("peak RSS before polling", "MB", *(f.setup_rss_mb for f in figures))
    table.add("peak RSS", "MB", *(f.peak_rss_mb for f in figures))
    first = figures[0]
    corpus_mb = corpus.total_bytes / 1e6
    table.notes.append(
        f"{len(corpus.feeds)} documents, {corpus_mb:.1f} MB, from {corpus.root}; "
        f"{first.topics} topics from config/topics.yaml; fetch concurrency {first.concurrency}"
    )
    for label, f in results.items():
        table.notes.append(
            f"{label}: cold {_statuses(f.cold_statuses)}; warm {_statuses(f.warm_statuses)}"
        )
    answered = ", ".join(f"{count} x HTTP {status}" for status, count in sorted(served.items()))
    table.notes.append(f"the server answered {answered}")
    table.notes.extend(f"failed: {failure}" for failure in first.failures)
    if (reason := postgres_unavailable()) is not None:
        table.notes.append(reason)
    return [table]
