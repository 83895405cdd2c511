"""Fixtures: databases (SQLite and PostgreSQL), real feed and SMTP servers, configurations."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from monitor.db import create_db_engine, upgrade_database
from tests.utils.config import ConfigWriter
from tests.utils.feedserver import FeedServer, running_feed_server
from tests.utils.smtpserver import SmtpServer, running_smtp_server

POSTGRES_URL = os.environ.get(
    "MONITOR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
_admin_engine: Engine | None = None


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see no MONITOR_* settings from the shell that runs them."""
    for name in list(os.environ):
        if name.startswith("MONITOR_") and not name.startswith("MONITOR_TEST_"):
            monkeypatch.delenv(name)


def _postgres_admin() -> Engine:
    global _admin_engine
    if _admin_engine is None:
        _admin_engine = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with _admin_engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        if os.environ.get("MONITOR_TEST_POSTGRES") == "skip":
            pytest.skip("PostgreSQL tests skipped on request (MONITOR_TEST_POSTGRES=skip)")
        pytest.fail(
            f"PostgreSQL is not reachable at {POSTGRES_URL} ({type(exc).__name__}); start it "
            "(`make postgres`) or set MONITOR_TEST_POSTGRES=skip to skip these tests knowingly",
            pytrace=False,
        )
    return _admin_engine


def postgres_schema_url(schema: str) -> str:
    """The test database URL with ``schema`` first on the search path."""
    return f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database: a SQLite file, or a fresh schema in PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'monitor.db'}"
        return
    admin = _postgres_admin()
    schema = f"monitor_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield postgres_schema_url(schema)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on a freshly migrated database."""
    engine = create_db_engine(db_url)
    upgrade_database(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    """A real HTTP server on 127.0.0.1 serving whatever the test adds."""
    with running_feed_server() as server:
        yield server


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server on 127.0.0.1 recording what it receives."""
    with running_smtp_server() as server:
        yield server


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> ConfigWriter:
    """A configuration directory of the test's own, on the test's database."""
    return ConfigWriter(tmp_path / "config", database_url=db_url, outbox=tmp_path / "outbox")
