"""The command line of article pages: extract, poll with pages, articles show and refetch,
feeds set, fetchPages in OPML, page failures in feeds health."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from monitor.cli import app
from monitor.db import create_db_engine
from monitor.models import Article, ArticlePage, Feed, FetchPages, PageStatus
from tests.utils.articles import articles_missing, load_articles, teaser_feed
from tests.utils.config import ConfigWriter
from tests.utils.feedserver import FeedServer

runner = CliRunner()
STORY = (
    "<html lang='en'><head><title>Probe</title>"
    "<link rel='canonical' href='https://news.example/probe'></head><body><article>"
    + "".join(
        f"<p>Investigators traced the troll farms behind the election interference campaign to "
        f"a network of {n} servers abroad, officials said on day {n} of the inquiry.</p>"
        for n in range(2, 7)
    )
    + "</article></body></html>"
)


def invoke(config: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--config", str(config), *args])
    return result.exit_code, result.output


@pytest.fixture
def local(tmp_path: Path) -> ConfigWriter:
    writer = ConfigWriter(
        tmp_path / "config", database_url=f"sqlite:///{tmp_path / 'm.db'}", outbox=tmp_path / "o"
    )
    writer.pages = {"enabled": "true", "per_host_interval": '"0s"'}
    return writer


def test_extract_a_saved_page_as_json(local: ConfigWriter, tmp_path: Path) -> None:
    pages = load_articles()
    if not pages:
        pytest.skip(articles_missing())
    page = pages[0]
    saved = tmp_path / "page.html"
    saved.write_bytes(page.html)

    code, output = invoke(
        local.write(), "extract", str(saved), "--url", page.url, "--format", "json"
    )

    assert code == 0, output
    data = json.loads(output)
    assert {"text", "title", "published_at", "language", "canonical_url", "method"} <= set(data)
    assert data["method"] == "trafilatura"
    assert data["canonical_url"].startswith("https://www.nytimes.com/")
    assert page.body.split("\n", 1)[0][:60] in data["text"]


def test_extract_a_url_through_the_guarded_client(
    local: ConfigWriter, feed_server: FeedServer
) -> None:
    url = feed_server.add("/probe", STORY.encode(), content_type="text/html")
    config = local.write()

    code, output = invoke(config, "extract", url)

    assert code == 0, output
    assert "method:     trafilatura" in output
    assert "canonical:  https://news.example/probe" in output
    assert "troll farms" in output
    assert not (config.parent.parent / "m.db").exists()  # no database touched


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"%PDF-1.5\n" + bytes(100), "extract: not an HTML page: a PDF document"),
        (b"<html><body><p>Too short.</p></body></html>", "extract: too little article text"),
    ],
)
def test_extract_errors_are_one_line(
    local: ConfigWriter, tmp_path: Path, content: bytes, message: str
) -> None:
    saved = tmp_path / "x.html"
    saved.write_bytes(content)
    code, output = invoke(local.write(), "extract", str(saved))
    assert code == 1
    assert message in output
    assert "Traceback" not in output


def test_extract_refuses_an_address_the_guard_refuses(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    url = feed_server.add("/probe", STORY.encode(), content_type="text/html")
    closed = ConfigWriter(
        tmp_path / "c", database_url=f"sqlite:///{tmp_path}/m.db", outbox=tmp_path
    )
    closed.write()
    toml = (closed.directory / "monitor.toml").read_text().replace('["127.0.0.0/8"]', "[]")
    (closed.directory / "monitor.toml").write_text(toml)

    code, output = invoke(closed.directory / "monitor.toml", "extract", url)

    assert code == 1
    assert "loopback" in output
    assert feed_server.hits["/probe"] == 0


def test_poll_fetches_pages_and_articles_show_tells_where_the_text_came_from(
    local: ConfigWriter, feed_server: FeedServer
) -> None:
    link = feed_server.add("/probe", STORY.encode(), content_type="text/html")
    local.feeds = [
        feed_server.add("/f.rss", teaser_feed(iter([(link, "Probe", "Officials spoke.")])))
    ]
    config = local.write()

    code, output = invoke(config, "poll")
    assert code == 0, output
    assert "article pages" in output
    engine = create_db_engine(local.database_url)
    with Session(engine) as session:
        article = session.exec(select(Article)).one()
    code, shown = invoke(config, "articles", "show", str(article.id))

    assert code == 0, shown
    assert "text from:    page (trafilatura)" in shown
    assert "page:         done, 1 attempt" in shown
    assert "canonical:    https://news.example/probe" in shown
    assert "matched:      election-interference (page text)" in shown
    assert "Investigators traced the troll farms" in shown

    code, again = invoke(config, "articles", "refetch", str(article.id))
    assert code == 0, again
    with Session(engine) as session:
        page = session.get(ArticlePage, article.id)
        assert page is not None
        assert (page.status, page.attempts) == (PageStatus.PENDING, 0)
    code, missing = invoke(config, "articles", "refetch", "999")
    assert code == 1
    assert "no article with an http(s) link: 999" in missing


def test_feeds_set_and_opml_say_whether_pages_are_fetched(
    local: ConfigWriter, feed_server: FeedServer, tmp_path: Path
) -> None:
    link = feed_server.add("/probe", STORY.encode(), content_type="text/html")
    feed = feed_server.add("/f.rss", teaser_feed(iter([(link, "Probe", "Officials spoke.")])))
    local.feeds = [feed]
    config = local.write()

    code, output = invoke(config, "feeds", "set", feed, "--fetch-pages", "never")
    assert code == 0, output
    assert "never fetched" in output
    invoke(config, "poll")
    assert feed_server.hits["/probe"] == 0

    code, exported = invoke(config, "feeds", "export-opml")
    assert 'fetchPages="never"' in exported
    listing = tmp_path / "list.opml"
    listing.write_text(exported.replace('fetchPages="never"', 'fetchPages="always"'))
    code, output = invoke(config, "feeds", "import-opml", str(listing))
    assert code == 0, output
    engine = create_db_engine(local.database_url)
    with Session(engine) as session:
        assert session.exec(select(Feed.fetch_pages)).one() == FetchPages.ALWAYS

    listing.write_text(exported.replace('fetchPages="never"', 'fetchPages="sometimes"'))
    code, output = invoke(config, "feeds", "import-opml", str(listing))
    assert code == 1
    assert "fetchPages='sometimes' (use auto, always, never)" in output
    code, output = invoke(config, "feeds", "set", feed, "--fetch-pages", "sometimes")
    assert code == 2  # typer refuses the choice


def test_feeds_health_lists_a_site_whose_pages_fail(
    local: ConfigWriter, feed_server: FeedServer
) -> None:
    items = [(feed_server.url(f"/gone/{n}"), f"Gone {n}", "Short.") for n in range(3)]
    local.feeds = [feed_server.add("/f.rss", teaser_feed(iter(items)))]
    config = local.write()
    invoke(config, "poll")

    code, output = invoke(config, "feeds", "health")

    assert code == 0, output
    assert "article pages failing, by host" in output
    assert "fetch: HTTP 404 Not Found" in output
