"""Topic feeds: valid Atom 1.0, latest matches first, each story once, private topics' tokens."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import feedparser
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from monitor.models import Article, Match, Story, Topic
from monitor.web.atom import xml_text
from tests.utils.factories import add_article
from tests.web.test_api import NOW, Stored, api_app, store_sample

ATOM = "{http://www.w3.org/2005/Atom}"
HOSTILE = 'Ca$h <script>alert("x")</script> & \x0b\x01 ]]> "quotes" \U0001f600'


@pytest.fixture
def stored(engine: Engine) -> Stored:
    return store_sample(engine)


@pytest.fixture
def client(stored: Stored, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(api_app(stored.engine, tmp_path)) as client:
        yield client


def match(session: Session, article: Article, slug: str, *, minutes: int) -> None:
    topic = session.exec(select(Topic).where(Topic.slug == slug)).one()
    session.add(Match(article_id=article.id or 0, topic_id=topic.id or 0, topic_version=1,
                      score=1.0, terms=["election"], snippet=article.title,
                      matched_at=NOW + timedelta(minutes=minutes)))  # fmt: skip


def titles(body: bytes) -> list[str]:
    """Entry titles, read by an XML parser (so the document must be well formed)."""
    root = ET.fromstring(body)
    assert root.tag == f"{ATOM}feed"
    return [entry.findtext(f"{ATOM}title") or "" for entry in root.iter(f"{ATOM}entry")]


def test_a_public_topic_feed_is_valid_atom(client: TestClient) -> None:
    response = client.get("/topics/votes/feed.atom")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/atom+xml; charset=utf-8"
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo, parsed.bozo_exception
    assert parsed.version == "atom10"
    assert parsed.feed.title == "Votes · monitor"
    assert [e.title for e in parsed.entries] == ["A leak about the election", "Election night"]
    assert parsed.entries[0].link.startswith("https://news.example.com/")
    assert parsed.entries[0].tags[0].term == "votes"
    assert len({e.id for e in parsed.entries}) == 2
    assert parsed.feed.links[0].href == "https://monitor.example.net/topics/votes/feed.atom"
    assert "Matched: election" in parsed.entries[0].summary


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/topics/secret/feed.atom", 404),
        ("/topics/secret/feed.atom?token=wrong", 404),
        ("/topics/secret/feed.atom?token=feed-token-12", 404),
        ("/topics/nope/feed.atom", 404),
        ("/topics/nope/feed.atom?token=feed-token-123", 404),
        ("/topics/secret/feed.atom?token=feed-token-123", 200),
        ("/topics/votes/feed.atom?token=anything", 200),
    ],
)
def test_a_private_topic_feed_needs_its_token(client: TestClient, path: str, status: int) -> None:
    response = client.get(path)

    assert response.status_code == status
    if status == 404:
        # Unknown and private look the same: the answer does not say the topic exists.
        assert response.text == "no such topic feed\n"


def test_a_private_feed_is_kept_out_of_shared_caches(client: TestClient) -> None:
    response = client.get("/topics/secret/feed.atom?token=feed-token-123")

    assert response.headers["cache-control"] == "private, no-cache"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert titles(response.content) == ["A leak about the election"]


def test_each_story_appears_once(client: TestClient, stored: Stored) -> None:
    with Session(stored.engine) as session, session.begin():
        story = Story(title="Leak", first_seen_at=NOW, last_seen_at=NOW, outlet_count=3)
        session.add(story)
        session.flush()
        copies = [add_article(session, f"Leak copy {n}", seen=NOW + timedelta(minutes=n))
                  for n in range(3)]  # fmt: skip
        for minutes, copy in enumerate(copies):
            copy.story_id = story.id
            session.add(copy)
            match(session, copy, "votes", minutes=minutes)

    parsed = feedparser.parse(client.get("/topics/votes/feed.atom").content)

    # The story is told once, by its first copy, as of its latest match.
    assert [e.title for e in parsed.entries] == [
        "Leak copy 0",
        "A leak about the election",
        "Election night",
    ]
    assert parsed.entries[0].updated.startswith("2024-09-09T06:02")
    assert "and 2 more outlets" in parsed.entries[0].summary


def test_hostile_text_is_escaped(client: TestClient, stored: Stored) -> None:
    with Session(stored.engine) as session, session.begin():
        article = add_article(session, HOSTILE, seen=NOW, author=HOSTILE,
                              url='javascript:alert("x")')  # fmt: skip
        match(session, article, "votes", minutes=5)

    body = client.get("/topics/votes/feed.atom").content

    assert titles(body)[0] == xml_text(HOSTILE)
    assert b"<script>" not in body
    assert b"javascript:" not in body
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.bozo_exception


def test_an_unchanged_feed_is_not_sent_again(client: TestClient) -> None:
    first = client.get("/topics/votes/feed.atom")
    again = client.get("/topics/votes/feed.atom", headers={"If-None-Match": first.headers["etag"]})

    assert again.status_code == 304
    assert again.content == b""


def test_a_topic_without_matches_is_an_empty_valid_feed(client: TestClient, stored: Stored) -> None:
    with Session(stored.engine) as session, session.begin():
        session.add(Topic(slug="quiet", name="Quiet", query="nothing"))

    parsed = feedparser.parse(client.get("/topics/quiet/feed.atom").content)

    assert not parsed.bozo
    assert parsed.entries == []


@pytest.mark.parametrize(
    ("text", "expected"),
    # A vertical tab ends a line (monitor.untrusted): it becomes one rather than glue two words.
    [("plain", "plain"), ("a\x00b\x0bc\x1fd", "ab\ncd"), ("tab\tnew\nline", "tab\tnew\nline"),
     ("\ufffe\uffff", ""), ("emoji \U0001f600", "emoji \U0001f600"),
     ("gnp\u202e.exe", "gnp.exe"), ("\x1b[31mred\x1b[0m \x9b1mC1", "red C1")],
)  # fmt: skip
def test_xml_text_drops_what_xml_cannot_carry(text: str, expected: str) -> None:
    assert xml_text(text) == expected
