"""The command line: every command answers, user errors are one clear line, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.cli import app
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
    assert "would send to analyst@example.org: [monitor] 1 new article" in output
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
    assert code == 0
    assert f"failed {feed_server.url('/missing.xml')}: fetch: HTTP 404" in flat
    assert f"failed {feed_server.url('/page.html')}: parse: not a feed (an HTML page" in flat
