"""The JSON API: every endpoint, its authorisation, and bad input answered with a clear 4xx."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from monitor.delivery.render import build_environment
from monitor.models import Feed, Match, Report, Subscriber, Subscription, Topic
from monitor.settings import FetchSettings, Settings, WebSettings
from monitor.web import create_app
from monitor.web.api import MAX_OPML_BYTES
from tests.utils.factories import add_article, add_topic

SECRET = "api-test-secret"
TOKEN = "api-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NOW = datetime(2024, 9, 9, 6, 0, tzinfo=UTC)
OPML = b"""<?xml version="1.0"?>
<opml version="2.0"><head><title>t</title></head><body>
<outline text="World"><outline type="rss" text="A" xmlUrl="http://127.0.0.1:9/a.xml"/></outline>
<outline type="rss" text="B" xmlUrl="https://news.example.org/b.xml"/>
<outline type="rss" text="bad" xmlUrl="ftp://example.org/c"/>
<outline type="rss" text="private" xmlUrl="http://10.1.2.3/d.xml"/>
</body></opml>"""


@dataclass
class Stored:
    """Two topics (one private), three articles, a subscriber and a report."""

    engine: Engine
    article_ids: list[int]


def store_sample(engine: Engine) -> Stored:
    """The rows every API test starts from."""
    with Session(engine) as session, session.begin():
        votes = add_topic(session, "votes", "election")
        secret = add_topic(session, "secret", "leak")
        secret.private, secret.feed_token = True, "feed-token-123"
        session.add(secret)
        articles = [
            add_article(session, "Election night", seen=NOW - timedelta(hours=3)),
            add_article(session, "A leak about the election", seen=NOW - timedelta(hours=2)),
            add_article(session, "Weather", seen=NOW - timedelta(hours=1)),
        ]
        for article, topic in [(articles[0], votes), (articles[1], votes), (articles[1], secret)]:
            session.add(Match(article_id=article.id or 0, topic_id=topic.id or 0, topic_version=1,
                              score=1.0, terms=["election"], snippet=article.title,
                              matched_at=article.first_seen_at))  # fmt: skip
        subscriber = Subscriber(email="ada@example.org", timezone="Europe/Berlin")
        session.add(subscriber)
        session.flush()
        session.add(Subscription(subscriber_id=subscriber.id or 0, topic_id=votes.id or 0))
        session.add(Report(day=date(2024, 9, 8), timezone="UTC", generated_at=NOW,
                           payload={"schema_version": 1, "topics": []}))  # fmt: skip
        return Stored(engine, [a.id or 0 for a in articles])


def api_app(
    engine: Engine, tmp_path: Path, *, api_token: str = TOKEN, public_reads: bool = True,
    **web: Any,
) -> FastAPI:  # fmt: skip
    """The whole web app, with an API token and 127.0.0.0/8 allowed for feeds; reads open to
    anyone unless ``public_reads`` is False (the default of a new install)."""
    settings = Settings(
        web=WebSettings(secret_key=SECRET, secret_key_file=tmp_path / "key", api_token=api_token,
                        base_url="https://monitor.example.net", public_reads=public_reads, **web),
        fetch=FetchSettings(allow_networks=["127.0.0.0/8"]),
    )  # fmt: skip
    return create_app(settings, engine, env=build_environment(), clock=lambda: NOW, resolve=resolve)


def resolve(host: str) -> list[str]:
    """A resolver without DNS: two names, one public and one on a private network."""
    return {"news.example.org": ["93.184.215.14"], "intranet.example": ["10.9.8.7"]}.get(host, [])


@pytest.fixture
def stored(engine: Engine) -> Stored:
    return store_sample(engine)


@pytest.fixture
def client(stored: Stored, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(api_app(stored.engine, tmp_path)) as client:
        yield client


def assert_error(response: Any, status: int, fragment: str) -> None:
    """A JSON error of ``status`` whose message contains ``fragment``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["error"], str)
    assert fragment in body["error"], body


# --- reads ---------------------------------------------------------------------------------


def test_feeds_and_their_health_are_listed(client: TestClient) -> None:
    feeds = client.get("/api/feeds")
    health = client.get("/api/feeds/health")

    assert feeds.status_code == 200
    assert [f["url"] for f in feeds.json()] == ["https://news.example.com/feed.xml"]
    assert feeds.json()[0]["state"] == "active"
    assert health.status_code == 200
    assert [(h["url"], h["error_count"]) for h in health.json()] == [
        ("https://news.example.com/feed.xml", 0)
    ]


