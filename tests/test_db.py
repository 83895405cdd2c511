"""Engines and migrations on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import StatementError
from sqlmodel import Session, SQLModel

from monitor.db import (
    create_db_engine,
    current_revision,
    head_revision,
    normalise_database_url,
    require_current_schema,
    upgrade_database,
)
from monitor.errors import DatabaseError
from monitor.models import Feed, table_names


def test_migrations_create_exactly_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []
    assert set(table_names()) <= set(inspect(engine).get_table_names())


def test_upgrade_is_idempotent(engine: Engine) -> None:
    assert upgrade_database(engine) == head_revision()
    assert current_revision(engine) == head_revision()
    require_current_schema(engine)


def test_unmigrated_database_is_reported(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(DatabaseError, match=r"no monitor tables.*run `monitor init`"):
        require_current_schema(engine)


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
