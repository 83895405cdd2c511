"""The command line: every command answers, user errors are one clear line, never a traceback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from monitor.cli import app
from monitor.db import create_db_engine
from monitor.models import Article, Feed, Match, Topic, utcnow
from monitor.sources.opml import read_opml
from tests.utils.config import ConfigWriter, fixture_feed
from tests.utils.feedserver import FeedServer

runner = CliRunner()

COMMANDS = [
    [],
    ["init"],
    ["run"],
    ["poll"],
    ["feeds"],
    ["feeds", "list"],
    ["feeds", "add"],
    ["feeds", "import-opml"],
    ["feeds", "export-opml"],
    ["topics", "list"],
    ["articles", "list"],
    ["digest", "send"],
]


def invoke(config: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--config", str(config), *args])
    return result.exit_code, result.output


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "monitor")
def test_every_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output
    assert len(result.output.split("Usage:", 1)[1].strip().splitlines()) > 2


@pytest.fixture
def sqlite_config(tmp_path: Path) -> ConfigWriter:
    return ConfigWriter(
        tmp_path / "config", database_url=f"sqlite:///{tmp_path / 'm.db'}", outbox=tmp_path / "out"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["feeds", "add", "ftp://example.com/feed"], "not an http(s) feed URL"),
        (["feeds", "add", "example.com/feed"], "not an http(s) feed URL"),
        (["feeds", "import-opml", "/nonexistent.opml"], "/nonexistent.opml: cannot read"),
        (["articles", "list", "--since", "lately"], "not a duration: 'lately'"),
        (["articles", "list", "--topic", "nope"], "no topic 'nope'"),
        (["digest", "send", "--to", "nobody@example.org"], "no subscriber 'nobody@example.org'"),
        (["digest", "send", "--to", "not-an-address"], "not an e-mail address"),
        (["poll", "--feed", "https://absent.example/feed"], "no such feed"),
    ],
)
def test_user_errors_are_one_line(
    sqlite_config: ConfigWriter, args: list[str], message: str
) -> None:
    code, output = invoke(sqlite_config.write(), *args)
    assert code == 1
    assert "Traceback" not in output
    assert output.startswith("error: ")
    assert message in " ".join(output.split())


def test_config_error_names_file_and_line(sqlite_config: ConfigWriter) -> None:
    path = sqlite_config.write()
    (path.parent / "topics.yaml").write_text(
        "topics:\n  - slug: ok\n    name: OK\n    keywords: ['a*']\n"
    )
    code, output = invoke(path, "topics", "list")
    assert code == 1
    assert "Traceback" not in output
    assert "topics.yaml:4: topics[0].keywords[0]: " in output
    assert "wildcard" in output


def test_unreachable_database_is_one_line(
    sqlite_config: ConfigWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MONITOR_DATABASE_URL", "postgresql://monitor:pw@127.0.0.1:1/monitor")
    code, output = invoke(sqlite_config.write(), "init")
    assert code == 1
    assert output.startswith("error: database: cannot connect to")
    assert "pw@" not in output
    assert "Traceback" not in output


def test_feeds_add_list_export_import(config: ConfigWriter, tmp_path: Path) -> None:
    path = config.write()
    assert invoke(path, "feeds", "add", "https://example.com/a.xml") == (
        0,
        "added: https://example.com/a.xml\n",
    )
    assert invoke(path, "feeds", "add", "https://example.com/a.xml")[1].startswith("already")
    opml = tmp_path / "more.opml"
    opml.write_bytes(
        b'<opml version="2.0"><body><outline text="x">'
        b'<outline xmlUrl="https://example.com/b.xml" text="B"/>'
        b'<outline xmlUrl="https://example.com/a.xml" text="A"/>'
        b"</outline></body></opml>"
    )
    assert invoke(path, "feeds", "import-opml", str(opml)) == (0, "1 added, 1 already there\n")
    code, output = invoke(path, "feeds", "list")
    assert code == 0
    assert "https://example.com/b.xml" in output
    assert "2 feeds" in output
    code, output = invoke(path, "feeds", "export-opml")
    exported = read_opml(output.encode(), source="stdout")
    assert [(f.url, f.category) for f in exported] == [
        ("https://example.com/a.xml", ""),
        ("https://example.com/b.xml", "x"),
    ]


def test_poll_then_list_then_dry_run(config: ConfigWriter, feed_server: FeedServer) -> None:
    config.feeds = [feed_server.add("/world.rss", fixture_feed("world.rss"))]
    # The fixture feed was published in 2024 and is polled now: without this it is all backlog.
    config.extra_toml = '[ingest]\nbacklog_after = "100000d"\n'
    path = config.write()

    code, output = invoke(path, "poll")
    assert code == 0
    assert "new articles" in output
    assert "│     1 │  1 │            0 │      0 │            5 │       2 │" in output

    code, output = invoke(path, "articles", "list", "--topic", "election-interference")
    assert code == 0
    assert "Putin" in output
    assert "1 articles" in output
    code, output = invoke(path, "articles", "list", "--since", "1h")
    assert "5 articles" in output

    code, output = invoke(path, "digest", "send", "--dry-run")
    assert code == 0
    assert "would send to analyst@example.org: [monitor] Election interference (1)" in output
    assert not config.outbox.exists()
    code, output = invoke(path, "digest", "send")
    assert code == 0
    assert f"sent to analyst@example.org via {config.outbox}" in output
    assert len(list(config.outbox.glob("*.eml"))) == 1
    assert invoke(path, "digest", "send")[1] == "nothing new to send\n"


def test_poll_reports_each_failed_feed_with_its_url(
    config: ConfigWriter, feed_server: FeedServer
) -> None:
    config.feeds = [
        feed_server.add(
            "/page.html", b"<!doctype html><html><body>hi</body></html>", content_type="text/html"
        ),
        feed_server.url("/missing.xml"),
    ]
    code, output = invoke(config.write(), "poll")
    flat = " ".join(output.split())
    assert code == 1, "a poll with failed feeds exits non-zero, so cron and scripts notice"
    assert f"failed {feed_server.url('/missing.xml')}: fetch: HTTP 404" in flat
    assert f"failed {feed_server.url('/page.html')}: parse: not a feed (an HTML page" in flat


@pytest.mark.parametrize(
    ("paths", "code"),
    [(["/world.rss"], 0), (["/world.rss", "/missing.xml"], 1), (["/missing.xml"], 1)],
)
def test_poll_exits_non_zero_when_any_feed_failed(
    config: ConfigWriter, feed_server: FeedServer, paths: list[str], code: int
) -> None:
    feed_server.add("/world.rss", fixture_feed("world.rss"))
    config.feeds = [feed_server.url(path) for path in paths]

    assert invoke(config.write(), "poll")[0] == code


def test_manual_poll_honours_retry_after_unless_forced(
    config: ConfigWriter, feed_server: FeedServer
) -> None:
    url = feed_server.add("/busy.xml", b"slow down", status=429, headers={"Retry-After": "3600"})
    config.feeds = [url]
    path = config.write()

    first = invoke(path, "poll")
    again = invoke(path, "poll")
    forced = invoke(path, "poll", "--force")

    assert first[0] == 1
    assert again[0] == 0
    flat = " ".join(again[1].split())
    assert f"deferred {url}: the server asked to wait until " in flat
    assert "(Retry-After); --force polls it anyway" in flat
    assert forced[0] == 1
    assert feed_server.hits["/busy.xml"] == 2, "the poll in between did not ask the server"


TRUNCATED = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>Cut</title>'
    b"<link>https://cut.example/</link>"
    b"<item><title>Alpha</title><link>https://cut.example/a</link></item>"
    b"<item><title>Beta</title><link>https://cut.example/b</link></item><item><ti"
)


def test_truncated_feed_stores_no_empty_item_and_says_so(
    config: ConfigWriter, feed_server: FeedServer
) -> None:
    url = feed_server.add("/cut.xml", TRUNCATED)
    config.feeds = [url]
    path = config.write()

    code, output = invoke(path, "poll")

    assert code == 0
    assert "1 item without a link, title or text skipped" in " ".join(output.split())
    engine = create_db_engine(config.database_url)
    try:
        with Session(engine) as session:
            titles = sorted(session.exec(select(Article.title)).all())
            feed = session.exec(select(Feed)).one()
    finally:
        engine.dispose()
    assert titles == ["Alpha", "Beta"]
    assert "1 item without a link, title or text skipped" in (feed.last_warning or "")


# --- topics and search -----------------------------------------------------------------------

SEED_TITLE = "Did Putin Back Kamala Harris For The 2024 Election? Here’s What It Could Mean"


@pytest.fixture
def polled(config: ConfigWriter, feed_server: FeedServer) -> Path:
    """A configuration whose database holds the world feed's five articles, tagged."""
    config.feeds = [feed_server.add("/world.rss", fixture_feed("world.rss"))]
    path = config.write()
    code, output = invoke(path, "poll")
    assert code == 0, output
    return path


