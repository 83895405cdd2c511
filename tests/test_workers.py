"""Several ``monitor run`` workers on one PostgreSQL database share the feeds, each polled once.

Three real worker processes poll feeds from a real HTTP server on 127.0.0.1 that counts the
requests to every URL and learns from the User-Agent which worker sent each. One test checks
that every due feed is fetched exactly once per due period; the other kills a worker with
SIGKILL while it holds leases and checks that the others take its feeds over once they expire.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, update
from sqlalchemy.exc import ProgrammingError
from sqlmodel import Session, col, select

from monitor.db import create_db_engine
from monitor.models import Article, Feed, utcnow
from tests.utils.config import ConfigWriter
from tests.utils.feedserver import FeedServer

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
ROOT = Path(__file__).resolve().parents[1]
WORKERS = ("w1", "w2", "w3")
ITEMS = 3
postgres_only = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


def feed_body(number: int) -> bytes:
    """An RSS document with ``ITEMS`` items found in no other feed."""
    items = "".join(
        f"<item><title>Report {number}-{i}</title><link>https://news.example/{number}/{i}</link>"
        f"<guid>https://news.example/{number}/{i}</guid>"
        f"<pubDate>Mon, 09 Sep 2024 0{i}:00:00 GMT</pubDate></item>"
        for i in range(ITEMS)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {number}</title>'
        f"<link>https://news.example/{number}</link>{items}</channel></rss>"
    ).encode()


class Worker:
    """A ``monitor run`` process named ``name`` (its worker id and User-Agent)."""

    def __init__(self, name: str, config: Path) -> None:
        self.name = name
        env = {
            **os.environ,
            "MONITOR_SCHEDULE_WORKER_ID": name,
            "MONITOR_FETCH_USER_AGENT": f"monitor-test {name}",
            "MONITOR_FETCH_CONCURRENCY": "5",
            # Every feed comes from 127.0.0.1: one host, allowed as many fetches as anyone.
            "MONITOR_FETCH_PER_HOST": "5",
            "MONITOR_FETCH_PARSE_PROCESSES": "0",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "--config", str(config), "run"],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=ROOT, env=env,
        )  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def log(self) -> str:
        return f"--- {self.name} ---\n" + "".join(self.lines[-40:])


@contextmanager
def running_workers(config: Path) -> Iterator[dict[str, Worker]]:
    """Three workers started together on one configuration; killed if still running at the end."""
    workers = {name: Worker(name, config) for name in WORKERS}
    try:
        yield workers
    finally:
        for worker in workers.values():
            if worker.process.poll() is None:
                worker.process.kill()
            worker.process.wait()


def wait_until(
    condition: Callable[[], bool], what: str, workers: dict[str, Worker], timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except ProgrammingError:
            pass  # the workers have not created the tables yet
        if all(worker.process.poll() is not None for worker in workers.values()):
            break
        time.sleep(0.1)
    logs = "\n".join(worker.log() for worker in workers.values())
    raise AssertionError(f"not within {timeout}s: {what}\n{logs}")


def checked_since(engine: Engine, since: datetime) -> int:
    """Feeds whose last check started at ``since`` or later and whose lease has ended."""
    with Session(engine) as session:
        statement = select(func.count()).where(
            col(Feed.last_checked_at) >= since, col(Feed.lease_owner).is_(None)
        )
        return session.exec(statement).one()


def fetched_by(server: FeedServer) -> dict[str, Counter[str]]:
    """Requests per path, per worker (named in the User-Agent)."""
    counts: dict[str, Counter[str]] = {}
    for path, headers in list(server.requests):
        worker = headers.get("user-agent", "").removeprefix("monitor-test ")
        counts.setdefault(path, Counter())[worker] += 1
    return counts


def stored_articles(engine: Engine) -> tuple[int, int]:
    """How many articles are stored, and how many distinct links they have."""
    with Session(engine) as session:
        total = session.exec(select(func.count()).select_from(Article)).one()
        distinct = session.exec(select(func.count(func.distinct(Article.url)))).one()
    return total, distinct


@postgres_only
def test_three_workers_fetch_every_due_feed_exactly_once_per_period(
    config: ConfigWriter, feed_server: FeedServer, db_url: str
) -> None:
    count = 500
    config.feeds = [feed_server.add(f"/feeds/{n}.rss", feed_body(n)) for n in range(count)]
    config.extra_toml = '[schedule]\ntick = "1s"\nlease = "60s"\n'
    path = config.write()
    engine = create_db_engine(db_url)
    start = utcnow()

    with running_workers(path) as workers:
        wait_until(lambda: checked_since(engine, start) == count, "every feed checked", workers)
        time.sleep(1.5)  # one more tick at least: time enough for a duplicate fetch to show

        first = fetched_by(feed_server)
        assert {p: sum(c.values()) for p, c in first.items() if sum(c.values()) != 1} == {}
        assert len(first) == count
        shares = Counter(w for by_worker in first.values() for w in by_worker.elements())
        logs = "\n".join(worker.log() for worker in workers.values())
        assert set(shares) == set(WORKERS), f"the work was not shared: {shares}\n{logs}"
        assert stored_articles(engine) == (count * ITEMS, count * ITEMS)

        # The next due period: every feed due again at once; each is checked once more (a 304).
        again = utcnow()
        with Session(engine) as session, session.begin():
            session.execute(update(Feed).values(next_check_at=again))
        wait_until(lambda: checked_since(engine, again) == count, "every feed rechecked", workers)
        time.sleep(1.5)

        second = fetched_by(feed_server)
        assert {p: sum(c.values()) for p, c in second.items() if sum(c.values()) != 2} == {}
        assert feed_server.statuses[304] == count
        assert stored_articles(engine) == (count * ITEMS, count * ITEMS)

        for worker in workers.values():
            worker.process.send_signal(signal.SIGTERM)
        for worker in workers.values():
            assert worker.process.wait(timeout=30) == 0, worker.log()
            assert not any("Traceback" in line for line in worker.lines), worker.log()
    engine.dispose()


@postgres_only
def test_a_killed_workers_feeds_are_fetched_by_another_once_its_leases_expire(
    config: ConfigWriter, feed_server: FeedServer, db_url: str
) -> None:
    count = 45
    # Slow answers (about 1.2 s each), so that a worker is caught holding leases.
    config.feeds = [
        feed_server.add(f"/slow/{n}.rss", body, chunk_size=len(body) // 3 + 1, chunk_delay=0.4)
        for n, body in ((n, feed_body(n)) for n in range(count))
    ]
    config.extra_toml = '[schedule]\ntick = "1s"\nlease = "3s"\n'
    path = config.write()
    engine = create_db_engine(db_url)
    start = utcnow()

    def held_by_w1() -> list[Feed]:
        with Session(engine) as session:
            return list(session.exec(select(Feed).where(col(Feed.lease_owner) == "w1")))

    def w1_fetching() -> bool:
        """w1 holds leases and has requests out for some of those feeds."""
        asked = {path for path, by in fetched_by(feed_server).items() if by["w1"]}
        return any(feed.url.removeprefix(feed_server.url("")) in asked for feed in held_by_w1())

    with ExitStack() as stack:
        workers = stack.enter_context(running_workers(path))
        wait_until(w1_fetching, "w1 fetching feeds it holds leases on", workers)
        workers["w1"].process.send_signal(signal.SIGKILL)
        workers["w1"].process.wait(timeout=10)
        orphans = {feed.url.removeprefix(feed_server.url("")): feed for feed in held_by_w1()}
        assert orphans

        wait_until(lambda: checked_since(engine, start) == count, "every feed checked", workers)

    requests = fetched_by(feed_server)
    with Session(engine) as session:
        rows = {feed.url: feed for feed in session.exec(select(Feed))}
    for orphan_path, orphan in orphans.items():
        assert requests[orphan_path]["w1"] <= 1, orphan_path  # claimed, maybe not yet asked
        assert requests[orphan_path].keys() - {"w1"}, f"{orphan_path} never taken over"
        row = rows[orphan.url]
        assert orphan.lease_until is not None
        assert row.last_checked_at is not None
        assert row.last_checked_at >= orphan.lease_until, "taken over before the lease ran out"
    assert set(requests) == {f"/slow/{n}.rss" for n in range(count)}
    assert stored_articles(engine) == (count * ITEMS, count * ITEMS)
    engine.dispose()
