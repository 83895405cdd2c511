"""Security of the web UI: CSRF on every form, feed content shown as text, the address guard."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from monitor.models import Feed, Match, Subscription, Topic
from tests.utils.factories import add_article, add_topic
from tests.web.site import NOW, Site

SCRIPT = '<script>alert("x")</script><img src=x onerror=alert(1)>'

# Every state-changing form, with data that would change something if accepted.
FORMS = {
    "/feeds": {"url": "http://127.0.0.1:9/feed.xml"},
    "/topics": {"slug": "votes", "query": "election", "name": "Votes"},
    "/subscribers": {"email": "bob@example.org", "topic": "votes-seed", "frequency": "daily"},
    "/subscribers/unsubscribe": {"email": "bob@example.org", "topic": "votes-seed"},
    "/logout": {},
    "/inbox/review": {"topic": "votes-seed", "state": "flagged", "article": "1"},
}


@pytest.mark.parametrize("path", list(FORMS))
@pytest.mark.parametrize("token", [None, "forged"], ids=["no token", "wrong token"])
def test_a_form_without_the_csrf_token_is_refused(site: Site, path: str, token: str | None) -> None:
    with Session(site.engine) as session, session.begin():
        add_topic(session, "votes-seed", "vote")
    data = dict(FORMS[path])
    if token is not None:
        data["csrf_token"] = token
    before = _state(site)

    response = site.client.post(path, data=data, follow_redirects=False)

    assert response.status_code == 403
    assert "This form was refused" in response.text
    assert _state(site) == before
    assert site.client.get("/", follow_redirects=False).status_code == 200  # still signed in


def test_an_opml_upload_without_the_csrf_token_is_refused(site: Site) -> None:
    opml = b'<opml version="2.0"><body><outline xmlUrl="http://127.0.0.1:9/a.xml"/></body></opml>'
    response = site.client.post("/feeds/import", files={"file": ("f.opml", opml)})

    assert response.status_code == 403
    assert _state(site)[0] == 0


def test_the_sign_in_form_needs_the_csrf_token(site: Site) -> None:
    site.client.cookies.clear()
    response = site.client.post("/login", data={"username": "ada", "password": "x" * 12})

    assert response.status_code == 403


def _state(site: Site) -> tuple[int, int, list[str | None]]:
    with Session(site.engine) as session:
        feeds = len(session.exec(select(Feed)).all())
        topics = len(session.exec(select(Topic)).all())
        ended = [s.unsubscribed_at.isoformat() if s.unsubscribed_at else None
                 for s in session.exec(select(Subscription))]  # fmt: skip
    return feeds, topics, ended


def _hostile_article(site: Site) -> int:
    with Session(site.engine) as session, session.begin():
        session.add(Feed(url="http://127.0.0.1:9/evil.xml", title=SCRIPT, last_error=SCRIPT))
        session.flush()
        topic = add_topic(session, "alerts", "alert")
        article = add_article(session, f"alert {SCRIPT}", seen=NOW, summary=SCRIPT,
                              url="javascript:alert(1)", author=SCRIPT)  # fmt: skip
        session.add(Match(article_id=article.id or 0, topic_id=topic.id or 0, topic_version=1,
                          score=1.0, terms=["alert"], snippet=f"alert {SCRIPT}",
                          snippet_spans=[[0, 5]]))  # fmt: skip
        return article.id or 0


@pytest.mark.parametrize(
    "page",
    ["/feeds", "/articles/{id}", "/search?q=alert", "/topics/alerts", "/inbox/alerts/2024-09-09"],
)
def test_feed_content_shows_as_text(site: Site, page: str) -> None:
    article_id = _hostile_article(site)

    response = site.client.get(page.format(id=article_id))

    assert response.status_code == 200
    assert "<script>alert" not in response.text
    assert "<img src=x" not in response.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in response.text
    assert 'href="javascript:' not in response.text
    assert "script-src 'self'" in response.headers["content-security-policy"]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://10.0.0.1/feed.xml", "connection to 10.0.0.1 refused: a private address"),
        ("http://169.254.169.254/latest/meta-data/", "a link-local address (cloud metadata"),
        ("http://intranet.example/rss", "intranet.example (resolved to 10.1.2.3) refused"),
        ("http://[::ffff:10.0.0.1]/feed", "an IPv4-mapped IPv6 address"),
    ],
)
def test_a_feed_at_a_private_address_is_refused(site: Site, url: str, reason: str) -> None:
    response = site.post("/feeds", {"url": url, "title": "x"})

    assert response.status_code == 400
    assert "Refused:" in response.text
    assert reason in response.text
    assert _state(site)[0] == 0


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000/feed.xml", "http://news.example/feed", "http://unknown.example/"]
)
def test_allowed_feeds_are_added(site: Site, url: str) -> None:
    response = site.post("/feeds", {"url": url, "title": ""})

    assert response.status_code == 200
    assert f"Added {url}." in response.text
    with Session(site.engine) as session:
        assert [f.url for f in session.exec(select(Feed))] == [url]


def test_an_opml_import_applies_the_address_guard(site: Site) -> None:
    opml = b"""<?xml version="1.0"?><opml version="2.0"><head/><body>
      <outline text="World"><outline type="rss" text="Local" xmlUrl="http://127.0.0.1:8000/a.xml"/>
      <outline type="rss" text="Metadata" xmlUrl="http://169.254.169.254/feed"/></outline>
    </body></opml>"""

    response = site.post("/feeds/import", {}, files={"file": ("feeds.opml", opml, "text/xml")})

    assert response.status_code == 200
    assert "Imported: 1 added, 0 already there, 1 refused." in response.text
    assert "http://169.254.169.254/feed: connection to 169.254.169.254 refused" in response.text
    with Session(site.engine) as session:
        assert [(f.url, f.category) for f in session.exec(select(Feed))] == [
            ("http://127.0.0.1:8000/a.xml", "World")
        ]
