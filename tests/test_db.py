"""Engines and migrations on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import StatementError
from sqlmodel import Session, SQLModel, select

from monitor.db import (
    MIGRATIONS_DIR,
    create_db_engine,
    head_revision,
    normalise_database_url,
    upgrade_database,
)
from monitor.errors import DatabaseError
from monitor.models import (
    Feed,
    Match,
    Subscription,
    Topic,
    TopicPriority,
    UTCDateTime,
    table_names,
)
from monitor.topics.index import outside_models
from monitor.topics.matcher import ArticleView
from monitor.topics.query import keywords_query
from monitor.topics.tagging import load_matcher, topics_to_retag


def test_migrations_create_exactly_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        # The search index (FTS5 tables, the tsvector column) lives outside the models.
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": outside_models}
        )
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []
    assert set(table_names()) <= set(inspect(engine).get_table_names())


def test_upgrade_is_idempotent(engine: Engine) -> None:
    assert upgrade_database(engine) == head_revision()
    assert current_revision(engine) == head_revision()


def current_revision(engine: Engine) -> str | None:
    """The revision Alembic recorded in the database."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'sub' / 'monitor.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_sqlite_transactions_take_the_write_lock_at_once(tmp_path: Path) -> None:
    path = tmp_path / "monitor.db"
    engine = create_db_engine(f"sqlite:///{path}")
    upgrade_database(engine)
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    with Session(engine) as session, session.begin():
        session.exec(text("SELECT 1"))  # type: ignore[call-overload]
        # Only reads so far, yet a second writer is already kept out: BEGIN IMMEDIATE.
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
    other.execute("BEGIN IMMEDIATE")
    other.execute("ROLLBACK")
    other.close()


