"""``exports``: what a page of search results and an export of every match cost.

ARTICLES articles of about 1.5 KB (corpus-like prose, distinct URLs, first seen over 30 days)
are stored on SQLite and, when reachable, PostgreSQL; half of them match the query. Measured:
the first page of 50 (what /search and ``monitor search`` show), a later page (a cursor in the
middle), and the export of every match as CSV (``monitor.topics.results.every_match``: one pass
over the window, newest first, 1,000 articles a batch: the path /search?format=csv streams),
and the process's peak memory.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import insert
from sqlmodel import Session

from benchmarks.common import Clock, Table, fresh_databases, peak_rss_mb, progress, rate
from monitor.cursor import decode_cursor
from monitor.db import create_db_engine, upgrade_database
from monitor.exports import csv_chunks
from monitor.models import Article, Feed, utcnow
from monitor.topics.query import parse_query
from monitor.topics.results import COLUMNS, every_match, record_row, result_page, sample_record

TITLE = "exports: a page of search results, and every match as CSV"
ARTICLES = 20_000
QUERY = "election OR vote*"
PARAGRAPH = (
    "Officials in the capital met on Tuesday to discuss the budget, the harbour works and the "
    "new rail line; the minister said the talks had gone well and that a decision would follow "
    "within weeks. Opposition members asked for the figures to be published in full. "
)


def _load(url: str) -> None:
    engine = create_db_engine(url)
    upgrade_database(engine)
    now = utcnow()
    with Session(engine) as session, session.begin():
        feed = Feed(url="https://wire.example/feed.xml", title="Wire")
        session.add(feed)
        session.flush()
        rows = []
        for n in range(ARTICLES):
            digest = hashlib.sha256(str(n).encode()).hexdigest()
            topic = "the election and the vote count" if n % 2 else "the harbour and the rail"
            rows.append({
                "key_hash": digest, "content_hash": digest, "url": f"https://wire.example/{n}",
                "feed_id": feed.id, "title": f"Report {n} on {topic}",
                "summary": PARAGRAPH * 7, "first_seen_at": now - timedelta(seconds=129 * n + 1),
            })  # fmt: skip
            if len(rows) == 1000:
                session.execute(insert(Article), rows)
                rows = []
        if rows:
            session.execute(insert(Article), rows)
    engine.dispose()


def _measure(url: str) -> dict[str, float | int]:
    engine = create_db_engine(url)
    node = parse_query(QUERY)
    since = utcnow() - timedelta(days=31)
    figures: dict[str, float | int] = {}
    try:
        with Session(engine) as session:
            clock = Clock()
            first = result_page(session, node, since=since, limit=50)
            figures["first"] = clock.seconds()
            middle = result_page(session, node, since=since, limit=ARTICLES // 4)
            assert middle.next_cursor is not None
            clock = Clock()
            result_page(session, node, since=since, limit=50,
                        before=decode_cursor(middle.next_cursor))  # fmt: skip
            figures["middle"] = clock.seconds()
        figures["matches"] = first.result.total
        clock = Clock()
        size = rows = 0
        records = (sample_record(sample) for sample in every_match(engine, node, since=since))
        for chunk in csv_chunks(COLUMNS, (record_row(record) for record in records)):
            size += len(chunk.encode())
            rows += 1
        figures["export"] = clock.seconds()
        figures["rows"] = rows - 1
        figures["bytes"] = size
    finally:
        engine.dispose()
    return figures


def run() -> list[Table]:
    """Load, then time a first page, a middle page and a whole export on each database."""
    results: list[tuple[str, dict[str, float | int]]] = []
    with fresh_databases("monitor_bench_exports") as databases:
        for label, url in databases:
            progress(f"exports: loading {ARTICLES:,} articles into {label}")
            _load(url)
            progress(f"exports: searching and exporting on {label}")
            results.append((label, _measure(url)))
    table = Table(TITLE, [label for label, _ in results])
    for name, unit, key in [
        ("matches of the query", "articles", "matches"),
        ("first page of 50", "ms", "first"),
        ("a page of 50 from a cursor mid-way", "ms", "middle"),
        ("export of every match as CSV", "s", "export"),
        ("rows exported", "rows", "rows"),
        ("CSV size", "MB", "bytes"),
    ]:
        values: list[float | int | None] = []
        for _, figures in results:
            value = figures[key]
            if unit == "ms":
                value = value * 1000
            elif unit == "MB":
                value = value / 1_000_000
            values.append(value)
        table.add(name, unit, *values)
    table.add("rows exported per second", "rows/s",
              *[rate(f["rows"], f["export"]) for _, f in results])  # fmt: skip
    table.add("peak memory of the process", "MB", *([peak_rss_mb()] * len(results)))
    table.notes.append(
        f"{ARTICLES:,} articles of about 1.5 KB over 30 days, query {QUERY!r}. A page is a "
        "backtest, which reads every article of its window older than the cursor (until the "
        "search index lands); the export reads the window once."
    )
    return [table]