def test_opml_export_lists_every_feed(client: TestClient) -> None:
    response = client.get("/api/feeds/opml")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/x-opml")
    assert b'xmlUrl="https://news.example.com/feed.xml"' in response.content


@pytest.mark.parametrize(
    ("headers", "slugs"),
    [({}, ["votes"]), (AUTH, ["secret", "votes"])],
    ids=["anonymous", "with token"],
)
def test_private_topics_are_listed_only_with_the_token(
    client: TestClient, headers: dict[str, str], slugs: list[str]
) -> None:
    response = client.get("/api/topics", headers=headers)

    assert response.status_code == 200
    assert [t["slug"] for t in response.json()] == slugs
    assert all("feed_token" not in t for t in response.json())


def test_one_topic(client: TestClient) -> None:
    response = client.get("/api/topics/votes")

    assert response.status_code == 200
    assert response.json()["query"] == "election"
    assert response.json()["private"] is False


@pytest.mark.parametrize(
    ("query", "headers", "titles"),
    [
        ("", {}, ["Weather", "A leak about the election", "Election night"]),
        ("?topic=votes", {}, ["A leak about the election", "Election night"]),
        ("?since=90m", {}, ["Weather"]),
        ("?limit=1", {}, ["Weather"]),
        ("?topic=secret", AUTH, ["A leak about the election"]),
    ],
)
def test_articles_newest_first(
    client: TestClient, query: str, headers: dict[str, str], titles: list[str]
) -> None:
    response = client.get(f"/api/articles{query}", headers=headers)

    assert response.status_code == 200
    assert [a["title"] for a in response.json()["articles"]] == titles
    # Only ?limit=1 leaves articles for a next page.
    assert (response.json()["next_cursor"] is None) == ("limit" not in query)


@pytest.mark.parametrize(
    ("headers", "topics"), [({}, ["votes"]), (AUTH, ["secret", "votes"])], ids=["anon", "token"]
)
def test_one_article_with_its_matches(
    client: TestClient, stored: Stored, headers: dict[str, str], topics: list[str]
) -> None:
    response = client.get(f"/api/articles/{stored.article_ids[1]}", headers=headers)

    assert response.status_code == 200
    body = response.json()
    assert body["title"] == "A leak about the election"
    assert [m["topic"] for m in body["matches"]] == topics
    assert body["topics"] == topics
    assert body["matches"][0]["terms"] == ["election"]


def test_reports_are_listed_and_served(client: TestClient) -> None:
    listed = client.get("/api/reports")
    one = client.get("/api/reports/2024-09-08")

    assert listed.status_code == 200
    assert [r["day"] for r in listed.json()] == ["2024-09-08"]
    assert one.status_code == 200
    assert one.json()["payload"]["schema_version"] == 1


def test_the_openapi_schema_lists_every_endpoint(client: TestClient) -> None:
    response = client.get("/api/openapi.json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    assert set(paths) == {
        "/api/feeds", "/api/feeds/health", "/api/feeds/opml", "/api/topics",
        "/api/topics/validate", "/api/topics/backtest", "/api/topics/{slug}",
        "/api/subscriptions", "/api/articles", "/api/articles/{article_id}", "/api/reports",
        "/api/reports/{day}", "/api/channels", "/api/channels/{channel_id}",
        "/api/channels/{channel_id}/test", "/api/review", "/api/review/history",
    }  # fmt: skip
    assert not any(path.startswith(("/unsubscribe", "/manage")) for path in paths)


# --- writes --------------------------------------------------------------------------------


def test_adding_a_feed_twice_keeps_the_first(client: TestClient, stored: Stored) -> None:
    body = {"url": "http://127.0.0.1:9/world.rss", "title": "World"}
    first = client.post("/api/feeds", json=body, headers=AUTH)
    second = client.post("/api/feeds", json=body, headers=AUTH)

    assert (first.status_code, first.json()["created"]) == (201, True)
    assert (second.status_code, second.json()["created"]) == (200, False)
    with Session(stored.engine) as session:
        feed = session.exec(select(Feed).where(Feed.url == body["url"])).one()
    assert feed.title == "World"


