"""``search``: archive queries through the search index, on SQLite and PostgreSQL.

N articles (``--articles``, default 100,000; a comma list runs each size) of realistic length
(corpus text joined to ~3 KB, as the store benchmark builds them; distinct URLs and keys) are
loaded over the last 365 days, indexed as ingest indexes them, in batches of 1,000. Then, over
the last 30 days, for a mix of selective and broad queries (the shipped topics among them):

- ``monitor search --limit 50``: the backtest behind it, p50 / p95 / max over the mix;
- a 30-day backtest with counts per day, of the selective queries and of the broad ones;
- a full retag of one shipped topic over 30 days (rolled back afterwards);
- index size per article, and the ingest cost the index adds (save_new_articles of 5,000
  entries, 50 per call, with the index writes and without them).
"""

from __future__ import annotations

import hashlib
import random
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

from sqlalchemy import Engine, text
from sqlmodel import Session, SQLModel

import monitor.ingest.store as store_module
from benchmarks.common import (
    TOPICS_FILE,
    Table,
    find_corpus,
    fresh_databases,
    postgres_unavailable,
    progress,
)
from benchmarks.text import SampleArticle, sample_articles
from monitor.ingest.store import save_new_articles
from monitor.models import Feed, Topic, utcnow
from monitor.operations import open_database
from monitor.settings import DatabaseSettings, Settings
from monitor.sources.parse import ParsedEntry
from monitor.topics.catalog import read_topics_file
from monitor.topics.index import PG_ARTICLES, VECTOR_COLUMN, index_words, write_index
from monitor.topics.plan import plan_query
from monitor.topics.query import parse_query
from monitor.topics.tagging import backtest, retag_topic

TITLE = "search: archive queries through the index"
DEFAULT_ARTICLES = 100_000
BATCH = 1000
DAYS = 365
WINDOW = timedelta(days=30)
SAMPLES = 2000
SEED = 20261207
INGEST_ENTRIES = 5000
PER_CALL = 50
# Queries of the mix. Selective: a few matches in 30 days; broad: many.
SELECTIVE = [
    "panopticon",
    "ceasefire AND gaza",
    '"central bank"',
    "zzyzx",
    "pytorch OR subreddits",
    "telegram NEAR/5 channel*",
]
BROAD = ["government", "trump OR biden", "elect*", "the", "police NOT football"]
RETAGGED = "election-interference"


@dataclass(slots=True)
class SizeRun:
    """The figures of one database at one size."""

    load_seconds: float = 0.0
    search_ms: list[float] = field(default_factory=list)
    selective_ms: list[float] = field(default_factory=list)
    broad_ms: list[float] = field(default_factory=list)
    selective_matches: list[int] = field(default_factory=list)
    broad_matches: list[int] = field(default_factory=list)
    retag_seconds: float = 0.0
    retag_matched: int = 0
    index_bytes_per_article: float = 0.0
    planned: int = 0


def _entries(
    articles: list[SampleArticle], count: int, rng: random.Random
) -> Iterator[dict[str, Any]]:
    """Article rows: corpus texts, each article its own URL and key, seen over DAYS days."""
    now = utcnow()
    for number in range(count):
        sample = articles[number % len(articles)]
        other = articles[rng.randrange(len(articles))]
        url = f"https://news{number % 300}.example.com/{number}/{rng.getrandbits(32):x}"
        yield {
            "key_hash": hashlib.sha256(url.encode()).hexdigest(),
            "url": url,
            "canonical_url": url,
            "title": sample.title,
            # Two texts joined: the same corpus text never makes two identical articles.
            "summary": other.body[:300],
            "content": sample.body,
            "author": "",
            "first_seen_at": now - timedelta(seconds=rng.uniform(0, DAYS * 86400)),
            "content_hash": hashlib.sha256(f"{number}".encode()).hexdigest(),
        }


