"""What the benchmarks share: the corpus, throwaway databases, and tables of figures."""

from __future__ import annotations

import contextlib
import os
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, text

REPO_ROOT = Path(__file__).resolve().parents[1]
TOPICS_FILE = REPO_ROOT / "config" / "topics.yaml"
CORPUS_ENV = "MONITOR_CORPUS"
DEFAULT_CORPUS = REPO_ROOT.parent / "shared" / "corpus"
POSTGRES_ENV = "MONITOR_BENCH_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
# Variables the benchmarks read themselves; every other MONITOR_* one is dropped (see below).
_OWN_VARIABLES = (CORPUS_ENV, "MONITOR_BENCH_", "MONITOR_TEST_")
_CONTENT_TYPES = {
    "rss": "application/rss+xml",
    "atom": "application/atom+xml",
    "json": "application/feed+json",
}


@dataclass(frozen=True, slots=True)
class CorpusFeed:
    """One captured feed document of the corpus."""

    name: str
    path: Path
    format: str
    title: str
    size: int
    items: int

    @property
    def content_type(self) -> str:
        """The Content-Type its kind of document is served with (no charset: the XML says)."""
        return _CONTENT_TYPES.get(self.format, "application/xml")

    def read(self) -> bytes:
        """The document's bytes."""
        return self.path.read_bytes()


@dataclass(frozen=True, slots=True)
class Corpus:
    """The captured feeds, read in place (never copied into the project)."""

    root: Path
    feeds: tuple[CorpusFeed, ...]

    @property
    def total_bytes(self) -> int:
        """The size of all documents together."""
        return sum(feed.size for feed in self.feeds)


def corpus_location() -> Path:
    """Where the corpus is looked for: ``$MONITOR_CORPUS`` or ``../shared/corpus``."""
    configured = os.environ.get(CORPUS_ENV)
    return Path(configured).expanduser() if configured else DEFAULT_CORPUS


def corpus_missing() -> str:
    """The message printed when a benchmark that needs the corpus cannot find it."""
    return (
        f"skipped: no feed corpus at {corpus_location()} "
        f"(set {CORPUS_ENV} to the directory holding feeds/ and INDEX.tsv)"
    )


@cache
def find_corpus() -> Corpus | None:
    """The corpus, or None when it is not there."""
    root = corpus_location()
    directory = root / "feeds" if (root / "feeds").is_dir() else root
    if not directory.is_dir():
        return None
    index = _read_index(root / "INDEX.tsv")
    feeds = []
    for path in sorted(directory.iterdir()):
        if not path.is_file() or path.name.startswith(".") or path.name == "INDEX.tsv":
            continue
        kind, items, title = index.get(path.name, (_sniff_format(path), 0, ""))
        feeds.append(CorpusFeed(path.name, path, kind, title, path.stat().st_size, items))
    return Corpus(root, tuple(feeds)) if feeds else None


def _read_index(path: Path) -> dict[str, tuple[str, int, str]]:
    """``INDEX.tsv``: file, bytes, format, items, title -> (format, items, title) by file."""
    if not path.is_file():
        return {}
    index = {}
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        columns = [*line.split("\t"), "", "", "", ""]
        if columns[0] and columns[2]:
            items = int(columns[3]) if columns[3].isdigit() else 0
            index[columns[0]] = (columns[2], items, columns[4])
    return index


def _sniff_format(path: Path) -> str:
    with path.open("rb") as handle:
        head = handle.read(1024).lstrip()
    if head.startswith(b"{"):
        return "json"
    return "atom" if b"<feed" in head else "rss"


def isolate_environment() -> None:
    """Drop MONITOR_* settings from the shell, so no benchmark touches a configured database.

    Also keep any HTTP proxy away from the feed server on 127.0.0.1.
    """
    for name in list(os.environ):
        if name.startswith("MONITOR_") and not name.startswith(_OWN_VARIABLES):
            del os.environ[name]
    for name in ("NO_PROXY", "no_proxy"):
        current = os.environ.get(name, "")
        os.environ[name] = ",".join(filter(None, [current, "127.0.0.1", "localhost"]))


def postgres_url() -> str:
    """The PostgreSQL server benchmarks may create a schema in."""
    return os.environ.get(POSTGRES_ENV) or DEFAULT_POSTGRES_URL


def _admin_engine() -> Engine:
    return create_engine(
        postgres_url(), isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )


@cache
def postgres_unavailable() -> str | None:
    """Why PostgreSQL cannot be used (None when it can)."""
    engine = _admin_engine()
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        return f"PostgreSQL at {postgres_url()} not reachable ({reason}); skipped"
    finally:
        engine.dispose()
    return None


@contextlib.contextmanager
def postgres_schema(prefix: str) -> Iterator[str]:
    """A URL whose search path is a fresh schema, dropped afterwards."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine()
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    base = postgres_url()
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextlib.contextmanager
def fresh_databases(prefix: str) -> Iterator[list[tuple[str, str]]]:
    """(label, URL) of an empty SQLite file and, when reachable, an empty PostgreSQL schema."""
    with contextlib.ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=prefix)))
        databases = [("sqlite", f"sqlite:///{directory / 'monitor.db'}")]
        if postgres_unavailable() is None:
            databases.append(("postgresql", stack.enter_context(postgres_schema(prefix))))
        yield databases


def peak_rss_mb() -> float:
    """The most memory this process has held so far, in MB (ru_maxrss is in KB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def progress(message: str) -> None:
    """Say on stderr what is running now, so a long run shows where it is."""
    print(f"... {message}", file=sys.stderr, flush=True)


def rate(count: float, seconds: float) -> float | None:
    """``count`` per second, or None when nothing was timed."""
    return count / seconds if seconds > 0 else None


Value = int | float | str | None


@dataclass(slots=True)
class Row:
    """One figure, measured for each variant of a table."""

    label: str
    unit: str
    values: list[Value]


@dataclass(slots=True)
class Table:
    """A benchmark's figures: one column per variant (a database, a parser, a topic set)."""

    title: str
    variants: list[str]
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, label: str, unit: str, *values: Value) -> None:
        """Append a row; give one value per variant."""
        self.rows.append(Row(label, unit, list(values)))


def skipped(title: str, reason: str) -> Table:
    """A table with no figures, only the reason it has none."""
    return Table(title, [], notes=[reason])


def format_value(value: Value) -> str:
    """A figure as text: thousands separators, and fewer decimals the bigger it is."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return f"{value:,}"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if magnitude >= 1 else f"{value:.3f}"


class Clock:
    """Wall time since it was started, with ``time.perf_counter``."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def seconds(self) -> float:
        """Seconds since the clock started."""
        return time.perf_counter() - self.started