def test_opml_import_adds_usable_feeds_and_lists_the_rest(
    client: TestClient, stored: Stored
) -> None:
    response = client.post(
        "/api/feeds/opml", content=OPML, headers={**AUTH, "Content-Type": "text/x-opml"}
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["added"] == ["http://127.0.0.1:9/a.xml", "https://news.example.org/b.xml"]
    assert len(body["rejected"]) == 2
    assert "10.1.2.3" in " ".join(body["rejected"])
    with Session(stored.engine) as session:
        world = session.exec(select(Feed).where(Feed.url == "http://127.0.0.1:9/a.xml")).one()
    assert world.category == "World"


def test_a_new_topic_is_tagged_at_once(client: TestClient, stored: Stored) -> None:
    response = client.post(
        "/api/topics",
        json={"slug": "weather", "query": "weather", "name": "Weather", "priority": "high"},
        headers=AUTH,
    )

    assert response.status_code == 201, response.text
    assert response.json()["priority"] == "high"
    with Session(stored.engine) as session:
        topic = session.exec(select(Topic).where(Topic.slug == "weather")).one()
        matched = session.exec(select(Match.article_id).where(Match.topic_id == topic.id)).all()
    assert matched == [stored.article_ids[2]]


@pytest.mark.parametrize(
    ("change", "version", "enabled"),
    [
        ({"query": "election OR weather"}, 2, True),
        ({"query": "ELECTION"}, 1, True),  # the same meaning is not a new version
        ({"enabled": False, "name": "Votes!"}, 1, False),
    ],
)
def test_editing_a_topic(
    client: TestClient, change: dict[str, Any], version: int, enabled: bool
) -> None:
    response = client.patch("/api/topics/votes", json=change, headers=AUTH)

    assert response.status_code == 200, response.text
    assert (response.json()["version"], response.json()["enabled"]) == (version, enabled)


def test_validation_reads_the_query_back(client: TestClient) -> None:
    response = client.post("/api/topics/validate", json={"query": "  election AND (russia*) "})

    assert response.status_code == 200
    assert response.json()["valid"] is True
    assert response.json()["query"] == "election AND (russia*)"


def test_backtest_counts_per_day_and_lists_the_newest(client: TestClient, stored: Stored) -> None:
    response = client.post(
        "/api/topics/backtest", json={"query": "election", "since": "1d"}, headers=AUTH
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["scanned"], body["total"]) == (3, 2)
    assert body["per_day"] == {"2024-09-09": 2}
    assert [s["article_id"] for s in body["samples"]] == stored.article_ids[1::-1]


def test_subscribe_list_and_unsubscribe(client: TestClient) -> None:
    subscribed = client.post(
        "/api/subscriptions",
        json={"email": "Bob@Example.ORG", "topics": ["votes", "secret"], "frequency": "weekly",
              "time": "07:30", "weekday": "fri", "timezone": "America/New_York"},
        headers=AUTH,
    )  # fmt: skip
    listed = client.get("/api/subscriptions?email=Bob@example.org", headers=AUTH)
    ended = client.delete("/api/subscriptions?email=Bob@example.org&topic=secret", headers=AUTH)
    after = client.get("/api/subscriptions?email=Bob@example.org", headers=AUTH)

    assert subscribed.status_code == 200, subscribed.text
    assert subscribed.json()["subscriber_added"] is True
    assert subscribed.json()["added"] == ["votes", "secret"]
    assert [(s["topic"], s["schedule"], s["timezone"]) for s in listed.json()] == [
        ("secret", "weekly fri 07:30", "America/New_York"),
        ("votes", "weekly fri 07:30", "America/New_York"),
    ]
    assert ended.json() == {"ended": 1}
    assert [(s["topic"], s["active"]) for s in after.json()] == [
        ("secret", False),
        ("votes", True),
    ]


# --- authorisation -------------------------------------------------------------------------

WRITES = [
    ("POST", "/api/feeds", {"json": {"url": "https://example.org/feed"}}),
    ("POST", "/api/feeds/opml", {"content": OPML}),
    ("POST", "/api/topics", {"json": {"slug": "new", "query": "x"}}),
    ("PATCH", "/api/topics/votes", {"json": {"name": "x"}}),
    ("POST", "/api/topics/backtest", {"json": {"query": "x"}}),
    ("GET", "/api/subscriptions", {}),
    ("POST", "/api/subscriptions", {"json": {"email": "a@example.org", "topics": ["votes"]}}),
    ("DELETE", "/api/subscriptions?email=ada@example.org", {}),
]


@pytest.mark.parametrize(("method", "path", "kwargs"), WRITES)
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}],
    ids=["none", "wrong", "not bearer"],
)
def test_writes_need_the_api_token(
    client: TestClient, method: str, path: str, kwargs: dict[str, Any], headers: dict[str, str]
) -> None:
    response = client.request(method, path, headers=headers, **kwargs)

    assert_error(response, 401, "Authorization: Bearer")
    assert response.headers["www-authenticate"] == "Bearer"


