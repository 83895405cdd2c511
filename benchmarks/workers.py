"""``workers``: the corpus, repeated under distinct URLs, polled by 1, 2 and 3 ``monitor run``
worker processes sharing one PostgreSQL database.

Each run gets a fresh schema. The feeds are added first and kept not due until every worker is
up (``monitor running`` in its log); then all are made due at once and the clock runs until the
last one is checked and its lease released. Each worker names itself in its User-Agent, so the
feed server (in this process) counts who fetched what, and any feed fetched twice.

Options come from the environment, as for the other benchmarks: ``MONITOR_BENCH_WORKERS_FEEDS``
(feeds in all, default 800) and ``MONITOR_BENCH_WORKERS`` (worker counts, default ``1,2,3``).
``python -m benchmarks workers --json PATH`` also writes the table as JSON.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, func, update
from sqlmodel import Session, col, select

from benchmarks.common import (
    REPO_ROOT,
    TOPICS_FILE,
    Clock,
    Corpus,
    Table,
    corpus_missing,
    find_corpus,
    postgres_schema,
    postgres_unavailable,
    progress,
    rate,
    skipped,
)
from monitor.models import Article, Feed, utcnow
from monitor.operations import open_database, sync_config
from monitor.settings import load_settings
from monitor.sources.opml import OpmlFeed, write_opml
from tests.utils.feedserver import FeedServer, running_feed_server

TITLE = "workers: the corpus repeated, polled by several `monitor run` workers on PostgreSQL"
FEEDS_ENV = "MONITOR_BENCH_WORKERS_FEEDS"
COUNTS_ENV = "MONITOR_BENCH_WORKERS"
DEFAULT_FEEDS = 800
DEFAULT_COUNTS = (1, 2, 3)
USER_AGENT = "monitor-bench"
STARTUP_TIMEOUT = 120.0
POLL_TIMEOUT = 600.0


@dataclass(slots=True)
class WorkersFigures:
    """What one run of ``workers`` processes over the feeds measured."""

    workers: int
    feeds: int = 0
    seconds: float = 0.0
    articles: int = 0
    fetches: int = 0
    duplicates: int = 0
    shares: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)


def feed_count() -> int:
    """Feeds to serve: ``$MONITOR_BENCH_WORKERS_FEEDS`` or 800."""
    return int(os.environ.get(FEEDS_ENV) or DEFAULT_FEEDS)


def worker_counts() -> list[int]:
    """How many workers each run starts: ``$MONITOR_BENCH_WORKERS`` (``1,2,3``) or those."""
    configured = os.environ.get(COUNTS_ENV)
    if not configured:
        return list(DEFAULT_COUNTS)
    return [int(part) for part in configured.split(",") if part.strip()]


def serve_corpus(server: FeedServer, corpus: Corpus, total: int) -> list[str]:
    """Serve the corpus round after round, each under its own path, until ``total`` URLs."""
    urls = []
    for n in range(total):
        feed = corpus.feeds[n % len(corpus.feeds)]
        path = f"/r{n // len(corpus.feeds)}/{feed.name}"
        urls.append(server.add(path, feed.read(), content_type=feed.content_type))
    return urls


def _write_config(directory: Path, database_url: str, urls: list[str]) -> Path:
    (directory / "feeds.opml").write_bytes(write_opml(OpmlFeed(url) for url in urls))
    config = directory / "monitor.toml"
    config.write_text(
        f"[database]\nurl = {json.dumps(database_url)}\n"
        # Every feed is on 127.0.0.1: the per-host limit is lifted to the global one.
        '[fetch]\nallow_networks = ["127.0.0.0/8"]\nper_host = 20\n'
        '[schedule]\ntick = "1s"\n'
        '[mail]\ntransport = "files"\n'
        f"outbox_dir = {json.dumps(str(directory / 'outbox'))}\n"
        f'[files]\nfeeds = "feeds.opml"\ntopics = {json.dumps(str(TOPICS_FILE))}\n'
        'subscriptions = "absent.yaml"\n',
        encoding="utf-8",
    )
    return config


class _Worker:
    """A ``monitor run`` process whose log is kept, to know when it is up and why it died."""

    def __init__(self, name: str, config: Path) -> None:
        env = {
            **os.environ,
            "MONITOR_SCHEDULE_WORKER_ID": name,
            "MONITOR_FETCH_USER_AGENT": f"{USER_AGENT} {name}",
        }
        self.name = name
        self.process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "--config", str(config), "run"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
            env=env,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def running(self) -> bool:
        """Whether the service has started its scheduler; raise if the process ended."""
        if self.process.poll() is not None:
            raise RuntimeError(f"worker {self.name} exited:\n{''.join(self.lines[-20:])}")
        return any("monitor running" in line for line in self.lines)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not stop within half a minute."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _wait(condition: Callable[[], bool], what: str, timeout: float, workers: list[_Worker]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        for worker in workers:
            if worker.process.poll() is not None:
                raise RuntimeError(f"worker {worker.name} exited:\n{''.join(worker.lines[-20:])}")
        time.sleep(0.05)
    raise TimeoutError(f"not within {timeout:g}s: {what}")


def _checked(engine: Engine, since: datetime) -> int:
    with Session(engine) as session:
        statement = select(func.count()).where(
            col(Feed.last_checked_at) >= since, col(Feed.lease_owner).is_(None)
        )
        return session.exec(statement).one()


def run_workers(count: int, server: FeedServer, urls: list[str]) -> WorkersFigures:
    """Start ``count`` workers on a fresh schema, make every feed due, time until all are done."""
    figures = WorkersFigures(workers=count, feeds=len(urls))
    with (
        postgres_schema("bench_workers") as database_url,
        tempfile.TemporaryDirectory(prefix="monitor-bench-workers-") as directory,
    ):
        settings = load_settings(_write_config(Path(directory), database_url, urls))
        engine = open_database(settings)
        sync_config(engine, settings, now=utcnow())
        with Session(engine) as session, session.begin():
            # Not due until every worker is up, so that none gets a head start.
            session.execute(update(Feed).values(next_check_at=utcnow() + timedelta(days=1)))
        server.requests.clear()
        server.statuses.clear()
        workers = [_Worker(f"w{n + 1}", settings.config_dir / "monitor.toml") for n in range(count)]
        try:
            _wait(lambda: all(w.running() for w in workers), "workers up", STARTUP_TIMEOUT, workers)
            started = utcnow()
            with Session(engine) as session, session.begin():
                session.execute(update(Feed).values(next_check_at=started))
            clock = Clock()
            _wait(
                lambda: _checked(engine, started) == len(urls),
                "every feed checked",
                POLL_TIMEOUT,
                workers,
            )
            figures.seconds = clock.seconds()
        finally:
            for worker in workers:
                worker.stop()
        with Session(engine) as session:
            figures.articles = session.exec(select(func.count()).select_from(Article)).one()
        engine.dispose()
    paths = Counter(path for path, _ in server.requests)
    figures.fetches = sum(paths.values())
    figures.duplicates = sum(n - 1 for n in paths.values() if n > 1)
    agents = Counter(
        h.get("user-agent", "").removeprefix(USER_AGENT).strip() for _, h in server.requests
    )
    figures.shares = dict(sorted(agents.items()))
    figures.statuses = {str(status): n for status, n in sorted(server.statuses.items())}
    return figures


def measure(counts: list[int], total: int) -> tuple[Corpus | None, list[WorkersFigures]]:
    """Serve ``total`` feeds from the corpus and run each worker count over them."""
    corpus = find_corpus()
    if corpus is None:
        return None, []
    results = []
    with running_feed_server() as server:
        urls = serve_corpus(server, corpus, total)
        for count in counts:
            progress(f"workers: {count} worker(s) over {len(urls)} feeds on PostgreSQL")
            results.append(run_workers(count, server, urls))
    return corpus, results


def tabulate(corpus: Corpus, results: list[WorkersFigures]) -> Table:
    """The figures as a table: one column per worker count."""
    table = Table(TITLE, [f"{f.workers} worker{'s' if f.workers > 1 else ''}" for f in results])
    table.add("feeds", "", *(f.feeds for f in results))
    table.add("wall time", "s", *(f.seconds for f in results))
    table.add("feeds", "feeds/s", *(rate(f.feeds, f.seconds) for f in results))
    table.add("articles stored", "", *(f.articles for f in results))
    table.add("articles", "articles/s", *(rate(f.articles, f.seconds) for f in results))
    table.add("fetches", "", *(f.fetches for f in results))
    table.add("duplicate fetches", "", *(f.duplicates for f in results))
    table.notes.append(
        f"{len(corpus.feeds)} corpus documents from {corpus.root}, served round after round "
        "under distinct paths: a later round's articles are copies of the first's (sightings, "
        "not new articles), yet each feed is still fetched, parsed and deduplicated"
    )
    table.notes.append(
        "clock: from making every feed due (all workers already up, schedule.tick 1s) "
        "until the last feed is checked and its lease released"
    )
    for f in results:
        shares = ", ".join(f"{name} {n}" for name, n in f.shares.items())
        table.notes.append(f"{f.workers} worker(s): fetched by {shares}; HTTP {f.statuses}")
    return table


def run() -> list[Table]:
    """Run 1, 2 and 3 workers (or ``$MONITOR_BENCH_WORKERS``) and tabulate the figures."""
    if find_corpus() is None:
        return [skipped(TITLE, corpus_missing())]
    if (reason := postgres_unavailable()) is not None:
        return [skipped(TITLE, reason)]
    corpus, results = measure(worker_counts(), feed_count())
    assert corpus is not None
    return [tabulate(corpus, results)]