def load_archive(engine: Engine, articles: list[SampleArticle], count: int) -> float:
    """Insert ``count`` articles with their index rows, BATCH per transaction; the seconds."""
    started = time.perf_counter()
    rng = random.Random(SEED)
    with Session(engine) as session, session.begin():
        feed = Feed(url="https://news.example.com/feed.xml", title="Example News")
        session.add(feed)
        session.flush()
        feed_id = feed.id
    postgres = engine.dialect.name == "postgresql"
    table = PG_ARTICLES if postgres else SQLModel.metadata.tables["article"]
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        with engine.begin() as connection:
            words = [
                index_words(
                    title=r["title"], summary=r["summary"], content=r["content"], author=r["author"]
                )
                for r in batch
            ]
            if postgres:
                rows = [{**r, VECTOR_COLUMN: w.vector()} for r, w in zip(batch, words, strict=True)]
                connection.execute(table.insert(), rows)
            else:
                ids = (
                    connection.execute(
                        table.insert().returning(table.c.id, sort_by_parameter_order=True), batch
                    )
                    .scalars()
                    .all()
                )
                write_index(connection, list(zip(ids, words, strict=True)))
        batch.clear()

    for number, row in enumerate(_entries(articles, count, rng), start=1):
        batch.append({**row, "feed_id": feed_id})
        if len(batch) == BATCH:
            flush()
        if number % 100_000 == 0:
            progress(f"search: {number:,} of {count:,} articles loaded ({engine.dialect.name})")
    if batch:
        flush()
    with engine.connect() as connection:
        connection.execute(text("ANALYZE"))
        connection.commit()
    return time.perf_counter() - started


def index_size(engine: Engine) -> int:
    """Bytes the index takes on disk."""
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            return int(
                connection.execute(
                    text(
                        f"SELECT coalesce(sum(pg_column_size({VECTOR_COLUMN})), 0) "
                        "+ pg_relation_size('ix_article_search_vector') FROM article"
                    )
                ).scalar_one()
            )
        return int(
            connection.execute(
                text(
                    "SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'article_fts%' "
                    "OR name = 'article_words'"
                )
            ).scalar_one()
        )