def article_id(config: ConfigWriter, title: str) -> int:
    engine = create_db_engine(config.database_url)
    try:
        with Session(engine) as session:
            found = session.exec(select(Article.id).where(Article.title == title)).one()
    finally:
        engine.dispose()
    assert found is not None
    return found


def lines_of(output: str) -> list[str]:
    return [line.rstrip() for line in output.splitlines()]


def table_rows(output: str) -> list[list[str]]:
    """The cells of each body row of the tables in ``output``."""
    return [
        [cell.strip() for cell in line.strip("│").split("│")]
        for line in lines_of(output)
        if line.startswith("│")
    ]


def sample_titles(output: str) -> list[str]:
    """The article titles of the sample table (rows whose first cell is a time)."""
    return [row[2] for row in table_rows(output) if re.fullmatch(r"[\d-]{10} \d\d:\d\d", row[0])]


@pytest.mark.parametrize("command", [["topics", "test"], ["search"]], ids=["test", "search"])
def test_query_preview_counts_per_day_and_shows_the_sample(
    polled: Path, command: list[str]
) -> None:
    code, output = invoke(polled, *command, '"election interference" AND (kremlin OR moscow)')

    assert code == 0, output
    today = utcnow().date().isoformat()  # the articles were first seen just now
    assert "1 of 5 articles first seen since " in output
    assert [today, "1", "█" * 20] in table_rows(output)
    assert sample_titles(output) == [SEED_TITLE]
    # Under the title: the feed, then a snippet of the text around matched words.
    cells = [row[2] for row in table_rows(output) if len(row) == 3]
    feed_at = cells.index("Example World News")
    assert cells[feed_at - 1] == SEED_TITLE
    snippet = cells[feed_at + 1]
    assert snippet.startswith("… ")
    assert re.search(r"election interference|Kremlin|Moscow", snippet), snippet


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--since", "1h", "--limit", "1"], "2 of 5 articles"),
        (["--since", "1d"], "2 of 5 articles"),
    ],
)
def test_query_preview_options(polled: Path, args: list[str], expected: str) -> None:
    code, output = invoke(polled, "topics", "test", "putin OR chipmaker", *args)

    assert code == 0, output
    assert f"{expected} first seen since " in output
    assert len(sample_titles(output)) == (1 if "--limit" in args else 2)


