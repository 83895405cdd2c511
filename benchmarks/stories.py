"""``stories``: cluster N articles of about 3 KB into stories, 50 per call as feeds deliver them.

N is ``$MONITOR_BENCH_STORIES`` (default 20,000; the issue's figure is 100,000, which takes
long here). One article in five is a syndicated copy (edited headline, byline, trimmed end) of
one of the last few hundred delivered by earlier calls; the others are different stories made
of sentences drawn at random from the corpus. One table per database, a column per checkpoint
(a tenth, a quarter, half, all of N): time per article in save_new_articles as a whole and in
story assignment, split into signature, band lookup (with the comparison of candidates) and
insert, each over the articles since the previous checkpoint, so growth with the archive
shows; database size per article; and the process's resident memory (flat: the index lives
in the database).
"""

from __future__ import annotations

import os
import random
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text
from sqlmodel import Session, select

from benchmarks.common import Clock, Table, find_corpus, fresh_databases, progress
from benchmarks.text import sample_articles
from monitor.ingest import sketch, store, stories
from monitor.models import Story, utcnow
from monitor.operations import open_database
from monitor.settings import DatabaseSettings, Settings
from monitor.sources.feeds import add_feed
from monitor.sources.parse import ParsedEntry

TITLE = "stories: save_new_articles with story assignment, 50 articles per call"
COUNT_ENV = "MONITOR_BENCH_STORIES"
DEFAULT_COUNT = 20_000
PER_CALL = 50
FEEDS = 50
SEED = 20241129
COPY_SHARE = 0.2
BODY_CHARS = 3000
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def article_count() -> int:
    """How many articles to cluster: ``$MONITOR_BENCH_STORIES`` or the default."""
    return int(os.environ.get(COUNT_ENV) or DEFAULT_COUNT)


def synthetic_batches(count: int) -> Iterator[list[ParsedEntry]]:
    """``count`` entries of about BODY_CHARS characters, PER_CALL at a time, COPY_SHARE of them
    syndicated copies; the same ones on every call.

    Made as they are stored, not beforehand: a list of them all would hold hundreds of
    megabytes, and the SQLite driver keeps a UTF-8 copy inside each non-ASCII string it binds,
    so the process's memory would grow with the run whatever the index does.
    """
    rng = random.Random(SEED)
    articles, _source = sample_articles(find_corpus(), count=1000, rng=rng)
    sentences = [s for a in articles for s in _SENTENCE.split(a.body) if len(s) > 40]
    titles = [a.title for a in articles]
    now = utcnow()
    # Copies come from earlier calls: within one call (one feed's document) a paragraph
    # shared by two items is that feed's boilerplate, and is not compared.
    earlier: deque[ParsedEntry] = deque(maxlen=300)
    for first in range(0, count, PER_CALL):
        batch = []
        for number in range(first, min(count, first + PER_CALL)):
            if earlier and rng.random() < COPY_SHARE:
                original = earlier[-rng.randint(1, len(earlier))]
                paragraphs = original.content.split("\n\n")
                body = "\n\n".join(["By Wire Staff", *paragraphs[: max(2, len(paragraphs) - 2)]])
                title = f"{original.title} | Courier"
            else:
                body = _body(sentences, rng)
                title = f"{rng.choice(titles)} {number}"
            batch.append(
                ParsedEntry(
                    guid=None,
                    link=f"https://news{number % FEEDS}.example/a/{number}",
                    title=title,
                    summary=body[:300],
                    content=body,
                    author="",
                    published_at=now - timedelta(seconds=count - number),
                    updated_at=None,
                    language="en",
                )
            )
        yield batch
        earlier.extend(batch)


def _body(sentences: list[str], rng: random.Random) -> str:
    paragraphs: list[str] = []
    size = 0
    while size < BODY_CHARS:
        paragraph = " ".join(rng.choice(sentences) for _ in range(3))
        paragraphs.append(paragraph)
        size += len(paragraph) + 2
    return "\n\n".join(paragraphs)


