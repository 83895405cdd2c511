"""Hostile article pages on 127.0.0.1, all behind one feed: each ends in a recorded reason, its
article keeps its feed text, the poll and the other articles go on, memory stays bounded."""

from __future__ import annotations

import os
import re
import tracemalloc
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from monitor.ingest.refresh import RefreshStatus
from monitor.models import Article, ArticlePage, PageStatus, utcnow
from monitor.operations import open_database, sync_config
from monitor.pages.run import PageResult
from tests.pages.conftest import poll_with_pages
from tests.utils.articles import teaser_feed
from tests.utils.config import ConfigWriter
from tests.utils.feedserver import FeedServer, running_feed_server
from tests.utils.smtpserver import free_port

PROSE = "<p>" + "Investigators traced the influence campaign to servers abroad. " * 12 + "</p>"
GOOD = f"<html><head><title>Good</title></head><body><article>{PROSE * 3}</article></body></html>"
RUSSIAN = "<p>" + "Иностранные кибергруппы атаковали серверы избирательной комиссии. " * 8 + "</p>"
CP1251 = (
    f"<html><head><title>Выборы</title></head><body><article>{RUSSIAN * 3}</article></body></html>"
)
CONSENT = (
    "<html><body><div class='cmp'><h2>We value your privacy</h2><p>We and our partners use "
    "cookies and process personal data. Accept all, Reject all, or Manage options.</p></div>"
    "</body></html>"
)
NESTED = "<html><body>" + "<div>" * 100_000 + "x" + "</div>" * 100_000 + "</body></html>"
MB = 1 << 20