def test_query_preview_without_matches(polled: Path) -> None:
    code, output = invoke(polled, "search", "zeppelin")

    assert code == 0
    [line] = lines_of(output)
    assert line.startswith("0 of 5 articles first seen since ")
    assert line.endswith(" UTC match")


def test_query_preview_of_the_future_scans_nothing(polled: Path) -> None:
    code, output = invoke(polled, "search", "putin", "--since", "0s")

    assert code == 0, output
    assert output.startswith("0 of 0 articles first seen since ")


MALFORMED = [
    ("russia* OR kremlin)", 19, "unbalanced parenthesis"),
    ('("election interference" OR meddl*', 1, "unbalanced parenthesis"),
    ("russia NEAR/5", 8, "NEAR needs a term on both sides"),
    ("elect* AND titel:kremlin", 12, 'unknown field "titel" (did you mean "title"?)'),
    ('"election interference', 1, "unclosed quotation mark"),
    ("NOT putin", 1, "would match articles with none of its words"),
]


def assert_caret(output: str, query: str, column: int, message: str) -> None:
    """The query, a caret under the column at fault, then the error naming the column."""
    assert "Traceback" not in output
    lines = lines_of(output)
    at = lines.index(query)
    assert lines[at + 1] == " " * (column - 1) + "^"
    assert lines[at + 2].startswith("error: ")
    assert message in lines[at + 2]
    assert lines[at + 2].endswith(f"at column {column}")


@pytest.mark.parametrize(("query", "column", "message"), MALFORMED)
@pytest.mark.parametrize(
    "command",
    [
        ["topics", "test"],
        ["search"],
        ["topics", "add", "new-topic", "--query"],
        ["topics", "edit", "election-interference", "--query"],
    ],
    ids=["test", "search", "add", "edit"],
)
def test_malformed_query_shows_a_caret_under_the_column(
    sqlite_config: ConfigWriter, command: list[str], query: str, column: int, message: str
) -> None:
    path = sqlite_config.write()

    code, output = invoke(path, *command, query)

    assert code == 1
    assert_caret(output, query, column, message)
    # Nothing was saved.
    code, listing = invoke(path, "topics", "list")
    assert "new-topic" not in listing
    assert (table_rows(listing)[1][:5]) == [
        "election-interference",
        "Election interference",
        "yes",
        "normal",
        "1",
    ]


