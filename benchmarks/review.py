"""``review``: the alerts inbox of one busy topic-day, 20,000 matched articles in 4,000 stories.

Times the first page, a page near the end (the cursor makes it a seek, not an offset scan), a
walk of every page, the counts by state, exporting the whole day as CSV, and bulk changes of
1,000 articles (each locks its review row and writes a history event), on a SQLite file and,
when reachable, PostgreSQL. Rows are stored with core inserts; the timings are wall time.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, SQLModel

from benchmarks.common import Table, fresh_databases, peak_rss_mb, progress, rate
from monitor.db import create_db_engine, upgrade_database
from monitor.exports import csv_text
from monitor.models import ReviewState, Topic
from monitor.review.inbox import EXPORT_HEADER, InboxFilter, export_row, inbox_page, iter_inbox
from monitor.review.store import set_reviews

TITLE = "review: the inbox of one topic-day of 20,000 matched articles"
ARTICLES = 20_000
STORIES = 4_000
BULK = 1_000
DAY = date(2024, 9, 8)
NOW = datetime(2024, 9, 9, 6, 0, tzinfo=UTC)
BATCH = 2_000


def seed(engine: Engine) -> int:
    """Store the day: a feed, a topic, the stories, the articles and their matches."""
    tables = SQLModel.metadata.tables
    start = datetime(2024, 9, 8, 0, 0, tzinfo=UTC)
    with engine.begin() as connection:
        connection.execute(tables["feed"].insert(), [{
            "url": "https://news.example.com/feed.xml", "title": "News", "site_url": "",
            "category": "", "state": "active", "interval_seconds": 900, "next_check_at": NOW,
            "error_count": 0, "created_at": NOW, "interval_reason": "",
            "fetch_pages": "auto"}])  # fmt: skip
        connection.execute(tables["topic"].insert(), [{
            "slug": "votes", "name": "Votes", "description": "", "query": "election",
            "priority": "normal", "enabled": True, "version": 1, "tagged_version": 1,
            "created_at": NOW, "updated_at": NOW, "private": False}])  # fmt: skip
        connection.execute(tables["story"].insert(), [
            {"id": s + 1, "title": f"Story {s}", "first_seen_at": start, "last_seen_at": start,
             "article_count": ARTICLES // STORIES, "outlet_count": 1}
            for s in range(STORIES)])  # fmt: skip
        for first in range(0, ARTICLES, BATCH):
            articles, matches = [], []
            for n in range(first, min(first + BATCH, ARTICLES)):
                digest = hashlib.sha256(str(n).encode()).hexdigest()
                seen = start + timedelta(seconds=n * 4)
                articles.append({
                    "id": n + 1, "key_hash": digest, "url": f"https://news.example.com/{n}",
                    "feed_id": 1, "title": f"Election story {n} =1+1", "summary": "",
                    "content": "", "author": "", "language": "en",
                    "detected_language": "en" if n % 3 else "de", "first_seen_at": seen,
                    "content_hash": digest, "story_id": n % STORIES + 1, "body": "",
                    "body_method": "", "backlog": n % 50 == 0})  # fmt: skip
                matches.append({
                    "article_id": n + 1, "topic_id": 1, "topic_version": 1, "score": 1.0,
                    "terms": ["election"], "spans": [], "snippet": f"Election story {n}",
                    "snippet_spans": [[0, 8]], "matched_at": seen,
                    "text_source": "feed"})  # fmt: skip
            connection.execute(tables["article"].insert(), articles)
            connection.execute(tables["match"].insert(), matches)
    return 1


def measure(url: str) -> dict[str, float | int]:
    """The figures on one database."""
    engine = create_db_engine(url)
    try:
        upgrade_database(engine)
        topic_id = seed(engine)
        spec = InboxFilter(topic_id, DAY, DAY)
        figures: dict[str, float | int] = {}
        with Session(engine) as session:
            began = time.perf_counter()
            page = inbox_page(session, spec)
            figures["first"] = (time.perf_counter() - began) * 1000
            cursor, pages, walked = page.next_cursor, 1, len(page.items)
            began = time.perf_counter()
            last_cursor = cursor
            while cursor is not None:
                page = inbox_page(session, spec, cursor=cursor)
                pages += 1
                walked += len(page.items)
                last_cursor, cursor = cursor, page.next_cursor
            walk = time.perf_counter() - began
            figures["walk_ms_per_page"] = walk * 1000 / max(1, pages - 1)
            figures["pages"], figures["walked"] = pages, walked
            began = time.perf_counter()
            inbox_page(session, spec, cursor=last_cursor)
            figures["deep"] = (time.perf_counter() - began) * 1000
            began = time.perf_counter()
            german = inbox_page(session, InboxFilter(topic_id, DAY, DAY, language="de"))
            figures["filtered"] = (time.perf_counter() - began) * 1000
            figures["german"] = german.counts.total
        with Session(engine) as session:
            topic = session.get(Topic, 1)
            assert topic is not None
            began = time.perf_counter()
            rows = [export_row(item, topic) for item in iter_inbox(session, spec)]
            text = csv_text(EXPORT_HEADER, rows)
            figures["export_s"] = time.perf_counter() - began
            figures["export_rows"], figures["export_mb"] = len(rows), len(text) / 1e6
        ids = list(range(1, ARTICLES + 1))
        began = time.perf_counter()
        changed = 0
        for first in range(0, 5 * BULK, BULK):
            with Session(engine) as session, session.begin():
                changed += len(set_reviews(session, topic_id=topic_id,
                                           article_ids=ids[first:first + BULK],
                                           state=ReviewState.REVIEWED, note=None, by="bench",
                                           now=NOW))  # fmt: skip
        figures["bulk_per_s"] = rate(changed, time.perf_counter() - began) or 0.0
        return figures
    finally:
        engine.dispose()


def run() -> list[Table]:
    """Seed and time the inbox on each database."""
    with fresh_databases("bench_review") as databases:
        results = []
        for label, url in databases:
            progress(f"review: {ARTICLES} matched articles on {label}")
            results.append(measure(url))
        table = Table(TITLE, [label for label, _ in databases])
    table.add("first page (50 articles, with counts)", "ms", *(r["first"] for r in results))
    table.add("a page after 19,950 articles (cursor)", "ms", *(r["deep"] for r in results))
    table.add("walking every page, per page", "ms", *(r["walk_ms_per_page"] for r in results))
    table.add("pages walked", "", *(int(r["pages"]) for r in results))
    table.add("first page filtered by language (de)", "ms", *(r["filtered"] for r in results))
    table.add("CSV export of the whole day", "s", *(r["export_s"] for r in results))
    table.add("CSV export size", "MB", *(r["export_mb"] for r in results))
    table.add("bulk review (1,000 at a time)", "articles/s", *(r["bulk_per_s"] for r in results))
    table.add("peak memory (this process)", "MB", peak_rss_mb(), None)
    table.notes.append(
        "Each page also counts the filter's articles by state (the header's '12 of 40')."
    )
    return [table]
