"""The search index stays in step with the articles: ingest, edits, bodies, prune, retag, drift
found by ``monitor index check`` and put right by ``monitor index rebuild``, and a monitor
killed with SIGKILL while its writer holds a batch leaves no drift behind."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text, update
from sqlmodel import Session, SQLModel, col, select

from monitor.db import create_db_engine
from monitor.failpoints import FAILPOINT_ENV
from monitor.ingest.prune import RetentionRules, prune_archive
from monitor.ingest.store import save_new_articles
from monitor.models import Article, Feed, Match, Topic
from monitor.pages.store import store_body
from monitor.sources.parse import ParsedEntry
from monitor.topics.index import check_index, rebuild_index
from monitor.topics.query import parse_query
from monitor.topics.tagging import _scan_backtest, backtest, retag_topic
from tests.utils.config import ConfigWriter, fixture_feed
from tests.utils.factories import add_topic
from tests.utils.feedserver import FeedServer

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
ARTICLES = SQLModel.metadata.tables["article"]


def _entry(number: int, title: str, summary: str = "") -> ParsedEntry:
    return ParsedEntry(
        guid=f"story-{number}",
        link=f"https://news.example.com/story/{number}",
        title=title,
        summary=summary,
        content="",
        author="",
        published_at=NOW - timedelta(hours=1),
        updated_at=None,
    )


def _feed(session: Session) -> int:
    feed = Feed(url="https://news.example.com/feed.xml", title="Example News")
    session.add(feed)
    session.flush()
    return feed.id or 0


def _ingest(engine: Engine, entries: list[ParsedEntry], *, now: datetime = NOW) -> list[int]:
    with Session(engine) as session, session.begin():
        feed_id = session.exec(select(Feed.id)).first() or _feed(session)
        stored = save_new_articles(session, feed_id=feed_id, entries=entries, now=now)
        return [article.id or 0 for article in stored]


def _found(engine: Engine, query: str) -> list[str]:
    """Titles a search finds, newest first, and the same as the scan's."""
    node = parse_query(query)
    since = NOW - timedelta(days=400)
    with Session(engine) as session:
        indexed = backtest(session, node, since=since, limit=100)
        scanned = _scan_backtest(session, node, since=since, limit=100, timezone="UTC",
                                 before=None)  # fmt: skip
    assert indexed.planned
    assert [s.article.id for s in indexed.samples] == [s.article.id for s in scanned.samples]
    return [sample.article.title for sample in indexed.samples]


def _drift(engine: Engine) -> int:
    with engine.connect() as connection:
        return check_index(connection).drift


def test_ingest_writes_the_index_with_the_articles(engine: Engine) -> None:
    _ingest(engine, [_entry(1, "Élection à Zürich", "Le café naïf"), _entry(2, "Kremlin talks")])
    assert _found(engine, "election") == ["Élection à Zürich"]
    assert _found(engine, "title:zurich AND naif") == ["Élection à Zürich"]
    assert _found(engine, "kreml*") == ["Kremlin talks"]
    assert _drift(engine) == 0


def test_an_edit_is_indexed_again(engine: Engine) -> None:
    _ingest(engine, [_entry(1, "Central bank holds rates", "No change today.")])
    assert _found(engine, "rates") == ["Central bank holds rates"]
    _ingest(engine, [_entry(1, "Central bank raises interest", "A surprise.")],
            now=NOW + timedelta(minutes=5))  # fmt: skip
    assert _found(engine, "rates") == []
    assert _found(engine, "interest AND surprise") == ["Central bank raises interest"]
    assert _drift(engine) == 0


def test_a_body_from_the_page_is_indexed(engine: Engine) -> None:
    (article_id,) = _ingest(engine, [_entry(1, "Talks resume", "A teaser.")])
    assert _found(engine, "sanctions") == []
    with Session(engine) as session, session.begin():
        store_body(session, article_id=article_id, body="The sanctions on state-of-the-art "
                   "chips stay, O'Brien said. " * 200, method="trafilatura")  # fmt: skip
    assert _found(engine, '"state of the art" AND "o brien"') == ["Talks resume"]
    assert _found(engine, "teaser") == ["Talks resume"]  # the feed's text is still read
    assert _drift(engine) == 0


def test_prune_removes_index_entries(engine: Engine) -> None:
    old = NOW - timedelta(days=200)
    _ingest(engine, [_entry(1, "Old election news")], now=old)
    _ingest(engine, [_entry(2, "New election news")])
    prune_archive(engine, RetentionRules(older_than=timedelta(days=90)), now=NOW)
    assert _found(engine, "election") == ["New election news"]
    assert _drift(engine) == 0