def test_malformed_query_is_refused_on_both_databases(config: ConfigWriter) -> None:
    code, output = invoke(config.write(), "topics", "add", "new-topic", "--query", "(kremlin")

    assert code == 1
    assert_caret(output, "(kremlin", 1, "unbalanced parenthesis")


def test_topics_explain_marks_each_clause(config: ConfigWriter, polled: Path) -> None:
    seed = article_id(config, SEED_TITLE)

    code, output = invoke(polled, "topics", "explain", "election-interference", str(seed))

    assert code == 0, output
    lines = lines_of(output)
    assert lines[0] == (
        'election-interference (version 1): "election interference" OR '
        '"interfere in the election" OR "meddl* in the election"'
    )
    assert lines[1] == f"article {seed}: {SEED_TITLE}"
    clauses = [line.split("  text ")[0] for line in lines[2:-1]]
    assert clauses == [
        "✓ OR",
        '  ✓ "election interference"',
        '  ✓ "interfere in the election"',
        '  ✗ "meddl* in the election"',
    ]
    # Where: the field, the offset and the words found there.
    assert "text " in lines[3]
    assert lines[3].endswith("“election interference”")
    assert lines[-1] == "the topic matches this article"


def test_topics_explain_of_an_article_it_does_not_match(config: ConfigWriter, polled: Path) -> None:
    derby = article_id(config, "City edge United in a late derby thriller")

    code, output = invoke(polled, "topics", "explain", "russian-disinformation", str(derby))

    assert code == 0, output
    marks = [line.strip()[0] for line in lines_of(output)[2:-1]]
    assert marks == ["✗", "✗", "✗", "✗"]
    assert lines_of(output)[-1] == "the topic does not match this article"


@pytest.mark.parametrize(
    ("slug", "article", "message"),
    [("nope", "1", "no topic 'nope'"), ("election-interference", "999", "no article 999")],
)
def test_topics_explain_unknown_topic_or_article(
    sqlite_config: ConfigWriter, slug: str, article: str, message: str
) -> None:
    code, output = invoke(sqlite_config.write(), "topics", "explain", slug, article)

    assert (code, output.startswith("error: ")) == (1, True)
    assert message in output


def test_topics_add_retags_recent_articles(polled: Path) -> None:
    code, output = invoke(
        polled, "topics", "add", "kremlin-watch", "--query", "kremlin AND putin",
        "--name", "Kremlin watch", "--priority", "high",
    )  # fmt: skip

    assert code == 0, output
    lines = lines_of(output)
    assert lines[0] == "added topic kremlin-watch"
    assert "retagged kremlin-watch: 1 articles of the last 30 days match" in lines
    code, output = invoke(polled, "articles", "list", "--topic", "kremlin-watch")
    assert code == 0
    assert "1 articles" in output
    [row] = table_rows(output)
    assert "kremlin-watch" in row[2]
    assert row[3] == SEED_TITLE
    code, output = invoke(polled, "topics", "list")
    assert ["kremlin-watch", "Kremlin watch", "yes", "high", "1", "kremlin AND putin"] in (
        table_rows(output)
    )
    # Nothing is left to retag.
    assert invoke(polled, "topics", "retag") == (0, "")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Bad_Slug", "--query", "kremlin"], "bad topic slug 'Bad_Slug'"),
        (["election-interference", "--query", "kremlin"], "exists already"),
        (["new-topic", "--query", "kremlin", "--priority", "urgent"], "Invalid value"),
    ],
    ids=["slug", "exists", "priority"],
)
def test_topics_add_refuses_bad_input(
    sqlite_config: ConfigWriter, args: list[str], message: str
) -> None:
    path = sqlite_config.write()

    code, output = invoke(path, "topics", "add", *args)

    assert code != 0
    assert "Traceback" not in output
    assert message in output
    assert "new-topic" not in invoke(path, "topics", "list")[1]


def test_topics_edit_query_bumps_the_version_and_retags(config: ConfigWriter, polled: Path) -> None:
    query = '"election interference" AND title:putin'

    code, output = invoke(polled, "topics", "edit", "election-interference", "--query", query)

    assert code == 0, output
    assert lines_of(output)[0] == "updated topic election-interference (version 2)"
    assert "retagged election-interference: 1 articles of the last 30 days match" in output
    listing = table_rows(invoke(polled, "topics", "list")[1])
    assert ["election-interference", "Election interference", "yes", "normal", "2", query] in (
        listing
    )
    # The edit survives the next command's sync of the unchanged topics.yaml ...
    assert invoke(polled, "init")[0] == 0
    assert table_rows(invoke(polled, "topics", "list")[1])[1][4] == "2"
    # ... and stored matches record the new version.
    engine = create_db_engine(config.database_url)
    with Session(engine) as session:
        versions = session.exec(
            select(Match.topic_version)
            .join(Topic, col(Topic.id) == Match.topic_id)
            .where(Topic.slug == "election-interference")
        ).all()
    engine.dispose()
    assert versions == [2]


