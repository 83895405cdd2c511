"""Engines and migrations: the only module that creates a database engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, Table, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, SQLModel

from monitor.errors import DatabaseError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same in every monitor process sharing a database.
_MIGRATION_LOCK_KEY = 0x6D6F6E69
SQLITE_BUSY_TIMEOUT_MS = 30_000

Insert = sqlite.Insert | postgresql.Insert


def normalise_database_url(url: str) -> URL:
    """Parse a database URL; plain ``postgresql://`` means psycopg 3, the driver we ship."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseError(f"database: not a database URL: {url!r}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise DatabaseError(
            f"database: unsupported backend {parsed.get_backend_name()!r} "
            "(use sqlite or postgresql)"
        )
    return parsed


def create_db_engine(url: str, *, echo: bool = False) -> Engine:
    """Create an engine: SQLite in WAL mode with immediate write transactions, or PostgreSQL."""
    # Every ORM write of an article keeps the search index in step (the listeners are there).
    import monitor.topics.index  # noqa: F401

    parsed = normalise_database_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _create_sqlite_engine(parsed, echo=echo)
    return create_engine(parsed, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=10)


def _create_sqlite_engine(url: URL, *, echo: bool) -> Engine:
    in_memory = url.database in (None, "", ":memory:")
    if not in_memory and url.database:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
    if in_memory:
        kwargs["poolclass"] = StaticPool
    engine = create_engine(url, echo=echo, **kwargs)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Connection) -> None:
        # Take the write lock up front: a deferred transaction that later writes can fail with
        # SQLITE_BUSY without waiting for the busy timeout when another writer got there first.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def describe_engine(engine: Engine) -> str:
    """The engine's URL with any password hidden, for messages."""
    return engine.url.render_as_string(hide_password=True)


def check_connection(engine: Engine) -> None:
    """Raise DatabaseError with the reason when the database cannot be reached."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc) or exc).strip().splitlines()[0]
        raise DatabaseError(
            f"database: cannot connect to {describe_engine(engine)}: {reason}"
        ) from None


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest migration shipped with this version of monitor."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None, "monitor ships at least one migration"
    return head


def upgrade_database(engine: Engine) -> str:
    """Run the Alembic migrations up to head, once even when several processes start together."""
    check_connection(engine)
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # SQLite rebuilds a table to alter it, and dropping a table that other rows refer to
            # fails while foreign keys are enforced; the pragma only takes effect outside a
            # transaction (https://www.sqlite.org/lang_altertable.html#otheralter).
            _sqlite_foreign_keys(connection, on=False)
        try:
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                    )
                command.upgrade(_alembic_config(connection), "head")
                if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first():
                    raise DatabaseError("database: a migration left rows with broken references")
        finally:
            if sqlite:
                _sqlite_foreign_keys(connection, on=True)
    return head_revision()


def _sqlite_foreign_keys(connection: Connection, *, on: bool) -> None:
    # Straight to the driver: through SQLAlchemy the statement would open a transaction first.
    driver = connection.connection.driver_connection
    assert driver is not None
    driver.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


def dialect_insert(session: Session, table: type[SQLModel] | Table) -> Insert:
    """An INSERT that can say ON CONFLICT, for the session's backend."""
    backend = session.get_bind().dialect.name
    if backend == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