def _timed(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = call()
    return (time.perf_counter() - started) * 1000, value


def shipped_queries() -> dict[str, str]:
    """The enabled shipped topics' queries, by slug."""
    return {s.slug: s.effective_query for s in read_topics_file(TOPICS_FILE) if s.enabled}


def measure(engine: Engine, run: SizeRun) -> None:
    """Search, backtests and a retag over the last 30 days."""
    since = utcnow() - WINDOW
    topics = shipped_queries()
    mix = SELECTIVE + BROAD + list(topics.values())
    with Session(engine) as session:
        for query in mix:  # warm the caches once (dictionaries for ~words, pages)
            backtest(session, parse_query(query), since=since, limit=50)
        for query in mix:
            node = parse_query(query)
            run.planned += plan_query(node) is not None
            elapsed, _ = _timed(partial(backtest, session, node, since=since, limit=50))
            run.search_ms.append(elapsed)
        for queries, times, counts in (
            (SELECTIVE, run.selective_ms, run.selective_matches),
            (BROAD, run.broad_ms, run.broad_matches),
        ):
            for query in queries:
                node = parse_query(query)
                elapsed, result = _timed(partial(backtest, session, node, since=since, limit=20))
                times.append(elapsed)
                counts.append(result.total)
    with Session(engine) as session:
        topic = Topic(slug=RETAGGED, name=RETAGGED, query=topics[RETAGGED], version=2)
        session.add(topic)
        session.flush()
        elapsed, matched = _timed(lambda: retag_topic(session, topic, since=since, now=utcnow()))
        run.retag_seconds, run.retag_matched = elapsed / 1000, matched
        session.rollback()


@contextmanager
def _without_index() -> Iterator[None]:
    """save_new_articles with its index writes taken out (for the cost they add)."""
    replacements: dict[str, object] = {
        "write_index": lambda *_args, **_kwargs: None,
        "reindex_articles": lambda *_args, **_kwargs: None,
        "PG_ARTICLES": store_module.ARTICLES,
    }
    saved = {name: getattr(store_module, name) for name in replacements}
    for name, value in replacements.items():
        setattr(store_module, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(store_module, name, value)


def _ingest_entries(articles: list[SampleArticle], prefix: str) -> list[ParsedEntry]:
    now = utcnow()
    return [
        ParsedEntry(
            guid=None,
            link=f"https://ingest.example.com/{prefix}/{n}",
            title=articles[n % len(articles)].title,
            summary="",
            content=articles[n % len(articles)].body,
            author="",
            published_at=now - timedelta(minutes=n),
            updated_at=None,
        )
        for n in range(INGEST_ENTRIES)
    ]


def ingest_seconds(url: str, articles: list[SampleArticle], *, indexed: bool) -> float:
    """save_new_articles of INGEST_ENTRIES new entries, PER_CALL per transaction."""
    engine = open_database(Settings(database=DatabaseSettings(url=url)))
    entries = _ingest_entries(articles, "with" if indexed else "without")
    with Session(engine) as session, session.begin():
        feed = Feed(url=f"https://ingest.example.com/{indexed}.xml", title="Ingest")
        session.add(feed)
        session.flush()
        feed_id = feed.id or 0
    started = time.perf_counter()
    with _without_index() if not indexed else _nothing():
        for start in range(0, len(entries), PER_CALL):
            with Session(engine) as session, session.begin():
                save_new_articles(
                    session,
                    feed_id=feed_id,
                    entries=entries[start : start + PER_CALL],
                    now=utcnow(),
                )
    seconds = time.perf_counter() - started
    engine.dispose()
    return seconds


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def run(sizes: list[int] | None = None) -> list[Table]:
    """Load, index and query each size on each database; one table for all."""
    sizes = sizes or [DEFAULT_ARTICLES]
    rng = random.Random(SEED)
    articles, source = sample_articles(find_corpus(), count=SAMPLES, rng=rng)
    runs: dict[str, SizeRun] = {}
    ingest: dict[str, tuple[float, float]] = {}
    variants: list[str] = []
    for size in sizes:
        with fresh_databases("bench_search") as databases:
            for label, url in databases:
                variant = f"{label} {size:,}"
                variants.append(variant)
                progress(f"search: loading {size:,} articles into {label}")
                engine = open_database(Settings(database=DatabaseSettings(url=url)))
                run_ = runs[variant] = SizeRun()
                run_.load_seconds = load_archive(engine, articles, size)
                run_.index_bytes_per_article = index_size(engine) / size
                progress(f"search: querying {label} at {size:,}")
                measure(engine, run_)
                engine.dispose()
                if size == sizes[0]:
                    with fresh_databases("bench_ingest") as ingest_dbs:
                        url_of = dict(ingest_dbs)
                        progress(f"search: ingest cost on {label}")
                        ingest[variant] = (
                            ingest_seconds(url_of[label], articles, indexed=False),
                            ingest_seconds(url_of[label], articles, indexed=True),
                        )
    table = Table(TITLE, variants)
    pick = [runs[v] for v in variants]
    table.add(
        "articles loaded and indexed per second",
        "1/s",
        *[
            round(s.load_seconds and int(v.split()[-1].replace(",", "")) / s.load_seconds)
            for v, s in zip(variants, pick, strict=True)
        ],
    )
    table.add(
        "search --limit 50, p50 (30 days)", "ms", *[_percentile(r.search_ms, 0.5) for r in pick]
    )
    table.add("search --limit 50, p95", "ms", *[_percentile(r.search_ms, 0.95) for r in pick])
    table.add("search --limit 50, max", "ms", *[max(r.search_ms) for r in pick])
    table.add(
        "backtest 30 d, selective queries, p50",
        "ms",
        *[_percentile(r.selective_ms, 0.5) for r in pick],
    )
    table.add("backtest 30 d, selective queries, max", "ms", *[max(r.selective_ms) for r in pick])
    table.add("  their matches (mean)", "", *[statistics.mean(r.selective_matches) for r in pick])
    table.add(
        "backtest 30 d, broad queries, p50", "ms", *[_percentile(r.broad_ms, 0.5) for r in pick]
    )
    table.add("backtest 30 d, broad queries, max", "ms", *[max(r.broad_ms) for r in pick])
    table.add("  their matches (mean)", "", *[statistics.mean(r.broad_matches) for r in pick])
    table.add(f"retag {RETAGGED}, 30 days", "s", *[r.retag_seconds for r in pick])
    table.add("  articles it matched", "", *[r.retag_matched for r in pick])
    table.add("index size per article", "bytes", *[r.index_bytes_per_article for r in pick])
    table.add(
        "queries of the mix the index planned",
        "",
        *[f"{r.planned} of {len(r.search_ms)}" for r in pick],
    )
    for variant, (without, with_index) in ingest.items():
        table.notes.append(
            f"ingest on {variant.split()[0]}: save_new_articles of {INGEST_ENTRIES:,} entries, "
            f"{PER_CALL} per call: {without:.2f} s without index writes, {with_index:.2f} s "
            f"with them: +{(with_index / without - 1) * 100:.0f} %"
        )
    table.notes.append(f"articles: {source}; seen over the last {DAYS} days, queries over 30")
    table.notes.append(
        f"mix: {len(SELECTIVE)} selective, {len(BROAD)} broad and the shipped topics"
    )
    if postgres_unavailable():
        table.notes.append(f"PostgreSQL skipped: {postgres_unavailable()}")
    return [table]
