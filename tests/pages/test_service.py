"""The service fetches article pages on a job of its own, beside the feed poll."""

from __future__ import annotations

import signal

import pytest
from sqlmodel import Session, select

from monitor.db import create_db_engine
from monitor.models import Article
from tests.test_processes import running_service
from tests.utils.articles import teaser_feed
from tests.utils.config import ConfigWriter
from tests.utils.feedserver import FeedServer

STORY = (
    "<html><head><title>Probe</title></head><body><article>"
    + "".join(
        f"<p>Investigators traced the troll farms to {n} servers abroad on day {n}.</p>"
        for n in range(2, 12)
    )
    + "</article></body></html>"
).encode()


@pytest.mark.slow
def test_the_service_fetches_pages_and_retags(
    config: ConfigWriter, feed_server: FeedServer, db_url: str
) -> None:
    link = feed_server.add("/story", STORY, content_type="text/html")
    config.feeds = [feed_server.add("/f.rss", teaser_feed(iter([(link, "Probe", "Short.")])))]
    config.pages = {"enabled": "true", "per_host_interval": '"0s"'}
    config.extra_toml = '[schedule]\ntick = "1s"\n'

    with running_service(config.write()) as service:
        stored = service.wait_for("page stored article_id=1")
        assert "method=trafilatura" in stored
        assert "new_matches=1" in stored  # troll farms: russian-disinformation
        service.wait_for("pages tick pages=1 stored=1 new_matches=1")
        service.process.send_signal(signal.SIGTERM)
        assert service.process.wait(timeout=30) == 0

    engine = create_db_engine(db_url)
    with Session(engine) as session:
        article = session.exec(select(Article)).one()
        assert "troll farms" in article.body
    engine.dispose()