def gzip_bomb(size: int) -> bytes:
    """gzip that inflates to ``size`` zero bytes."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(MB)
    return b"".join([*(packer.compress(block) for _ in range(size // MB)), packer.flush()])


@dataclass(frozen=True)
class Case:
    """A hostile page: how the site serves it, and how its turn must end."""

    path: str
    route: dict[str, object] | None  # None: the site has no such page (404)
    status: PageStatus
    reason: str  # a regular expression the recorded reason matches ("" for a stored page)
    other_host: bool = False  # served from 127.0.0.2, a site of its own
    attempts: int = 1
    address: str = ""  # the item links here instead (a port nobody listens on)


CASES = [
    Case(
        "/big",
        {"body": b"<html>" + b" " * (30 * MB), "content_type": "text/html"},
        PageStatus.FAILED,
        r"31,457,286 bytes exceeds the 5,000,000 byte cap",
    ),
    Case(
        "/big-chunked",
        {"body": b"<html>" + b"a" * (30 * MB), "content_type": "text/html", "chunk_size": MB},
        PageStatus.FAILED,
        r"exceeds the 5,000,000 byte cap",
    ),
    Case(
        "/bomb",
        {
            "body": gzip_bomb(1 << 30),
            "content_type": "text/html",
            "headers": {"Content-Encoding": "gzip"},
        },
        PageStatus.FAILED,
        r"exceeds the 5,000,000 byte cap",
    ),
    Case(
        "/drip",
        {"body": GOOD.encode(), "content_type": "text/html", "chunk_size": 16, "chunk_delay": 0.2},
        PageStatus.PENDING,
        r"no complete answer within 2 s",
    ),
    Case(
        "/metadata",
        {
            "body": b"",
            "status": 302,
            "validators": False,
            "headers": {"Location": "http://169.254.169.254/latest/meta-data/"},
        },
        PageStatus.FAILED,
        r"redirect to http://169\.254\.169\.254.*link-local",
    ),
    Case(
        "/nested",
        {"body": NESTED.encode(), "content_type": "text/html"},
        PageStatus.PENDING,
        r"too little article text",
    ),
    Case(
        "/report.pdf",
        {"body": b"%PDF-1.7\n" + bytes(5000), "content_type": "application/pdf"},
        PageStatus.FAILED,
        r"not an HTML page: application/pdf",
    ),
    Case(
        "/pdf-as-html",
        {"body": b"%PDF-1.7\n" + bytes(5000), "content_type": "text/html"},
        PageStatus.FAILED,
        r"not an HTML page: a PDF document",
    ),
    Case(
        "/photo",
        {"body": b"\x89PNG\r\n\x1a\n" + bytes(5000), "content_type": "image/png"},
        PageStatus.FAILED,
        r"not an HTML page: image/png",
    ),
    Case(
        "/consent",
        {"body": CONSENT.encode(), "content_type": "text/html"},
        PageStatus.PENDING,
        r"consent or paywall",
    ),
    Case("/gone-missing", None, PageStatus.PENDING, r"HTTP 404"),
    # A refused connection may pass: retried (the address guard's refusal is not).
    Case(
        "/closed", None, PageStatus.PENDING, r"cannot connect", address=f"127.0.0.1:{free_port()}"
    ),
    Case(
        "/busy",
        {
            "body": b"slow down",
            "status": 429,
            "content_type": "text/plain",
            "headers": {"Retry-After": "3600"},
        },
        PageStatus.PENDING,
        r"HTTP 429",
        other_host=True,
    ),
    # The same site's next page waits for the hour it asked for, without an attempt.
    Case(
        "/busy-next",
        {"body": GOOD.encode(), "content_type": "text/html"},
        PageStatus.PENDING,
        "",
        other_host=True,
        attempts=0,
    ),
    Case(
        "/cp1251",
        {"body": CP1251.encode("cp1251"), "content_type": "text/html"},
        PageStatus.DONE,
        "",
    ),
    Case(
        "/good",
        {"body": GOOD.encode(), "content_type": "text/html; charset=utf-8"},
        PageStatus.DONE,
        "",
    ),
]


@dataclass
class Outcome:
    """What one poll of the hostile site left behind."""

    started: datetime
    feed_status: RefreshStatus
    results: dict[str, PageResult]
    pages: dict[str, ArticlePage]
    articles: dict[str, Article]
    peak_bytes: int


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    """One feed linking to every case, polled once with pages, on a SQLite file."""
    directory = tmp_path_factory.mktemp("hostile")
    with running_feed_server() as server, running_feed_server("127.0.0.2") as other:
        yield _poll_hostile_site(server, other, directory)


def _poll_hostile_site(server: FeedServer, other: FeedServer, directory: Path) -> Outcome:
    items = []
    for case in CASES:
        site = other if case.other_host else server
        if case.route is not None:
            site.add(case.path, **case.route)  # type: ignore[arg-type]
        link = f"http://{case.address}{case.path}" if case.address else site.url(case.path)
        items.append((link, f"Item {case.path}", f"Teaser of {case.path}."))
    feed = server.add("/hostile.rss", teaser_feed(iter(items)))
    config = ConfigWriter(
        directory / "config",
        database_url=f"sqlite:///{directory}/m.db",
        outbox=directory / "outbox",
    )
    config.feeds = [feed]
    # Paced, so that a site's second page starts after its first one's answer (the 429).
    config.pages = {"enabled": "true", "per_host_interval": '"0.3s"', "max_bytes": "5000000"}
    previous = os.environ.get("MONITOR_FETCH_TIMEOUT")
    os.environ["MONITOR_FETCH_TIMEOUT"] = "2s"
    try:
        settings = config.settings()
    finally:
        if previous is None:
            del os.environ["MONITOR_FETCH_TIMEOUT"]
    engine = open_database(settings)
    started = utcnow()
    sync_config(engine, settings, now=started)
    tracemalloc.start()
    try:
        polled, results = poll_with_pages(engine, settings, workers=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    with Session(engine) as session:
        pages = {_path(row.url): row for row in session.exec(select(ArticlePage))}
        articles = {_path(a.url): a for a in session.exec(select(Article))}
    engine.dispose()
    by_path = {_path(result.url): result for result in results}
    return Outcome(started, polled[0].status, by_path, pages, articles, peak)


def _path(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def test_the_poll_goes_on_and_memory_stays_bounded(hostile: Outcome) -> None:
    assert hostile.feed_status is RefreshStatus.UPDATED
    # Every page had its turn, those of the other site too (its next page was put back).
    assert set(hostile.results) == {case.path for case in CASES}
    # A 30 MB page, a chunked one and a 1 GiB bomb were all refused: the cap bounds what is held.
    assert hostile.peak_bytes < 40 * MB


@pytest.mark.parametrize("case", CASES, ids=[case.path for case in CASES])
def test_each_hostile_page_ends_in_a_recorded_reason(hostile: Outcome, case: Case) -> None:
    page = hostile.pages[case.path]
    article = hostile.articles[case.path]
    assert page.status == case.status, page.reason
    assert page.attempts == case.attempts
    assert article.summary == f"Teaser of {case.path}."  # the feed's text is kept
    if case.status is PageStatus.DONE:
        assert page.reason is None
        assert len(article.body) > 200
        return
    if not case.reason:  # put back, untried
        assert page.reason is None
        assert page.next_attempt_at >= hostile.started + timedelta(seconds=3500)
        return
    assert page.reason is not None
    assert re.search(case.reason, page.reason), page.reason
    assert article.body == ""
    assert hostile.results[case.path].reason == page.reason
    if case.status is PageStatus.PENDING:  # retried later, after a backoff
        assert page.next_attempt_at >= hostile.started + timedelta(minutes=9)


def test_a_cp1251_page_without_charset_reads_right(hostile: Outcome) -> None:
    assert "кибергруппы атаковали серверы" in hostile.articles["/cp1251"].body


def test_retry_after_is_honoured_for_a_page(hostile: Outcome) -> None:
    page = hostile.pages["/busy"]
    assert page.http_status == 429
    assert page.next_attempt_at >= hostile.started + timedelta(seconds=3600)
