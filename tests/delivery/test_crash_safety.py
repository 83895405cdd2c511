"""A sender killed with SIGKILL at the worst moments loses nothing when it is started again.

Each test runs ``monitor digest send`` as a real process that kills itself at a failpoint
(``MONITOR_FAILPOINT``, see monitor/failpoints.py), then runs it again on the same database and
the same SMTP server. Only a kill between the server's acceptance and the sent mark may repeat
a message, and then with the same Message-ID, so the receiving side can recognise it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from monitor.db import create_db_engine
from monitor.failpoints import FAILPOINT_ENV, FAILPOINTS
from monitor.models import Delivery, DeliveryStatus, Match, Subscriber, Topic, utcnow
from tests.utils.config import ConfigWriter
from tests.utils.factories import add_article
from tests.utils.smtpserver import SmtpServer

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
# Short, so the restarted sender may take over what the killed one had leased.
LEASE = "1s"
ARTICLES = {
    "Election interference probe opens": "election-interference",
    "Troll farm exposed in the Baltics": "russian-disinformation",
}
# Who gets what: the analyst follows both topics, Bob only election interference.
EXPECTED = {
    "analyst@example.org": set(ARTICLES),
    "bob@example.org": {"Election interference probe opens"},
}


def run_monitor(config: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python -m monitor --config CONFIG ARGS`` with extra environment, however it ends."""
    return subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config), *args],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env={**os.environ, **env},
    )  # fmt: skip


def add_matched_articles(engine: Engine) -> None:
    """Articles seen an hour ago, each matched by its topic, as a poll would leave them."""
    seen = utcnow() - timedelta(hours=1)
    with Session(engine) as session, session.begin():
        topics = {t.slug: t.id or 0 for t in session.exec(select(Topic)).all()}
        for title, slug in ARTICLES.items():
            article = add_article(session, title, seen=seen, summary="What happened.")
            session.add(
                Match(
                    article_id=article.id or 0,
                    topic_id=topics[slug],
                    topic_version=1,
                    score=1.0,
                    matched_at=seen,
                )
            )


def deliveries(engine: Engine) -> list[Delivery]:
    with Session(engine) as session:
        return list(session.exec(select(Delivery).order_by(col(Delivery.id))).all())


def wait_for_leases_to_expire(engine: Engine) -> None:
    """Let the killed sender's leases run out, as a restarted worker would find them."""
    leases = [d.claimed_until for d in deliveries(engine) if d.claimed_until is not None]
    if leases:
        time.sleep(max(0.0, (max(leases) - utcnow()).total_seconds()) + 0.2)


def titles_by_recipient(smtp: SmtpServer) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for received in smtp.messages:
        body = received.message.get_body(("plain",))
        assert body is not None
        text = body.get_content()
        found.setdefault(received.recipients[0], set()).update(t for t in ARTICLES if t in text)
    return found