def test_retag_through_the_index_matches_what_a_scan_matches(engine: Engine) -> None:
    titles = ["Election in Moscow", "Выборы в Москве", "Bank rates", "Elections and banks"]
    _ingest(engine, [_entry(n, title) for n, title in enumerate(titles)])
    with Session(engine) as session, session.begin():
        topic = add_topic(session, "votes", "elect* OR ~выборы", version=2, tagged_version=1)
        matched = retag_topic(session, topic, since=NOW - timedelta(days=1), now=NOW)
        topic_id = topic.id
    with Session(engine) as session:
        stored = session.exec(
            select(Article.title).join(Match, col(Match.article_id) == Article.id)
            .where(col(Match.topic_id) == topic_id)
        ).all()  # fmt: skip
        refreshed = session.get(Topic, topic_id)
        assert refreshed is not None
        assert refreshed.tagged_version == 2
    assert matched == 3
    assert sorted(stored) == sorted(
        ["Election in Moscow", "Выборы в Москве", "Elections and banks"]
    )


def test_check_finds_drift_and_rebuild_puts_it_right(engine: Engine) -> None:
    ids = _ingest(engine, [_entry(n, f"Story number {n} on trade") for n in range(5)])
    with engine.begin() as connection:
        # Behind the index's back: one article's text changes, another's entry goes.
        connection.execute(update(ARTICLES).where(ARTICLES.c.id == ids[0]).values(title="Other"))
        if connection.dialect.name == "postgresql":
            connection.execute(text("UPDATE article SET search_vector = NULL WHERE id = :id"),
                               {"id": ids[1]})  # fmt: skip
        else:
            connection.execute(text("DELETE FROM article_words WHERE article_id = :id"),
                               {"id": ids[1]})  # fmt: skip
    with engine.connect() as connection:
        found = check_index(connection)
    assert (found.articles, found.stale, found.missing + found.orphans) == (
        5,
        1,
        1 + (0 if engine.dialect.name == "postgresql" else 1),
    )  # SQLite: its FTS row is left over
    with engine.connect() as connection:
        assert rebuild_index(connection, commit=connection.commit) == 5
        connection.commit()
    assert _drift(engine) == 0
    assert _found(engine, "other") == ["Other"]


def _monitor(
    config: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config), *args],
        capture_output=True, text=True, timeout=180, cwd=ROOT, env={**os.environ, **(env or {})},
    )  # fmt: skip


@pytest.mark.slow
def test_a_monitor_killed_mid_write_leaves_no_drift(
    config: ConfigWriter, feed_server: FeedServer, db_url: str
) -> None:
    config.feeds = [feed_server.add("/world.rss", fixture_feed("world.rss"))]
    path = config.write()
    killed = _monitor(path, "poll", env={FAILPOINT_ENV: "before-write-commit"})
    assert killed.returncode == -9, killed.stderr
    check = _monitor(path, "index", "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "drift: 0" in check.stdout
    engine = create_db_engine(db_url)
    with Session(engine) as session:
        assert session.exec(select(Article)).first() is None  # the batch went, index and all
    polled = _monitor(path, "poll")
    assert polled.returncode in (0, 1), polled.stderr
    check = _monitor(path, "index", "check")
    assert check.returncode == 0, check.stdout
    assert "drift: 0" in check.stdout
    with Session(engine) as session:
        stored = session.exec(select(Article)).all()
        assert stored
        word = stored[0].title.split()[0]
    searched = _monitor(path, "search", word)
    assert searched.returncode == 0, searched.stderr
    assert stored[0].title[:20] in searched.stdout, searched.stdout
    engine.dispose()


def test_index_check_exits_non_zero_on_drift(config: ConfigWriter, db_url: str) -> None:
    path = config.write()
    assert _monitor(path, "index", "check").returncode == 0
    engine = create_db_engine(db_url)
    _ingest(engine, [_entry(1, "A story")])
    with engine.begin() as connection:
        connection.execute(update(ARTICLES).values(title="Changed behind its back"))
    engine.dispose()
    check = _monitor(path, "index", "check")
    assert check.returncode == 1, check.stdout
    assert "1 indexed with other words" in check.stdout
    rebuilt = _monitor(path, "index", "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "indexed 1 articles" in rebuilt.stdout
    assert _monitor(path, "index", "check").returncode == 0