def test_aware_times_round_trip_as_utc(engine: Engine) -> None:
    berlin_noon = datetime(2024, 9, 6, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    with Session(engine) as session, session.begin():
        session.add(Feed(url="https://example.com/feed", next_check_at=berlin_noon))
    with Session(engine) as session:
        feed = session.get(Feed, 1)
        assert feed is not None
        assert feed.next_check_at == berlin_noon
        assert feed.next_check_at.utcoffset() == timedelta(0)


def test_naive_times_are_refused(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(Feed(url="https://example.com/feed", next_check_at=datetime(2024, 1, 1)))
        with pytest.raises(StatementError, match="naive datetime"):
            session.commit()


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("sqlite:///var/monitor.db", "sqlite"),
        ("postgresql://u@h/db", "postgresql+psycopg"),
        ("postgres://u@h/db", "postgresql+psycopg"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg"),
    ],
)
def test_database_urls(url: str, driver: str) -> None:
    assert normalise_database_url(url).drivername == driver


@pytest.mark.parametrize(
    ("url", "message"),
    [("mysql://u@h/db", "unsupported backend 'mysql'"), ("not a url", "not a database URL")],
)
def test_bad_database_urls(url: str, message: str) -> None:
    with pytest.raises(DatabaseError, match=message):
        create_db_engine(url)


def test_unreachable_database_names_the_url_without_password() -> None:
    engine = create_db_engine("postgresql://monitor:s3cret@127.0.0.1:1/monitor")
    with pytest.raises(DatabaseError, match=r"cannot connect to .*127\.0\.0\.1:1") as caught:
        upgrade_database(engine)
    assert "s3cret" not in str(caught.value)


# --- 0002: topics as queries ---------------------------------------------------------------

T0 = datetime(2024, 9, 6, 8, 0, tzinfo=UTC)


def _migrate_to(engine: Engine, revision: str) -> None:
    """Run the migrations up to ``revision`` on one connection, as monitor.db does."""
    with engine.begin() as connection:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


# The topic table as revision 0001 made it: keywords, no query.
TOPIC_0001 = sa.table(
    "topic",
    sa.column("id", sa.Integer()),
    sa.column("slug", sa.String()),
    sa.column("name", sa.Text()),
    sa.column("description", sa.Text()),
    sa.column("keywords", sa.JSON()),
    sa.column("enabled", sa.Boolean()),
    sa.column("version", sa.Integer()),
    sa.column("created_at", UTCDateTime()),
    sa.column("updated_at", UTCDateTime()),
)
MATCH_0001 = sa.table(
    "match",
    sa.column("article_id", sa.Integer()),
    sa.column("topic_id", sa.Integer()),
    sa.column("topic_version", sa.Integer()),
    sa.column("score", sa.Float()),
    sa.column("terms", sa.JSON()),
    sa.column("matched_at", UTCDateTime()),
)
SUBSCRIBER_0001 = sa.table(
    "subscriber",
    sa.column("id", sa.Integer()),
    sa.column("email", sa.String()),
    sa.column("name", sa.Text()),
    sa.column("timezone", sa.String()),
    sa.column("created_at", UTCDateTime()),
)
SUBSCRIPTION_0001 = sa.table(
    "subscription",
    sa.column("id", sa.Integer()),
    sa.column("subscriber_id", sa.Integer()),
    sa.column("topic_id", sa.Integer()),
    sa.column("frequency", sa.String()),
    sa.column("send_time", sa.String()),
    sa.column("created_at", UTCDateTime()),
)
FEED_0001 = sa.table(
    "feed",
    *(sa.column(name, sa.Text()) for name in ("url", "title", "site_url", "category", "state")),
    sa.column("id", sa.Integer()),
    sa.column("interval_seconds", sa.Integer()),
    sa.column("error_count", sa.Integer()),
    sa.column("next_check_at", UTCDateTime()),
    sa.column("created_at", UTCDateTime()),
)
ARTICLE_0001 = sa.table(
    "article",
    *(sa.column(name, sa.Text()) for name in ("key_hash", "url", "title", "summary", "content")),
    *(sa.column(name, sa.Text()) for name in ("author", "language", "content_hash")),
    sa.column("id", sa.Integer()),
    sa.column("feed_id", sa.Integer()),
    sa.column("first_seen_at", UTCDateTime()),
)
KEYWORD_TOPICS = [
    (1, "votes", ["election interference", "meddl* in the election", "Kremlin"], 3, True),
    (2, "banks", ["central bank"], 1, False),
]


def _rows_at_0001(connection: sa.Connection) -> None:
    """Keyword topics at revision 0001, with a match and a subscription referring to one."""
    for topic_id, slug, keywords, version, enabled in KEYWORD_TOPICS:
        connection.execute(
            TOPIC_0001.insert().values(
                id=topic_id, slug=slug, name=slug.title(), description="", keywords=keywords,
                enabled=enabled, version=version, created_at=T0, updated_at=T0,
            )
        )  # fmt: skip
    # Subscribers and subscriptions have changed since (0003): written as they were then.
    connection.execute(
        SUBSCRIBER_0001.insert().values(
            id=1, email="a@example.org", name="", timezone="UTC", created_at=T0
        )
    )
    connection.execute(
        SUBSCRIPTION_0001.insert().values(
            id=1, subscriber_id=1, topic_id=1, frequency="daily", send_time="08:00", created_at=T0
        )
    )
    # Feeds have changed since (0005): written as they were then.
    connection.execute(
        FEED_0001.insert().values(
            id=1, url="https://x.example/feed", title="", site_url="", category="",
            state="active", interval_seconds=900, error_count=0, next_check_at=T0, created_at=T0,
        )
    )  # fmt: skip
    # Articles have changed since (0006: stories): written as they were then.
    connection.execute(
        ARTICLE_0001.insert().values(
            id=1, key_hash="k", feed_id=1, url="", title="Kremlin denies election interference",
            summary="", content="", author="", language="", first_seen_at=T0, content_hash="h",
        )
    )  # fmt: skip
    connection.execute(
        MATCH_0001.insert().values(
            article_id=1, topic_id=1, topic_version=3, score=4.0,
            terms=["election interference"], matched_at=T0,
        )
    )  # fmt: skip


def test_0002_turns_stored_keyword_topics_into_queries(db_url: str) -> None:
    engine = create_db_engine(db_url)
    _migrate_to(engine, "0001")
    assert current_revision(engine) == "0001"
    with engine.begin() as connection:
        _rows_at_0001(connection)

    upgrade_database(engine)

    assert current_revision(engine) == head_revision()
    with Session(engine) as session:
        stored = {t.slug: t for t in session.exec(select(Topic)).all()}
        match = session.exec(select(Match)).one()
        pending = topics_to_retag(session)
        hits = load_matcher(session).match(
            ArticleView(title="Kremlin denies election interference", text="")
        )
    votes, banks = stored["votes"], stored["banks"]
    assert votes.query == '"election interference" OR "meddl* in the election" OR Kremlin'
    assert votes.query == keywords_query(KEYWORD_TOPICS[0][2])
    assert banks.query == '"central bank"'
    # The stored matches came from these very keywords: nothing is due for a retag.
    assert (votes.version, votes.tagged_version) == (3, 3)
    assert (banks.version, banks.tagged_version, banks.enabled) == (1, 1, False)
    assert (votes.priority, votes.source_hash) == (TopicPriority.NORMAL, None)
    assert pending == []
    assert (match.topic_version, match.terms) == (3, ["election interference"])
    assert (match.spans, match.snippet, match.snippet_spans) == ([], "", [])
    assert [(hit.slug, hit.version) for hit in hits] == [("votes", 3)]
    with Session(engine) as session:
        assert session.exec(select(Subscription.topic_id)).all() == [votes.id]
    if engine.dialect.name == "sqlite":
        # Turned off for the table rebuilds only.
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()