@pytest.mark.parametrize(
    ("failpoint", "killed_state", "repeated"),
    [
        # Nothing of the digest was committed: the restart plans it again from scratch.
        ("before-outbox-commit", [], 0),
        # Both deliveries committed and leased by the dead sender, nothing sent.
        ("before-smtp", [DeliveryStatus.PENDING] * 2, 0),
        # The first message went out, the sender died before marking it: it goes again.
        ("after-smtp", [DeliveryStatus.PENDING] * 2, 1),
    ],
)
def test_sender_killed_at_a_failpoint_loses_nothing(
    config: ConfigWriter,
    smtp_server: SmtpServer,
    db_url: str,
    failpoint: str,
    killed_state: list[DeliveryStatus],
    repeated: int,
) -> None:
    assert failpoint in FAILPOINTS
    config.smtp_port = smtp_server.port
    config.subscribers.append({"email": "bob@example.org", "timezone": "UTC",
                               "topics": ["election-interference"]})  # fmt: skip
    path = config.write()
    env = {"MONITOR_MAIL_LEASE": LEASE}
    assert run_monitor(path, "init", env=env).returncode == 0
    engine = create_db_engine(db_url)
    try:
        add_matched_articles(engine)

        killed = run_monitor(path, "digest", "send", env={**env, FAILPOINT_ENV: failpoint})

        assert killed.returncode == -signal.SIGKILL, killed.stderr
        assert [d.status for d in deliveries(engine)] == killed_state
        assert len(smtp_server.messages) == repeated
        wait_for_leases_to_expire(engine)

        restarted = run_monitor(path, "digest", "send", env=env)
        again = run_monitor(path, "digest", "send", env=env)

        assert restarted.returncode == 0, restarted.stderr
        assert (again.returncode, again.stdout) == (0, "nothing new to send\n"), again.stderr
        assert titles_by_recipient(smtp_server) == EXPECTED
        final = deliveries(engine)
    finally:
        engine.dispose()
    assert {d.status for d in final} <= {DeliveryStatus.SENT, DeliveryStatus.EMPTY}
    sent = {d.message_id for d in final if d.status == DeliveryStatus.SENT}
    received = Counter(smtp_server.handler.message_ids())
    # Every message carries its delivery's Message-ID; only the after-smtp kill repeats one.
    assert set(received) == sent
    assert sorted(received.values()) == sorted([1] * (2 - repeated) + [2] * repeated)
    assert len(smtp_server.messages) == 2 + repeated


def test_leases_of_a_killed_sender_are_shown_and_released_at_once(
    config: ConfigWriter, smtp_server: SmtpServer, db_url: str
) -> None:
    config.smtp_port = smtp_server.port
    path = config.write()
    assert run_monitor(path, "init", env={}).returncode == 0
    engine = create_db_engine(db_url)
    try:
        add_matched_articles(engine)
        # The default lease, ten minutes: nobody waits for it to run out here.
        killed = run_monitor(path, "digest", "send", env={FAILPOINT_ENV: "before-smtp"})
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        [held] = deliveries(engine)
        assert held.claimed_until is not None
        assert held.claimed_until > utcnow()

        listed = run_monitor(path, "deliveries", "list", "--pending", env={})
        assert f"{held.claimed_by} until {held.claimed_until:%Y-%m-%d %H:%M} UTC" in listed.stdout

        restarted = run_monitor(path, "digest", "send", env={})

        assert restarted.returncode == 0, restarted.stderr
        assert restarted.stdout == "sent to analyst@example.org via SMTP 127.0.0.1:" + (
            f"{smtp_server.port}\n"
        )
        assert f"delivery leases released worker={held.claimed_by} deliveries=1" in (
            restarted.stderr
        )
        assert [d.status for d in deliveries(engine)] == [DeliveryStatus.SENT]
        assert smtp_server.handler.message_ids() == [held.message_id]
    finally:
        engine.dispose()


def test_a_lease_held_by_a_live_sender_is_said_to_wait(
    config: ConfigWriter, smtp_server: SmtpServer, db_url: str
) -> None:
    config.smtp_port = smtp_server.port
    path = config.write()
    assert run_monitor(path, "init", env={}).returncode == 0
    engine = create_db_engine(db_url)
    # This test's own process stands for a sender still at work.
    holder = f"{socket.gethostname()[:60]}:{os.getpid()}:cafe0001"
    until = utcnow() + timedelta(minutes=10)
    try:
        add_matched_articles(engine)
        with Session(engine) as session, session.begin():
            subscriber = session.exec(select(Subscriber)).one()
            session.add(
                Delivery(subscriber_id=subscriber.id or 0, period_key="manual:held",
                         message_id="<held@example.net>", next_attempt_at=utcnow(),
                         created_at=utcnow(), claimed_by=holder, claimed_until=until)
            )  # fmt: skip

        again = run_monitor(path, "digest", "send", env={})

        assert again.returncode == 0, again.stderr
        assert "sent to analyst@example.org" in again.stdout
        assert (
            f"waiting 1 delivery leased to {holder} until {until:%Y-%m-%d %H:%M} UTC"
            in again.stderr
        )
        assert len(smtp_server.messages) == 1
    finally:
        engine.dispose()
