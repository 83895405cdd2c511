"""Article pages on the web: the article's text and where it came from, its page's status, the
feeds page's fetch_pages setting and failing sites, and the same in the JSON API."""

from __future__ import annotations

from datetime import timedelta

import html5lib
from sqlmodel import Session, select

from monitor.models import ArticlePage, Feed, FetchPages, PageStatus
from monitor.pages.store import store_body
from tests.utils.factories import add_article
from tests.web.site import NOW, Site

BODY = "First paragraph of the page, about <script>alert(1)</script> and more.\n\nSecond one."


def add_paged_article(site: Site, *, status: PageStatus = PageStatus.DONE) -> int:
    """An article with a teaser and, for a fetched page, the body extracted from it."""
    with Session(site.engine) as session, session.begin():
        article = add_article(
            session, "Probe widens", seen=NOW, summary="A teaser.", url="https://news.example/probe"
        )
        article_id = article.id or 0
        page = ArticlePage(
            article_id=article_id,
            url=article.url,
            host="news.example",
            status=status,
            attempts=1,
            next_attempt_at=NOW + timedelta(hours=1),
            created_at=NOW,
        )
        if status is PageStatus.DONE:
            page.fetched_at = NOW
            page.canonical_url = "https://news.example/probe-canonical"
            store_body(session, article_id=article_id, body=BODY, method="trafilatura")
        else:
            page.reason = "fetch: HTTP 403 Forbidden"
            page.last_attempt_at = NOW
        session.add(page)
    return article_id


def test_the_article_page_shows_the_body_and_its_source(site: Site) -> None:
    article_id = add_paged_article(site)

    response = site.client.get(f"/articles/{article_id}")

    assert response.status_code == 200
    html5lib.HTMLParser(strict=True).parse(response.text)
    assert "From the article&#39;s page, extracted by trafilatura" in response.text
    assert "Page: done, 1 attempt" in response.text
    assert "canonical https://news.example/probe-canonical" in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text  # text, never markup
    assert "<p>Second one.</p>" in response.text


def test_an_article_whose_page_failed_shows_why_and_keeps_the_teaser(site: Site) -> None:
    article_id = add_paged_article(site, status=PageStatus.PENDING)

    response = site.client.get(f"/articles/{article_id}")

    assert "From the feed" in response.text
    assert "fetch: HTTP 403 Forbidden" in response.text
    assert "next try" in response.text
    assert "<p>A teaser.</p>" in response.text


def test_the_feeds_page_sets_fetch_pages_and_lists_failing_sites(site: Site) -> None:
    add_paged_article(site, status=PageStatus.FAILED)
    with Session(site.engine) as session:
        feed = session.exec(select(Feed)).one()
    page = site.client.get("/feeds")
    assert 'name="fetch_pages"' in page.text
    html5lib.HTMLParser(strict=True).parse(page.text)
    assert "news.example" in page.text
    assert "fetch: HTTP 403 Forbidden" in page.text

    refused = site.client.post("/feeds/pages", data={"url": feed.url, "fetch_pages": "never"})
    assert refused.status_code == 403
    changed = site.post("/feeds/pages", {"url": feed.url, "fetch_pages": "never"})
    assert changed.status_code == 200
    bad = site.post("/feeds/pages", {"url": feed.url, "fetch_pages": "sometimes"})
    assert bad.status_code == 400
    assert "fetch_pages must be auto, always or never" in bad.text
    with Session(site.engine) as session:
        assert session.exec(select(Feed.fetch_pages)).one() == FetchPages.NEVER


def test_the_api_gives_the_body_and_the_page(site: Site) -> None:
    article_id = add_paged_article(site)

    data = site.client.get(f"/api/articles/{article_id}").json()

    assert data["body"] == BODY
    assert data["body_method"] == "trafilatura"
    assert data["text_source"] == "page"
    assert data["summary"] == "A teaser."
    assert data["page"]["status"] == "done"
    assert data["page"]["canonical_url"] == "https://news.example/probe-canonical"
    feeds = site.client.get("/api/feeds").json()
    assert feeds[0]["fetch_pages"] == "auto"
