"""A local news site: the 62 real pages behind a feed of one-sentence teasers, polled once."""

from __future__ import annotations

from sqlmodel import Session, col, select

from monitor.models import Article, ArticlePage, Match, PageStatus, Topic, utcnow
from monitor.operations import open_database, sync_config
from monitor.pages.run import PageOutcome
from tests.pages.conftest import NewsSite, poll_with_pages
from tests.utils.config import ConfigWriter

# Words that are in the bodies of some pages and in no teaser.
BODY_TOPICS = {
    "duvet-lung": "hypersensitivity pneumonitis",
    "plague": "Yersinia pestis",
}


def test_one_poll_gives_every_article_its_body_and_tags_on_body_words(
    config: ConfigWriter, news_site: NewsSite
) -> None:
    config.feeds = [news_site.feed_url]
    config.pages = {"enabled": "true", "per_host_interval": '"0s"'}
    config.topics += [
        {"slug": slug, "name": slug, "query": f'"{phrase}"'} for slug, phrase in BODY_TOPICS.items()
    ]
    settings = config.settings()
    engine = open_database(settings)
    sync_config(engine, settings, now=utcnow())

    polled, pages = poll_with_pages(engine, settings, workers=1)

    assert polled[0].new_articles == 62
    assert polled[0].matches == 0  # the teasers say none of it
    assert len(pages) == 62
    assert {result.outcome for result in pages} == {PageOutcome.STORED}
    teasers = {news_site.url_of(page): page.teaser for page in news_site.pages}
    with Session(engine) as session:
        articles = session.exec(select(Article)).all()
        assert len(articles) == 62
        for article in articles:
            assert len(article.body) > 200, article.url
            assert article.body_method in ("trafilatura", "readability")
            assert article.summary == teasers[article.url]  # the feed's text is kept as it was
        statuses = set(session.exec(select(ArticlePage.status)))
        assert statuses == {PageStatus.DONE}
        for slug, phrase in BODY_TOPICS.items():
            expected = {
                news_site.url_of(page)
                for page in news_site.pages
                if phrase.lower() in page.body.lower()
            }
            assert len(expected) == 2
            found = session.exec(
                select(Article.url, Match)
                .join(Match, col(Match.article_id) == Article.id)
                .join(Topic, col(Topic.id) == Match.topic_id)
                .where(Topic.slug == slug)
            ).all()
            assert {url for url, _match in found} == expected, slug
            for _url, match in found:
                assert match.text_source == "page"
                assert phrase.lower() in match.snippet.lower()  # the snippet is from the body

    # Pages are fetched once, with an HTML Accept header and our User-Agent.
    assert news_site.page_hits() == 62
    headers = dict(news_site.server.requests)[news_site.pages[0].path]
    assert headers["accept"].startswith("text/html")
    assert headers["user-agent"].startswith("monitor/")
    _again, more = poll_with_pages(engine, settings)
    assert more == []
    assert news_site.page_hits() == 62
