"""The channels part of the subscribers page: add a webhook (its secret shown once), send it a
test message through a real receiver, disable, enable and end it; refused URLs say why."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import html5lib
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from monitor.models import Channel
from monitor.settings import ChannelsSettings
from tests.utils.hookserver import HookServer, running_hook_server
from tests.web.site import Site, add_admin, make_app, sign_in, web_settings


@pytest.fixture
def hooks() -> Iterator[HookServer]:
    with running_hook_server() as server:
        yield server


@pytest.fixture
def open_site(engine: Engine, tmp_path: Path) -> Iterator[Site]:
    add_admin(engine)
    settings = web_settings(tmp_path)
    settings.channels = ChannelsSettings(allow_networks=["127.0.0.0/8"])
    with TestClient(make_app(engine, settings)) as client:
        assert sign_in(client).status_code == 303
        yield Site(client, engine)


def test_add_test_disable_enable_and_end_a_channel(open_site: Site, hooks: HookServer) -> None:
    url = hooks.url("/hooks/T0KEN-abcdef")
    added = open_site.post("/subscribers/channels", {
        "email": "bob@example.org", "url": url, "name": "desk", "priority": "high",
        "frequency": "instant"})  # fmt: skip
    page = open_site.client.get("/subscribers").text
    tested = open_site.post("/subscribers/channels/1/test", {})
    disabled = open_site.post("/subscribers/channels/1/disable", {})
    enabled = open_site.post("/subscribers/channels/1/enable", {})
    ended = open_site.post("/subscribers/channels/1/end", {})

    assert added.status_code == 200, added.text
    shown = f"http://127.0.0.1:{hooks.port}/…"
    assert f"Channel 1 of bob@example.org: {shown}." in added.text
    assert "Its signing secret, shown this once (keep it now): whsec_" in added.text
    html5lib.HTMLParser(strict=True).parse(page)
    assert "T0KEN" not in page
    assert "whsec_" not in page
    assert f"desk: {shown}" in page
    assert "Test message sent to channel 1: answered 200 in" in tested.text
    [received] = hooks.requests_to("/hooks/T0KEN-abcdef")
    assert received.json()["type"] == "test"
    assert "disabled: disabled on the web" in disabled.text
    assert "Channel 1 enabled." in enabled.text
    assert "Channel 1 ended." in ended.text
    with Session(open_site.engine) as session:
        [channel] = session.exec(select(Channel)).all()
    assert (channel.priority, channel.ended_at is not None) == ("high", True)


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("https://10.1.2.3/hook", "connection to 10.1.2.3 refused: a private address"),
        ("mqtt://broker/topic", "mqtt:// is not supported"),
    ],
)
def test_a_refused_channel_says_why_and_adds_nothing(open_site: Site, url: str, error: str) -> None:
    response = open_site.post("/subscribers/channels", {"email": "bob@example.org", "url": url,
                                                        "frequency": "instant"})  # fmt: skip

    assert response.status_code == 400
    assert error in response.text
    with Session(open_site.engine) as session:
        assert session.exec(select(Channel)).first() is None


def test_channel_forms_need_the_csrf_token(open_site: Site) -> None:
    response = open_site.client.post("/subscribers/channels", data={"email": "b@example.org",
                                                                   "url": "http://x/"})  # fmt: skip
    assert response.status_code == 403