@pytest.mark.parametrize(
    ("args", "first_line", "name"),
    [
        (["--name", "Meddling"], "updated topic election-interference (version 1)", "Meddling"),
        (
            ["--query", '"election interference" OR "interfere in the election" '
             'OR "meddl* in the election"'],
            "nothing to change in topic election-interference (version 1)",
            "Election interference",
        ),
        ([], "nothing to change in topic election-interference (version 1)",
         "Election interference"),
    ],
    ids=["name", "same-query", "nothing"],
)  # fmt: skip
def test_topics_edit_without_a_new_query_keeps_the_version(
    sqlite_config: ConfigWriter, args: list[str], first_line: str, name: str
) -> None:
    path = sqlite_config.write()

    code, output = invoke(path, "topics", "edit", "election-interference", *args)

    assert code == 0, output
    assert lines_of(output)[0] == first_line
    row = table_rows(invoke(path, "topics", "list")[1])[1]
    assert row[:5] == ["election-interference", name, "yes", "normal", "1"]


@pytest.mark.parametrize("query", ["", "  "], ids=["empty", "blank"])
def test_topics_edit_refuses_an_empty_query(sqlite_config: ConfigWriter, query: str) -> None:
    path = sqlite_config.write()

    code, output = invoke(path, "topics", "edit", "election-interference", "--query", query)

    assert code == 1
    assert "empty query" in output
    assert table_rows(invoke(path, "topics", "list")[1])[1][4] == "1"


def test_topics_disable_stops_tagging(config: ConfigWriter, feed_server: FeedServer) -> None:
    config.feeds = [feed_server.add("/world.rss", fixture_feed("world.rss"))]
    path = config.write()

    code, output = invoke(path, "topics", "disable", "election-interference")
    assert (code, output) == (0, "disabled topic election-interference\n")
    code, output = invoke(path, "poll")

    assert code == 0
    # Only russian-disinformation matched the seed article.
    assert "│     1 │  1 │            0 │      0 │            5 │       1 │" in output
    assert "0 articles" in invoke(path, "articles", "list", "--topic", "election-interference")[1]
    assert "1 articles" in invoke(path, "articles", "list", "--topic", "russian-disinformation")[1]
    listing = table_rows(invoke(path, "topics", "list")[1])
    assert listing[1][:3] == ["election-interference", "Election interference", "no"]


def test_topics_disable_unknown_topic(sqlite_config: ConfigWriter) -> None:
    code, output = invoke(sqlite_config.write(), "topics", "disable", "nope")

    assert code == 1
    assert output.startswith("error: no topic 'nope'")


def test_topics_list_shows_queries(config: ConfigWriter) -> None:
    config.topics.append(
        {"slug": "kremlin", "name": "Kremlin", "priority": "high", "enabled": False,
         "query": "(kremlin OR putin) NEAR/5 (election OR vote*)"}
    )  # fmt: skip

    code, output = invoke(config.write(), "topics", "list")

    assert code == 0
    assert table_rows(output) == [
        ["central-banks", "Central banks", "yes", "normal", "1",
         '"central bank" OR "interest rate*"'],
        ["election-interference", "Election interference", "yes", "normal", "1",
         '"election interference" OR "interfere in the election" OR "meddl* in the election"'],
        ["kremlin", "Kremlin", "no", "high", "1", "(kremlin OR putin) NEAR/5 (election OR vote*)"],
        ["russian-disinformation", "Russian disinformation", "yes", "normal", "1",
         '"russian disinformation" OR "disinformation campaign*" OR "troll farm*"'],
    ]  # fmt: skip


def test_articles_list_cuts_a_huge_title(config: ConfigWriter, feed_server: FeedServer) -> None:
    title = "Breaking" + "x" * 10_000
    body = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Long</title>'
        f"<link>https://long.example/</link><item><title>{title}</title>"
        "<link>https://long.example/a</link></item></channel></rss>"
    ).encode()
    config.feeds = [feed_server.add("/long.xml", body)]
    path = config.write()
    assert invoke(path, "poll")[0] == 0

    code, output = invoke(path, "articles", "list")

    assert code == 0
    [row] = [line for line in output.splitlines() if "Breaking" in line]
    assert "Breaking" + "x" * 150 in row
    assert "x" * 300 not in row
    assert "\u2026" in row
