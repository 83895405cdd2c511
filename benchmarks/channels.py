"""``channels``: plan and send 500 instant alerts of 5 stories each to channels on 127.0.0.1.

Each of 500 subscribers has one channel (a signed webhook, or an Apprise ``json://`` target) on
a receiver in a child process (so it does not share this process's interpreter lock) that
answers 200. Planning is ``plan_due_digests`` (one delivery per channel with its items, in the
outbox on a SQLite file); sending is ``send_due_deliveries``: claim with leases, load the
digest, render the payload or the chat message, sign, POST through the guarded client, mark
sent, ``channels.concurrency`` channels at a time. Rates are wall time, end to end.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import tempfile
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from pathlib import Path

from sqlmodel import Session

from benchmarks.common import Table, peak_rss_mb, progress, rate
from monitor.db import create_db_engine, upgrade_database
from monitor.delivery.channels.targets import check_channel_url
from monitor.delivery.dispatch import plan_due_digests, send_due_deliveries
from monitor.delivery.mailer import FileTransport
from monitor.delivery.render import build_environment
from monitor.models import Article, Channel, Feed, Match, Subscriber, Topic
from monitor.settings import Settings

TITLE = "channels: plan and send 500 instant alerts of 5 stories each to 127.0.0.1"
CHANNELS = 500
STORIES = 5
NOW = datetime(2024, 9, 9, 6, 0, tzinfo=UTC)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class _Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
        self.server.count += 1  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(connection: Connection) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    server.daemon_threads = True
    server.count = 0  # type: ignore[attr-defined]
    connection.send(server.server_address[1])
    server.timeout = 0.2
    while not connection.poll():
        server.handle_request()
    connection.send(server.count)  # type: ignore[attr-defined]


def _world(directory: Path, url_of: str) -> tuple[Settings, str]:
    url = f"sqlite:///{directory / 'bench.db'}"
    engine = create_db_engine(url)
    upgrade_database(engine)
    with Session(engine) as session, session.begin():
        feed = Feed(url="https://news.example.com/feed", title="Example News")
        topic = Topic(slug="election-interference", name="Election interference",
                      query="election")  # fmt: skip
        session.add_all([feed, topic])
        session.flush()
        for n in range(STORIES):
            article = Article(key_hash=f"{n:064d}", url=f"https://news.example.com/{n}",
                              feed_id=feed.id or 0, title=f"Election interference story {n}",
                              summary="What happened.", first_seen_at=NOW - timedelta(minutes=5),
                              content_hash=f"{n:064d}")  # fmt: skip
            session.add(article)
            session.flush()
            session.add(Match(article_id=article.id or 0, topic_id=topic.id or 0,
                              topic_version=1, score=1.0, terms=["election"],
                              snippet="election interference", matched_at=NOW))  # fmt: skip
        for n in range(CHANNELS):
            subscriber = Subscriber(email=f"s{n}@example.org", created_at=NOW - timedelta(days=1))
            session.add(subscriber)
            session.flush()
            target = check_channel_url(url_of.format(n=n), None)
            session.add(Channel(subscriber_id=subscriber.id or 0, kind=target.kind,
                                url=target.url, url_hash=target.url_hash,
                                shown_url=target.shown_url, secret=SECRET,
                                topic_ids=[topic.id or 0], created_at=NOW - timedelta(days=1),
                                updated_at=NOW))  # fmt: skip
    engine.dispose()
    settings = Settings.model_validate(
        {"database": {"url": url}, "channels": {"allow_networks": ["127.0.0.0/8"]},
         "web": {"secret_key": "k" * 32}, "mail": {"outbox_dir": str(directory / "out")}}
    )  # fmt: skip
    return settings, url


def _measure(kind: str, template: str) -> tuple[float, float, int, int]:
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(child,))
    server.start()
    port = parent.recv()
    try:
        with tempfile.TemporaryDirectory() as directory:
            settings, url = _world(Path(directory), template.format(port=port, n="{n}"))
            engine = create_db_engine(url)
            started = time.perf_counter()
            planned = plan_due_digests(engine, settings, now=NOW)
            planning = time.perf_counter() - started
            env = build_environment(None)
            started = time.perf_counter()
            report = asyncio.run(
                send_due_deliveries(
                    engine,
                    settings,
                    FileTransport(Path(directory)),
                    env,
                    now=NOW + timedelta(seconds=1),
                )
            )
            sending = time.perf_counter() - started
            engine.dispose()
    finally:
        parent.send("stop")
        received = parent.recv()
        server.join(timeout=10)
    assert len(planned) == CHANNELS, kind
    assert len(report.sent_channels) == CHANNELS, report.failed[:3] + report.retrying[:3]
    return planning, sending, len(report.sent_channels), received


def run() -> list[Table]:
    """Plan and send the alerts to webhooks, then to Apprise json:// targets."""
    table = Table(TITLE, ["webhook (signed)", "apprise json://"])
    results = []
    for kind, template in (
        ("webhook", "http://127.0.0.1:{port}/hook/{n}"),
        ("apprise", "json://127.0.0.1:{port}/hook/{n}"),
    ):
        progress(f"channels: {CHANNELS} {kind} deliveries")
        results.append(_measure(kind, template))
    table.add("deliveries planned", "per s", *(rate(CHANNELS, r[0]) for r in results))
    table.add("deliveries sent, end to end", "per s", *(rate(r[2], r[1]) for r in results))
    table.add("requests the receiver answered", "", *(r[3] for r in results))
    table.add("peak memory (this process)", "MB", peak_rss_mb(), None)
    table.notes.append(
        "SQLite file; channels.concurrency 8; sending includes claiming with leases, loading "
        "each digest, rendering (JSON, or a Markdown chat message), signing, the POST and the mark."
    )
    return [table]