def test_without_a_configured_token_writes_are_off(stored: Stored, tmp_path: Path) -> None:
    with TestClient(api_app(stored.engine, tmp_path, api_token="")) as client:
        response = client.post("/api/feeds", json={"url": "https://x.org/f"}, headers=AUTH)

    assert_error(response, 401, "web.api_token is not set")


# --- bad input -----------------------------------------------------------------------------

BAD = [
    ("GET", "/api/topics/nope", {}, 404, "no topic 'nope'"),
    ("GET", "/api/topics/Not_A_Slug", {}, 422, "slug"),
    ("GET", "/api/articles?topic=nope", {}, 404, "no topic 'nope'"),
    ("GET", "/api/articles?limit=0", {}, 422, "limit"),
    ("GET", "/api/articles?limit=many", {}, 422, "limit"),
    ("GET", "/api/articles?since=forever", {}, 422, "not a duration"),
    ("GET", "/api/articles?since=400d", {}, 422, "at most 366d"),
    ("GET", "/api/articles?since=9999999999999999999w", {}, 422, "at most 366d"),
    ("GET", "/api/articles?since=%00", {}, 422, "not a duration"),
    ("GET", "/api/articles/12345", {}, 404, "no article 12345"),
    ("GET", "/api/articles/99999999999", {}, 422, "article_id"),
    ("GET", "/api/reports/2024-13-01", {}, 422, "day"),
    ("GET", "/api/reports/2020-01-01", {}, 404, "no report for 2020-01-01"),
    ("GET", "/api/reports?limit=0", {}, 422, "limit"),
    ("POST", "/api/topics/validate", {"json": {"query": '("a" OR b'}}, 422, "column"),
    ("POST", "/api/topics/validate", {"json": {"query": "NOT a"}}, 422, "none of its words"),
    ("POST", "/api/topics/validate", {"json": {"query": "a\x00b"}}, 422, "NUL"),
    ("POST", "/api/topics/validate", {"json": {"q": "a"}}, 422, "query"),
    ("POST", "/api/topics/validate",
     {"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 422, "JSON"),
    ("POST", "/api/topics/validate", {"content": b"query=a"}, 422, "valid dictionary"),
    ("POST", "/api/topics", {"json": {"slug": "x", "query": "(a"}}, 422, "parenthesis"),
    ("POST", "/api/topics", {"json": {"slug": "votes", "query": "a"}}, 422, "exists already"),
    ("POST", "/api/topics", {"json": {"slug": "Bad Slug", "query": "a"}}, 422, "slug"),
    ("POST", "/api/topics", {"json": {"slug": "x", "query": "a", "owner": 1}}, 422, "owner"),
    ("PATCH", "/api/topics/nope", {"json": {"name": "x"}}, 404, "no topic 'nope'"),
    ("PATCH", "/api/topics/votes", {"json": {"query": "a OR"}}, 422, "column"),
    ("PATCH", "/api/topics/votes", {"json": {"priority": "urgent"}}, 422, "priority"),
    ("POST", "/api/topics/backtest", {"json": {"query": "a", "since": "5y"}}, 422, "duration"),
    ("POST", "/api/topics/backtest", {"json": {"query": "a OR"}}, 422, "column"),
    ("POST", "/api/feeds", {"json": {"url": "not a url"}}, 422, "feed URL"),
    ("POST", "/api/feeds", {"json": {"url": "ftp://example.org/f"}}, 422, "http(s)"),
    ("POST", "/api/feeds", {"json": {"url": "http://10.0.0.1/f"}}, 422, "refused"),
    ("POST", "/api/feeds", {"json": {"url": "http://[::1]/f"}}, 422, "refused"),
    ("POST", "/api/feeds", {"json": {"url": "https://example.org/" + "é" * 1900}}, 422,
     "too long"),
    ("POST", "/api/feeds", {"json": {"url": "http://intranet.example/f"}}, 422, "10.9.8.7"),
    ("POST", "/api/feeds/opml", {"content": b"<opml><body>"}, 422, "not valid OPML"),
    ("POST", "/api/feeds/opml", {"content": b"<rss/>"}, 422, "not an OPML document"),
    ("POST", "/api/feeds/opml", {"content": b"\xff\xfe\x00"}, 422, "OPML"),
    ("POST", "/api/subscriptions", {"json": {"email": "ada@example.org", "topics": ["nope"]}},
     404, "no topic 'nope'"),
    ("POST", "/api/subscriptions", {"json": {"email": "not-mail", "topics": ["votes"]}},
     422, "not an e-mail address"),
    ("POST", "/api/subscriptions",
     {"json": {"email": "a@example.org", "topics": ["votes"], "timezone": "Mars/Base"}},
     422, "unknown time zone"),
    ("POST", "/api/subscriptions",
     {"json": {"email": "a@example.org", "topics": ["votes"], "time": "25:00"}}, 422, "time"),
    ("POST", "/api/subscriptions", {"json": {"email": "a@example.org", "topics": []}},
     422, "topics"),
    ("DELETE", "/api/subscriptions?email=nobody@example.org", {}, 404, "no subscriber"),
    ("DELETE", "/api/subscriptions?email=ada@example.org&topic=nope", {}, 404, "no topic"),
    ("GET", "/api/subscriptions?email=%00", {}, 422, "NUL"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "fragment"), BAD)
def test_bad_input_is_a_clear_4xx(
    client: TestClient, method: str, path: str, kwargs: dict[str, Any], status: int, fragment: str
) -> None:
    # The table's dicts are shared by both databases' runs: read them, never change them.
    options = {key: value for key, value in kwargs.items() if key != "headers"}
    headers = {**AUTH, **kwargs.get("headers", {})}
    response = client.request(method, path, headers=headers, **options)

    assert_error(response, status, fragment)


@pytest.mark.parametrize("path", ["/api/topics/secret", "/api/articles?topic=secret"])
def test_a_private_topic_is_unknown_without_the_token(client: TestClient, path: str) -> None:
    assert_error(client.get(path), 404, "no topic 'secret'")


def test_a_query_error_names_its_column(client: TestClient) -> None:
    query = '("election interference" OR meddl*) AND (Russia* OR Kremlin))'
    response = client.post("/api/topics/validate", json={"query": query})

    assert_error(response, 422, "unbalanced parenthesis at column 61")
    assert response.json()["column"] == 61


# --- oversize uploads ------------------------------------------------------------------------


def test_an_oversize_upload_is_refused_by_its_declared_length(client: TestClient) -> None:
    body = b" " * (MAX_OPML_BYTES + 1)
    response = client.post("/api/feeds/opml", content=body, headers=AUTH)

    assert_error(response, 413, f"over {MAX_OPML_BYTES} bytes")


def test_an_oversize_upload_is_refused_before_it_is_all_read(
    stored: Stored, tmp_path: Path
) -> None:
    app = api_app(stored.engine, tmp_path)
    chunk = b" " * (MAX_OPML_BYTES // 4)
    received: list[int] = []
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        # Chunked, no Content-Length: the limit must be enforced while reading.
        received.append(len(chunk))
        return {"type": "http.request", "body": chunk, "more_body": len(received) < 100}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/api/feeds/opml", "raw_path": b"/api/feeds/opml",
        "query_string": b"", "root_path": "", "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 1234),
        "headers": [(b"authorization", f"Bearer {TOKEN}".encode()), (b"host", b"testserver"),
                    (b"transfer-encoding", b"chunked")],
    }  # fmt: skip
    asyncio.run(app(scope, receive, send))

    assert sent[0]["status"] == 413
    assert b"over 1000000 bytes" in b"".join(m.get("body", b"") for m in sent)
    # Refused at the first chunk past the limit: the rest was never read.
    assert len(received) == 5
    with Session(stored.engine) as session:
        assert len(session.exec(select(Feed)).all()) == 1