def rss_mb() -> float:
    """The process's resident memory now, in MB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


def database_bytes(engine: Engine) -> tuple[int, int]:
    """(whole database, story index: bands, stories and signatures) in bytes."""
    with engine.connect() as connection:
        # Signatures have one size; summing length() would read every article's row.
        signed = connection.execute(
            text("SELECT count(*) FROM article WHERE signature IS NOT NULL")
        ).scalar_one()
        signatures = int(signed) * (sketch.NUM_PERM + 1) * 4
        if engine.dialect.name == "sqlite":
            page = connection.exec_driver_sql("PRAGMA page_size").scalar_one()
            pages = connection.exec_driver_sql("PRAGMA page_count").scalar_one()
            try:
                index = connection.exec_driver_sql(
                    "SELECT sum(pgsize) FROM dbstat WHERE name IN "
                    "('story_band', 'sqlite_autoindex_story_band_1', 'story')"
                ).scalar_one()
            except Exception:  # dbstat is an optional SQLite module
                index = 0
            return int(page * pages), int(index or 0) + signatures
        total = connection.execute(
            text(
                "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relkind = 'r'"
            )
        ).scalar_one()
        index = connection.execute(
            text("SELECT pg_total_relation_size('story_band') + pg_total_relation_size('story')")
        ).scalar_one()
        return int(total), int(index) + signatures


@dataclass(slots=True)
class Segment:
    """Seconds spent on the articles since the previous checkpoint, by part."""

    articles: int = 0
    total: float = 0.0
    signature: float = 0.0
    lookup: float = 0.0
    insert: float = 0.0

    def add(self, assignment: stories.StoryAssignment) -> None:
        """Count one call's story assignment."""
        self.signature += assignment.signature_seconds
        self.lookup += assignment.lookup_seconds
        self.insert += assignment.insert_seconds


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The figures of one checkpoint: the segment before it, then sizes and memory at it."""

    articles: int
    segment: Segment
    total_bytes: int
    index_bytes: int
    rss_mb: float


class _Timed:
    """Wraps store.assign_stories to add each call's timings to the current segment."""

    def __init__(self) -> None:
        self.segment = Segment()
        self.inner = stories.assign_stories

    def __call__(self, *args: Any, **kwargs: Any) -> stories.StoryAssignment:
        assignment = self.inner(*args, **kwargs)
        self.segment.add(assignment)
        return assignment


def checkpoints(count: int) -> list[int]:
    """Article counts at which figures are taken: a tenth, a quarter, a half, all."""
    calls = -(-count // PER_CALL)
    marks = {max(1, calls * share // 100) * PER_CALL for share in (10, 25, 50, 100)}
    return sorted(min(mark, count) for mark in marks)


def cluster(database_url: str, count: int) -> tuple[list[Checkpoint], int]:
    """Deliver ``count`` entries to an empty database: figures at each checkpoint, and stories."""
    engine = open_database(Settings(database=DatabaseSettings(url=database_url)))
    timed = _Timed()
    store.assign_stories = timed  # type: ignore[attr-defined]
    marks = checkpoints(count)
    figures: list[Checkpoint] = []
    try:
        with Session(engine) as session, session.begin():
            feeds = [
                add_feed(
                    session,
                    url=f"https://news{n}.example/rss",
                    interval=timedelta(minutes=15),
                    now=utcnow(),
                )[0].id
                or 0
                for n in range(FEEDS)
            ]
        done = 0
        for call, batch in enumerate(synthetic_batches(count)):
            clock = Clock()
            with Session(engine) as session, session.begin():
                store.save_new_articles(
                    session, feed_id=feeds[call % FEEDS], entries=batch, now=utcnow()
                )
            timed.segment.total += clock.seconds()
            timed.segment.articles += len(batch)
            done += len(batch)
            if done in marks:
                total, index = database_bytes(engine)
                figures.append(Checkpoint(done, timed.segment, total, index, rss_mb()))
                timed.segment = Segment()
        with Session(engine) as session:
            formed = len(session.exec(select(Story.id)).all())
    finally:
        store.assign_stories = timed.inner  # type: ignore[attr-defined]
        engine.dispose()
    return figures, formed


def run() -> list[Table]:
    """Cluster the synthetic articles on each available database; a table for each."""
    count = article_count()
    tables: list[Table] = []
    with fresh_databases("bench_stories") as databases:
        for label, url in databases:
            progress(f"stories: clustering {count:,} articles in {label}")
            figures, formed = cluster(url, count)
            tables.append(_table(label, figures, formed))
    return tables


def _table(label: str, figures: list[Checkpoint], formed: int) -> Table:
    table = Table(f"{TITLE}, {label}", [f"{c.articles:,}" for c in figures])
    segments = [c.segment for c in figures]
    table.add("save_new_articles, all of it", "ms/article", *(_ms(s.total, s) for s in segments))
    table.add(
        "story assignment",
        "ms/article",
        *(_ms(s.signature + s.lookup + s.insert, s) for s in segments),
    )
    table.add("  signature", "ms/article", *(_ms(s.signature, s) for s in segments))
    table.add("  band lookup", "ms/article", *(_ms(s.lookup, s) for s in segments))
    table.add("  insert (stories, bands)", "ms/article", *(_ms(s.insert, s) for s in segments))
    table.add("database size", "bytes/article", *(c.total_bytes // c.articles for c in figures))
    table.add(
        "of which story index", "bytes/article", *(c.index_bytes // c.articles for c in figures)
    )
    table.add("process memory (RSS)", "MB", *(c.rss_mb for c in figures))
    table.notes.append(
        "columns: articles stored so far; times are per article of the articles since the "
        f"previous column. {formed:,} stories formed."
    )
    table.notes.append(
        f"{COPY_SHARE:.0%} of the articles are syndicated copies; set {COUNT_ENV} for another N."
    )
    return table


def _ms(seconds: float, segment: Segment) -> float:
    return seconds * 1000 / max(1, segment.articles)
