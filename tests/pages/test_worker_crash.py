"""A page that hangs the extractor where no signal reaches it: the worker process is ended by its
CPU limit, the pool starts another, the page is that article's error and the others go on."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from monitor.ingest.prepare import TopicSet
from monitor.ingest.sketch import StoryRules
from monitor.models import ArticlePage, PageStatus, utcnow
from monitor.operations import open_database, sync_config
from monitor.pages import run
from monitor.pages.extract import ExtractRules
from monitor.pages.prepare import PageDocument, PagePrepared, cpu_bound, prepare_page
from tests.pages.conftest import poll_with_pages
from tests.utils.articles import teaser_feed
from tests.utils.config import ConfigWriter
from tests.utils.feedserver import FeedServer

PAGE = (
    "<html><body><article><p>"
    + "The recount found no sign of interference in the tally of the county. " * 8
    + "</p></article></body></html>"
).encode()


def hanging_prepare(
    document: PageDocument,
    topics: TopicSet,
    rules: StoryRules,
    extract_rules: ExtractRules,
    cpu_seconds: float,
) -> PagePrepared:
    """prepare_page, except that the /hang page loops inside C (sum checks no signal)."""
    if document.url.endswith("/hang"):
        with cpu_bound(cpu_seconds):
            sum(range(10**13))
    return prepare_page(document, topics, rules, extract_rules, cpu_seconds)


@pytest.mark.slow
def test_a_page_that_hangs_the_extractor_is_its_articles_error(
    config: ConfigWriter, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = [
        (feed_server.add(f"/{name}", PAGE, content_type="text/html"), name, "Short.")
        for name in ("hang", "fine")
    ]
    config.feeds = [feed_server.add("/f.rss", teaser_feed(iter(items)))]
    config.pages = {"enabled": "true", "per_host_interval": '"0s"', "extract_timeout": '"0.5s"'}
    settings = config.settings()
    engine = open_database(settings)
    sync_config(engine, settings, now=utcnow())
    # Sent to the worker by name: it imports this module and runs the hanging version.
    monkeypatch.setattr(run, "prepare_page", hanging_prepare)

    _polled, results = poll_with_pages(engine, settings, workers=1)

    assert len(results) == 2
    with Session(engine) as session:
        pages = {row.url.rsplit("/", 1)[1]: row for row in session.exec(select(ArticlePage))}
    assert pages["fine"].status == PageStatus.DONE
    assert pages["hang"].status == PageStatus.FAILED
    assert pages["hang"].reason == "extract: the extractor's process died on this page"
