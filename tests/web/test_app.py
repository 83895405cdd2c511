"""The web app: one-click unsubscribe (RFC 8058) through a real server and the TestClient."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from monitor.delivery.render import build_environment
from monitor.delivery.tokens import make_unsubscribe_token
from monitor.models import Subscriber, Subscription
from monitor.settings import Settings, WebSettings
from monitor.web import create_app
from tests.utils.config import ConfigWriter
from tests.utils.factories import add_topic

SECRET = "web-test-secret"
NOW = datetime(2024, 9, 9, 6, 0, tzinfo=UTC)
ONE_CLICK = b"List-Unsubscribe=One-Click"
FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}


@dataclass
class Stored:
    """A subscriber to three topics; the token names the first two."""

    engine: Engine
    subscriber_id: int
    topic_ids: list[int]

    def token(self, secret: str = SECRET) -> str:
        return make_unsubscribe_token(
            secret, subscriber_id=self.subscriber_id, topic_ids=self.topic_ids[:2]
        )

    def ended(self) -> dict[int, datetime | None]:
        """Each subscribed topic and when its subscription ended (None: still active)."""
        with Session(self.engine) as session:
            rows = session.exec(
                select(Subscription).where(Subscription.subscriber_id == self.subscriber_id)
            ).all()
            return {row.topic_id: row.unsubscribed_at for row in rows}


@pytest.fixture
def stored(engine: Engine) -> Stored:
    with Session(engine) as session, session.begin():
        topics = [add_topic(session, slug, slug) for slug in ("votes", "trolls", "banks")]
        subscriber = Subscriber(email="ada@example.org", name="Ada")
        session.add(subscriber)
        session.flush()
        for topic in topics:
            session.add(Subscription(subscriber_id=subscriber.id or 0, topic_id=topic.id or 0))
        return Stored(engine, subscriber.id or 0, [t.id or 0 for t in topics])


def web_app(stored: Stored, tmp_path: Path) -> FastAPI:
    settings = Settings(web=WebSettings(secret_key=SECRET, secret_key_file=tmp_path / "key"))
    return create_app(settings, stored.engine, env=build_environment(), clock=lambda: NOW)


def altered(token: str) -> str:
    """The token with its payload swapped for another subscriber's, signature kept."""
    _payload, signature = token.split(".")
    forged = {"s": 999, "t": [1, 2]}
    text = base64.urlsafe_b64encode(json.dumps(forged, separators=(",", ":")).encode())
    return f"{text.decode().rstrip('=')}.{signature}"


def invalid_tokens(stored: Stored) -> dict[str, str]:
    token = stored.token()
    return {
        "altered payload": altered(token),
        "cut signature": token[:-3],
        "other key": stored.token("another-instance-key"),
        "no signature": token.split(".")[0],
        "garbage": "not-a-token",
    }


def test_get_shows_a_confirmation_form_and_changes_nothing(stored: Stored, tmp_path: Path) -> None:
    token = stored.token()
    with TestClient(web_app(stored, tmp_path)) as client:
        response = client.get(f"/unsubscribe/{token}")

    assert response.status_code == 200
    assert f'<form method="post" action="/unsubscribe/{token}">' in response.text
    assert "Trolls, Votes" in response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert set(stored.ended().values()) == {None}


@pytest.mark.parametrize(
    ("body", "headers"), [(ONE_CLICK, FORM_HEADERS), (b"", {})], ids=["one-click", "empty"]
)
def test_post_unsubscribes_the_topics_the_token_names(
    stored: Stored, tmp_path: Path, body: bytes, headers: dict[str, str]
) -> None:
    with TestClient(web_app(stored, tmp_path)) as client:
        first = client.post(f"/unsubscribe/{stored.token()}", headers=headers, content=body)
        again = client.post(f"/unsubscribe/{stored.token()}", headers=headers, content=body)

    assert first.status_code == 200
    assert "You will no longer receive digests about: Trolls, Votes." in first.text
    votes, trolls, banks = stored.topic_ids
    assert stored.ended() == {votes: NOW, trolls: NOW, banks: None}
    assert again.status_code == 200
    assert "already unsubscribed" in again.text


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    "kind", ["altered payload", "cut signature", "other key", "no signature", "garbage"]
)
def test_an_invalid_token_is_refused(
    stored: Stored, tmp_path: Path, method: str, kind: str
) -> None:
    token = invalid_tokens(stored)[kind]
    with TestClient(web_app(stored, tmp_path)) as client:
        response = client.request(
            method, f"/unsubscribe/{token}", headers=FORM_HEADERS, content=ONE_CLICK
        )

    assert response.status_code == 400
    assert "This unsubscribe link is not valid" in response.text
    assert "<form" not in response.text
    assert set(stored.ended().values()) == {None}


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """A real uvicorn server for ``app`` on a free 127.0.0.1 port; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(1000):
            if server.started or not thread.is_alive():
                break
            time.sleep(0.01)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def test_one_click_through_a_real_server(stored: Stored, tmp_path: Path) -> None:
    token = stored.token()
    votes, trolls, banks = stored.topic_ids
    with serving(web_app(stored, tmp_path)) as base, httpx.Client(base_url=base) as client:
        shown = client.get(f"/unsubscribe/{token}")
        after_get = stored.ended()
        forged = client.post(
            f"/unsubscribe/{altered(token)}", headers=FORM_HEADERS, content=ONE_CLICK
        )
        after_forged = stored.ended()
        done = client.post(f"/unsubscribe/{token}", headers=FORM_HEADERS, content=ONE_CLICK)

    assert shown.status_code == 200
    assert after_get == {votes: None, trolls: None, banks: None}
    assert forged.status_code == 400
    assert after_forged == {votes: None, trolls: None, banks: None}
    assert done.status_code == 200
    assert stored.ended() == {votes: NOW, trolls: NOW, banks: None}


@pytest.mark.slow
def test_monitor_web_serves_unsubscribe_links(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    writer = ConfigWriter(
        tmp_path / "config", database_url=f"sqlite:///{tmp_path / 'm.db'}", outbox=tmp_path / "out"
    )
    writer.extra_toml = f'[web]\nport = {port}\nsecret_key_file = "{tmp_path / "key"}"\n'
    path = writer.write()
    command = [sys.executable, "-m", "monitor", "--config", str(path), "web"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        response = None
        for _ in range(600):
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/unsubscribe/forged.token")
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                time.sleep(0.05)
        assert response is not None, "monitor web did not start listening"
        assert response.status_code == 400
        # The key was made on first use, private to its owner.
        assert (tmp_path / "key").stat().st_mode & 0o777 == 0o600
    finally:
        os.kill(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()
