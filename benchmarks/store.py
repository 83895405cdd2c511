"""``store``: save_new_articles inserting 10,000 entries, 50 per call as feeds deliver them.

Each call is its own transaction, as in a refresh. A second pass delivers the same entries
again (every one already stored): what a feed that changed one item costs for the other 49.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine, func
from sqlmodel import Session, select

from benchmarks.common import (
    Clock,
    Table,
    find_corpus,
    fresh_databases,
    postgres_unavailable,
    progress,
    rate,
)
from benchmarks.text import SampleArticle, sample_articles
from monitor.ingest.store import save_new_articles
from monitor.models import Article, utcnow
from monitor.operations import open_database
from monitor.settings import DatabaseSettings, Settings
from monitor.sources.feeds import add_feed
from monitor.sources.parse import ParsedEntry

TITLE = "store: save_new_articles, 50 entries per call"
ENTRIES = 10_000
PER_CALL = 50
FEEDS = 200
SEED = 20240906
_SECTIONS = ("world", "politics", "europe", "business", "science", "opinion")


@dataclass(frozen=True, slots=True)
class StoreRun:
    """Both passes on one database."""

    first_seconds: float
    new_articles: int
    again_seconds: float
    again_new: int
    stored: int


def synthetic_entries(articles: list[SampleArticle], rng: random.Random) -> list[ParsedEntry]:
    """ENTRIES distinct entries with tracking-laden links, ~300-char summaries, ~3 KB content."""
    now = utcnow()
    entries = []
    for number in range(ENTRIES):
        article = articles[number % len(articles)]
        slug = "-".join(article.title.lower().split()[:6]) or "story"
        section = rng.choice(_SECTIONS)
        published = now - timedelta(minutes=number)
        entries.append(
            ParsedEntry(
                guid=f"https://news.example/{section}/{number}",
                link=(
                    f"https://news.example/{section}/{published:%Y/%m/%d}/{number:06d}-{slug}"
                    "?utm_source=rss&utm_medium=feed"
                ),
                title=f"{article.title} ({number})",
                summary=article.body[:300],
                content=article.body,
                author="Staff reporter",
                published_at=published,
                updated_at=published,
                language="en",
            )
        )
    return entries


def _add_feeds(engine: Engine) -> list[int]:
    now = utcnow()
    with Session(engine) as session, session.begin():
        feeds = [
            add_feed(
                session, url=f"https://news{n}.example/rss", interval=timedelta(minutes=15), now=now
            )[0]
            for n in range(FEEDS)
        ]
        return [feed.id or 0 for feed in feeds]


def deliver(engine: Engine, feed_ids: list[int], entries: list[ParsedEntry]) -> tuple[float, int]:
    """Save ``entries`` PER_CALL at a time, each call in its own transaction; seconds and new."""
    new = 0
    clock = Clock()
    for call, start in enumerate(range(0, len(entries), PER_CALL)):
        with Session(engine) as session, session.begin():
            saved = save_new_articles(
                session,
                feed_id=feed_ids[call % len(feed_ids)],
                entries=entries[start : start + PER_CALL],
                now=utcnow(),
            )
        new += len(saved)
    return clock.seconds(), new


def store_entries(database_url: str, entries: list[ParsedEntry]) -> StoreRun:
    """Migrate an empty database, add feeds, deliver the entries twice."""
    engine = open_database(Settings(database=DatabaseSettings(url=database_url)))
    try:
        feed_ids = _add_feeds(engine)
        first_seconds, new = deliver(engine, feed_ids, entries)
        again_seconds, again_new = deliver(engine, feed_ids, entries)
        with Session(engine) as session:
            stored = session.exec(select(func.count()).select_from(Article)).one()
    finally:
        engine.dispose()
    return StoreRun(first_seconds, new, again_seconds, again_new, stored)


def run() -> list[Table]:
    """Store the synthetic entries on each available database and tabulate the figures."""
    rng = random.Random(SEED)
    progress("store: building synthetic entries")
    articles, source = sample_articles(find_corpus(), count=1000, rng=rng)
    entries = synthetic_entries(articles, rng)
    runs: dict[str, StoreRun] = {}
    with fresh_databases("bench_store") as databases:
        for label, url in databases:
            progress(f"store: {len(entries):,} entries into {label}")
            runs[label] = store_entries(url, entries)
    table = Table(TITLE, list(runs))
    results = list(runs.values())
    calls = -(-len(entries) // PER_CALL)
    table.add("entries delivered", "", *(len(entries) for _ in results))
    table.add("new articles", "", *(r.new_articles for r in results))
    table.add("rows in article table", "", *(r.stored for r in results))
    table.add("first delivery", "s", *(r.first_seconds for r in results))
    table.add(
        "first delivery", "articles/s", *(rate(len(entries), r.first_seconds) for r in results)
    )
    table.add("first delivery", "ms/call", *(1000 * r.first_seconds / calls for r in results))
    table.add("same entries again", "s", *(r.again_seconds for r in results))
    table.add(
        "same entries again", "entries/s", *(rate(len(entries), r.again_seconds) for r in results)
    )
    table.add("same entries again", "new", *(r.again_new for r in results))
    table.notes.append(
        f"{calls} calls of {PER_CALL} spread over {FEEDS} feeds, one transaction each; "
        f"entry text: {source}"
    )
    if (reason := postgres_unavailable()) is not None:
        table.notes.append(reason)
    return [table]
