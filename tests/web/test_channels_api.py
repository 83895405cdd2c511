"""The API's channels: subscribe (the secret shown once), list (masked), end, test-send to a
real webhook receiver; the token required; bad input a clear 4xx."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from monitor.delivery.render import build_environment
from monitor.settings import ChannelsSettings, Settings, WebSettings
from monitor.web import create_app
from tests.utils.hookserver import HookServer, running_hook_server
from tests.web.test_api import AUTH, NOW, SECRET, TOKEN, resolve


@pytest.fixture
def hooks() -> Iterator[HookServer]:
    with running_hook_server() as server:
        yield server


@pytest.fixture
def client(engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        web=WebSettings(secret_key=SECRET, secret_key_file=tmp_path / "key", api_token=TOKEN),
        channels=ChannelsSettings(allow_networks=["127.0.0.0/8"], timeout=timedelta(seconds=2)),
    )
    app = create_app(settings, engine, env=build_environment(), clock=lambda: NOW, resolve=resolve)
    with TestClient(app) as client:
        yield client


def test_subscribe_list_test_and_end_a_webhook(client: TestClient, hooks: HookServer) -> None:
    url = hooks.url("/hooks/T0KEN-abcdef")
    made = client.post("/api/channels", headers=AUTH, json={
        "email": "bob@example.org", "url": url, "name": "desk", "frequency": "daily",
        "time": "09:00"})  # fmt: skip
    again = client.post("/api/channels", headers=AUTH, json={"email": "bob@example.org",
                                                              "url": url})  # fmt: skip
    listed = client.get("/api/channels", headers=AUTH)
    tested = client.post("/api/channels/1/test", headers=AUTH)
    ended = client.delete("/api/channels/1", headers=AUTH)

    assert made.status_code == 201, made.text
    body = made.json()
    assert body["created"] is True
    assert body["secret"].startswith("whsec_")
    shown = f"http://127.0.0.1:{hooks.port}/…"
    assert body["channel"]["url"] == shown
    assert body["channel"]["schedule"] == "daily 09:00"
    assert (again.status_code, again.json()["secret"]) == (200, None)
    assert "T0KEN" not in listed.text
    assert body["secret"] not in listed.text
    assert [c["name"] for c in listed.json()] == ["desk"]
    assert tested.json()["ok"] is True
    assert tested.json()["answer"].startswith("answered 200 in ")
    [received] = hooks.requests_to("/hooks/T0KEN-abcdef")
    assert received.json()["type"] == "test"
    assert ended.json() == {"ended": True}
    assert client.delete("/api/channels/1", headers=AUTH).json() == {"ended": False}


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("post", "/api/channels", {"email": "b@example.org", "url": "https://10.1.2.3/h"}, 422,
         "channel URL refused: https://10.1.2.3/…: connection to 10.1.2.3 refused: a private "
         "address (see channels.allow_networks)"),
        ("post", "/api/channels", {"email": "b@example.org", "url": "https://intranet.example/h"},
         422, "resolved to 10.9.8.7"),
        ("post", "/api/channels", {"email": "b@example.org", "url": "mailto://a:b@example.org"},
         422, "mailto:// is not supported"),
        ("post", "/api/channels", {"email": "b@example.org", "url": "http://127.0.0.1:9/x",
                                   "topics": ["nope"]}, 404, "no topic 'nope'"),
        ("post", "/api/channels", {"email": "nope", "url": "http://127.0.0.1:9/x"}, 422,
         "not an e-mail address"),
        ("delete", "/api/channels/42", None, 404, "no channel 42"),
        ("post", "/api/channels/42/test", None, 404, "no channel 42"),
    ],
)  # fmt: skip
def test_channel_mistakes_are_clear(
    client: TestClient,
    method: str,
    path: str,
    body: dict[str, object] | None,
    status: int,
    message: str,
) -> None:
    answer = client.request(method, path, headers=AUTH, json=body)

    assert answer.status_code == status, answer.text
    assert message in answer.json()["error"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/api/channels"), ("post", "/api/channels"), ("delete", "/api/channels/1"),
     ("post", "/api/channels/1/test")],
)  # fmt: skip
def test_channels_need_the_token(client: TestClient, method: str, path: str) -> None:
    answer = client.request(method, path, json={"email": "b@example.org", "url": "http://x/"})
    assert answer.status_code == 401
