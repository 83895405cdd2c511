"""The API pages with a cursor: /api/articles and the backtest walk newest first to the end over
more than 200 matches, with no article repeated or skipped, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from monitor.models import Article
from tests.utils.factories import add_article
from tests.web.test_api import AUTH, NOW, api_app

ARTICLES = 230
# Every fifth article is about the weather; the rest match "election": 184 matches.
MATCHES = ARTICLES - ARTICLES // 5


@pytest.fixture
def archive(engine: Engine) -> Engine:
    """230 articles over the last day, three at a time sharing one first-seen instant (a tie
    the cursor must break by id)."""
    with Session(engine) as session, session.begin():
        for n in range(ARTICLES):
            seen = NOW - timedelta(minutes=5 * (n // 3) + 1)
            title = f"Weather report {n}" if n % 5 == 0 else f"Election night {n}"
            add_article(session, title, seen=seen)
    return engine


@pytest.fixture
def client(archive: Engine, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(api_app(archive, tmp_path)) as client:
        yield client


def newest_first(engine: Engine, word: str = "") -> list[int]:
    """The ids of the stored articles (whose title holds ``word``), newest first."""
    with Session(engine) as session:
        rows = session.exec(
            select(Article.id, Article.title).order_by(
                col(Article.first_seen_at).desc(), col(Article.id).desc()
            )
        ).all()
    return [i or 0 for i, title in rows if word.lower() in title.lower()]


def walk(fetch: Any, key: str) -> tuple[list[int], list[dict[str, Any]]]:
    """Every page ``fetch(cursor)`` answers, from the first to the last: ids and bodies."""
    ids: list[int] = []
    bodies: list[dict[str, Any]] = []
    cursor = None
    for _ in range(ARTICLES + 1):  # a bound, so a cursor that never ends fails the test
        response = fetch(cursor)
        assert response.status_code == 200, response.text
        body = response.json()
        bodies.append(body)
        ids += [item["id" if key == "articles" else "article_id"] for item in body[key]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids, bodies
    raise AssertionError("the pages never ended")


@pytest.mark.parametrize("limit", [1, 7, 50, 229, 230, 1000])
def test_articles_page_to_the_end(client: TestClient, archive: Engine, limit: int) -> None:
    def fetch(cursor: str | None) -> Any:
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        return client.get("/api/articles", params=params, headers=AUTH)

    ids, bodies = walk(fetch, "articles")

    assert ids == newest_first(archive)
    assert len(set(ids)) == ARTICLES
    assert len(bodies) == -(-ARTICLES // limit)
    assert all(len(body["articles"]) == limit for body in bodies[:-1])


@pytest.mark.parametrize("limit", [13, 200, 201, 1000])
def test_backtest_pages_to_the_end(client: TestClient, archive: Engine, limit: int) -> None:
    def fetch(cursor: str | None) -> Any:
        body: dict[str, Any] = {"query": "election", "since": "2d", "limit": limit}
        if cursor is not None:
            body["cursor"] = cursor
        return client.post("/api/topics/backtest", json=body, headers=AUTH)

    ids, bodies = walk(fetch, "samples")

    assert ids == newest_first(archive, "election")
    assert len(ids) == len(set(ids)) == MATCHES
    first = bodies[0]
    assert (first["scanned"], first["total"]) == (ARTICLES, MATCHES)
    # A later page counts what is left: the matches older than its cursor.
    assert [body["total"] for body in bodies] == [MATCHES - limit * n for n in range(len(bodies))]


def test_two_pages_are_the_newest_articles(client: TestClient, archive: Engine) -> None:
    first = client.get("/api/articles", params={"limit": 100}, headers=AUTH).json()
    second = client.get(
        "/api/articles", params={"limit": 100, "cursor": first["next_cursor"]}, headers=AUTH
    ).json()

    assert [a["id"] for a in first["articles"] + second["articles"]] == newest_first(archive)[:200]


@pytest.mark.parametrize(
    ("method", "path", "options"),
    [
        ("GET", "/api/articles?cursor=bm9wZQ", {}),
        ("GET", "/api/articles?cursor=%00", {}),
        ("POST", "/api/topics/backtest", {"json": {"query": "election", "cursor": "x.y"}}),
    ],
)
def test_a_foreign_cursor_is_a_422(
    client: TestClient, method: str, path: str, options: dict[str, Any]
) -> None:
    response = client.request(method, path, headers=AUTH, **options)

    assert response.status_code == 422, response.text
    assert response.json()["error"].startswith("cursor: ")


@pytest.mark.parametrize(
    ("method", "path", "options"),
    [
        ("GET", "/api/articles?limit=1001", {}),
        ("POST", "/api/topics/backtest", {"json": {"query": "election", "limit": 1001}}),
    ],
)
def test_a_page_holds_at_most_1000(
    client: TestClient, method: str, path: str, options: dict[str, Any]
) -> None:
    response = client.request(method, path, headers=AUTH, **options)

    assert response.status_code == 422, response.text
    assert "limit" in response.json()["error"]
