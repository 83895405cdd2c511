"""``web.public_reads``: off (a new install's default), the JSON API's reads and the topics' Atom
feeds need the API token, a signed-in session or (Atom) the topic's own feed token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from monitor.models import Topic
from monitor.settings import WebSettings
from tests.web.site import add_admin, csrf_of
from tests.web.test_api import AUTH, Stored, api_app, store_sample
from tests.web.test_app import serving
from tests.web.test_sessions import http_client, http_sign_in

READS = [
    "/api/feeds",
    "/api/feeds/health",
    "/api/feeds/opml",
    "/api/topics",
    "/api/topics/votes",
    "/api/articles",
    "/api/articles/1",
    "/api/reports",
    "/api/reports/2024-09-08",
]


def test_a_new_install_keeps_reads_private() -> None:
    assert WebSettings().public_reads is False


@pytest.fixture
def stored(engine: Engine) -> Stored:
    stored = store_sample(engine)
    add_admin(engine)
    with Session(engine) as session, session.begin():
        votes = session.exec(select(Topic).where(Topic.slug == "votes")).one()
        votes.feed_token = "votes-feed-token"
        session.add(votes)
    return stored


@pytest.fixture
def closed(stored: Stored, tmp_path: Path) -> Iterator[str]:
    """A real server with reads closed (the default); its base URL."""
    # Plain http on 127.0.0.1: cookies without Secure, or the client would not send them back.
    app = api_app(stored.engine, tmp_path, public_reads=False, secure_cookies="never")
    with serving(app) as base:
        yield base


@pytest.mark.parametrize("path", READS)
def test_reads_need_the_token_or_a_session(closed: str, stored: Stored, path: str) -> None:
    path = path.replace("/articles/1", f"/articles/{stored.article_ids[0]}")
    with http_client(closed) as anonymous, http_client(closed) as browser:
        refused = anonymous.get(path)
        with_token = anonymous.get(path, headers=AUTH)
        with_wrong_token = anonymous.get(path, headers={"Authorization": "Bearer nope"})
        assert http_sign_in(browser).status_code == 303
        with_session = browser.get(path)

    assert refused.status_code == 401
    assert refused.json()["error"].startswith("reading needs Authorization: Bearer")
    assert refused.headers["www-authenticate"] == "Bearer"
    assert with_wrong_token.status_code == 401
    assert (with_token.status_code, with_session.status_code) == (200, 200)


def test_a_signed_in_admin_sees_private_topics_in_the_api(closed: str) -> None:
    with http_client(closed) as browser:
        assert http_sign_in(browser).status_code == 303
        slugs = [t["slug"] for t in browser.get("/api/topics").json()]

    assert slugs == ["secret", "votes"]


def test_a_signed_out_session_reads_nothing(closed: str) -> None:
    with http_client(closed) as browser:
        assert http_sign_in(browser).status_code == 303
        # The topics page (the dashboard needs a full stored report) carries the CSRF token.
        browser.post("/logout", data={"csrf_token": csrf_of(browser.get("/topics").text)})
        after = browser.get("/api/topics")

    assert after.status_code == 401


def test_open_reads_hide_private_topics(stored: Stored, tmp_path: Path) -> None:
    with TestClient(api_app(stored.engine, tmp_path, public_reads=True)) as client:
        topics = client.get("/api/topics")

    assert topics.status_code == 200
    assert [t["slug"] for t in topics.json()] == ["votes"]


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        # no credential at all: 401 whether the topic exists, is private, or does not exist
        ("/topics/votes/feed.atom", {}, 401),
        ("/topics/secret/feed.atom", {}, 401),
        ("/topics/nope/feed.atom", {}, 401),
        # a topic's own feed token opens its feed, public or private; another token nothing
        ("/topics/votes/feed.atom?token=votes-feed-token", {}, 200),
        ("/topics/secret/feed.atom?token=feed-token-123", {}, 200),
        ("/topics/votes/feed.atom?token=feed-token-123", {}, 404),
        ("/topics/secret/feed.atom?token=votes-feed-token", {}, 404),
        ("/topics/nope/feed.atom?token=votes-feed-token", {}, 404),
        # the API token opens every feed
        ("/topics/votes/feed.atom", AUTH, 200),
        ("/topics/secret/feed.atom", AUTH, 200),
        ("/topics/votes/feed.atom", {"Authorization": "Bearer nope"}, 401),
    ],
)
def test_atom_feeds_need_a_token_or_a_session(
    closed: str, path: str, headers: dict[str, str], status: int
) -> None:
    with http_client(closed) as client:
        response = client.get(path, headers=headers)

    assert response.status_code == status
    if status == 200:
        # Opened by a credential: no shared cache may keep it and hand it to others.
        assert response.headers["cache-control"] == "private, no-cache"
        assert response.headers["referrer-policy"] == "no-referrer"


def test_a_signed_in_admin_reads_every_atom_feed(closed: str) -> None:
    with http_client(closed) as browser:
        assert http_sign_in(browser).status_code == 303
        statuses = [browser.get(f"/topics/{s}/feed.atom").status_code for s in ("votes", "secret")]

    assert statuses == [200, 200]


def test_open_reads_serve_public_feeds_to_shared_caches(stored: Stored, tmp_path: Path) -> None:
    with TestClient(api_app(stored.engine, tmp_path, public_reads=True)) as client:
        public = client.get("/topics/votes/feed.atom")
        private = client.get("/topics/secret/feed.atom")

    assert public.status_code == 200
    assert public.headers["cache-control"] == "public, max-age=300"
    assert private.status_code == 404
