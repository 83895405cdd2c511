"""``monitor feeds show / health / retry`` over real polls from 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.cli import app
from monitor.sources.opml import OpmlFeed, write_opml
from tests.utils.config import ConfigWriter, fixture_feed
from tests.utils.feedserver import FeedServer

runner = CliRunner()


def invoke(config: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--config", str(config), *args])
    # Table borders dropped and whitespace squeezed: a row reads "url state last-success ...".
    return result.exit_code, " ".join(result.output.replace("│", " ").split())


@pytest.fixture
def polled(config: ConfigWriter, feed_server: FeedServer) -> Path:
    """One good, one erroring, one gone and one HTML feed, polled once."""
    config.feeds = [
        feed_server.add("/world.rss", fixture_feed("world.rss")),
        feed_server.add("/broken.xml", b"oops", status=500, validators=False),
        feed_server.add("/gone.xml", b"", status=410, validators=False),
        feed_server.add("/page.html", b"<html><body>hi</body></html>", content_type="text/html"),
    ]
    path = config.write()
    assert invoke(path, "poll")[0] == 1  # three of them fail
    return path


def test_health_lists_every_feed_with_its_state(polled: Path, feed_server: FeedServer) -> None:
    code, output = invoke(polled, "feeds", "health")

    assert code == 0
    assert f"{feed_server.url('/world.rss')} active" in output
    assert f"{feed_server.url('/broken.xml')} erroring never 1 fetch: HTTP 500" in output
    assert f"{feed_server.url('/gone.xml')} disabled never 1 fetch: HTTP 410 Gone" in output
    assert f"{feed_server.url('/page.html')} erroring never 1 parse: not a feed" in output
    assert "4 feeds: 1 active, 2 erroring, 1 disabled, 0 silent" in output


def test_show_explains_the_interval(polled: Path, feed_server: FeedServer) -> None:
    code, output = invoke(polled, "feeds", "show", feed_server.url("/world.rss"))

    assert code == 0
    assert "state: active" in output
    assert "interval: " in output
    assert "why: " in output
    assert "items a day: " in output


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("/broken.xml", "why: backing off after 1 error, checking again "),
        ("/page.html", "why: backing off after 1 error, checking again "),
        ("/gone.xml", "why: disabled (fetch: HTTP 410 Gone"),
    ],
)
def test_show_says_why_a_failing_feed_is_checked_when_it_is(
    polled: Path, feed_server: FeedServer, path: str, why: str
) -> None:
    code, output = invoke(polled, "feeds", "show", feed_server.url(path))

    assert code == 0
    assert why in output
    assert "not checked yet" not in output


def test_show_after_three_failures_tells_the_backoff(polled: Path, feed_server: FeedServer) -> None:
    url = feed_server.url("/broken.xml")
    for _ in range(2):
        assert invoke(polled, "poll", "--feed", url)[0] == 1  # a failed feed: exit status 1

    code, output = invoke(polled, "feeds", "show", url)

    assert code == 0
    assert "error streak: 3" in output
    assert "why: backing off after 3 errors in a row, checking again " in output
    assert "after the last check (the interval doubles with each error" in output


def test_show_of_an_unknown_feed(polled: Path) -> None:
    code, output = invoke(polled, "feeds", "show", "https://nowhere.example/feed")

    assert code == 1
    assert "no such feed: https://nowhere.example/feed" in output


def test_retry_all_erroring_then_one_disabled(polled: Path, feed_server: FeedServer) -> None:
    code, output = invoke(polled, "feeds", "retry", "--all-erroring")
    assert code == 0
    assert "2 feeds due now" in output
    assert feed_server.url("/gone.xml") not in output

    code, output = invoke(polled, "feeds", "retry", feed_server.url("/gone.xml"))
    assert (code, "1 feeds due now" in output) == (0, True)

    output = invoke(polled, "feeds", "health")[1]
    assert "4 feeds: 4 active, 0 erroring, 0 disabled" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "name a feed URL or use --all-erroring"),
        (["https://nowhere.example/feed"], "no such feed"),
    ],
)
def test_retry_usage_errors(polled: Path, args: list[str], message: str) -> None:
    code, output = invoke(polled, "feeds", "retry", *args)

    assert code == 1
    assert message in output


METADATA = "http://169.254.169.254/latest/meta-data/"
REFUSED = (
    "connection to 169.254.169.254 refused: a link-local address (cloud metadata lives there) "
    "(see fetch.allow_networks)"
)


@pytest.mark.parametrize(
    ("allow", "code", "expected"),
    [
        ('["127.0.0.0/8"]', 1, f"error: feed URL refused: {METADATA}: {REFUSED}"),
        # The guard honours fetch.allow_networks, here as anywhere.
        ('["127.0.0.0/8", "169.254.0.0/16"]', 0, f"added: {METADATA}"),
    ],
)
def test_feeds_add_applies_the_address_guard(
    config: ConfigWriter, allow: str, code: int, expected: str
) -> None:
    path = config.write()
    path.write_text(path.read_text().replace('allow_networks = ["127.0.0.0/8"]',
                                             f"allow_networks = {allow}"))  # fmt: skip

    assert invoke(path, "feeds", "add", METADATA) == (code, expected)


def test_opml_imports_and_the_feeds_file_apply_the_address_guard(
    config: ConfigWriter, feed_server: FeedServer, tmp_path: Path
) -> None:
    good = feed_server.add("/world.rss", fixture_feed("world.rss"))
    config.feeds = [good, "http://10.0.0.7/feed.xml"]
    path = config.write()
    opml = tmp_path / "more.opml"
    opml.write_bytes(write_opml([OpmlFeed(METADATA), OpmlFeed(feed_server.url("/other.rss"))]))

    init = invoke(path, "init")
    imported = invoke(path, "feeds", "import-opml", str(opml))
    listed = invoke(path, "feeds", "list")

    assert (
        "skipped feed: feed URL refused: http://10.0.0.7/feed.xml: connection to 10.0.0.7 "
        "refused: a private address" in init[1]
    )
    assert imported[0] == 0
    assert "1 added, 0 already there" in imported[1]
    assert f"skipped: feed URL refused: {METADATA}: {REFUSED}" in imported[1]
    assert good in listed[1]
    assert "10.0.0.7" not in listed[1]
    assert "169.254.169.254" not in listed[1]
