"""Robustness over the real corpus of 200 captured feeds (kept outside the project).

The corpus is found through ``$MONITOR_CORPUS`` or at ``../shared/corpus`` beside the repository;
without it these tests are skipped. Its files are only read and served from 127.0.0.1, never
copied. Parsing all of it takes about a minute, so each file is parsed once per module.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, func, select
from typer.testing import CliRunner

from monitor.cli import app
from monitor.db import create_db_engine
from monitor.errors import ParseError
from monitor.ingest.canonical import article_keys
from monitor.models import Article, Feed, FeedState, Sighting
from monitor.sources.parse import ParsedFeed, parse_feed
from tests.utils.config import ConfigWriter
from tests.utils.feedserver import FeedServer, running_feed_server

# Read at import: the autouse fixture in conftest.py hides MONITOR_* variables from each test.
CORPUS_ENV = os.environ.get("MONITOR_CORPUS")
DEFAULT_CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
CONTENT_TYPE = "application/xml"  # no charset: each document's own declaration decides

Outcome = ParsedFeed | Exception
runner = CliRunner()


@pytest.fixture(scope="module")
def corpus_dir() -> Path:
    """The corpus directory (holding ``feeds/``), or a skip saying where it was looked for."""
    corpus = Path(CORPUS_ENV) if CORPUS_ENV else DEFAULT_CORPUS
    if not (corpus / "feeds").is_dir():
        pytest.skip(
            f"feed corpus not found at {corpus}/feeds: set MONITOR_CORPUS to the directory "
            "that holds feeds/ (and INDEX.tsv) to run the corpus tests"
        )
    return corpus


@pytest.fixture(scope="module")
def corpus_server(corpus_dir: Path) -> Iterator[FeedServer]:
    """A feed server on 127.0.0.1 serving every corpus file at ``/<file name>``."""
    with running_feed_server() as server:
        for path in sorted((corpus_dir / "feeds").iterdir()):
            server.add(f"/{path.name}", path.read_bytes(), content_type=CONTENT_TYPE)
        yield server


@pytest.fixture(scope="module")
def corpus_outcomes(corpus_server: FeedServer) -> dict[str, Outcome]:
    """Each served URL -> what parse_feed made of its body (a feed or the exception raised)."""
    outcomes: dict[str, Outcome] = {}
    for path, route in corpus_server.routes.items():
        url = corpus_server.url(path)
        try:
            outcomes[url] = parse_feed(route.body, url=url, content_type=CONTENT_TYPE)
        except Exception as exc:  # recorded, so the test can name every file that fails
            outcomes[url] = exc
    return outcomes


def read_index(corpus_dir: Path) -> list[dict[str, str]]:
    index = corpus_dir / "INDEX.tsv"
    if not index.exists():
        pytest.skip(f"{index} not found: the entry counts cannot be checked")
    with index.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


@pytest.mark.slow
def test_every_file_parses_or_raises_parse_error(corpus_outcomes: dict[str, Outcome]) -> None:
    unexpected = {
        url: f"{type(outcome).__name__}: {outcome}"
        for url, outcome in corpus_outcomes.items()
        if not isinstance(outcome, ParsedFeed | ParseError)
    }

    assert unexpected == {}
    assert len(corpus_outcomes) >= 100, "the corpus looks truncated"


@pytest.mark.slow
def test_rss_and_atom_files_give_the_entry_count_of_the_index(
    corpus_dir: Path, corpus_server: FeedServer, corpus_outcomes: dict[str, Outcome]
) -> None:
    # INDEX.tsv was written by another parser (fastfeedparser): an independent count.
    wrong = {}
    for row in read_index(corpus_dir):
        if row["format"] not in ("rss", "atom"):
            continue
        outcome = corpus_outcomes[corpus_server.url(f"/{row['file']}")]
        found = len(outcome.entries) if isinstance(outcome, ParsedFeed) else repr(outcome)
        if found != int(row["items"]):
            wrong[row["file"]] = (row["items"], found)

    assert wrong == {}


def sightings_per_feed(engine: Engine) -> dict[int, int]:
    with Session(engine) as session:
        rows = session.exec(
            select(Sighting.feed_id, func.count()).group_by(Sighting.feed_id)  # type: ignore[arg-type]
        ).all()
    return dict(rows)


@pytest.mark.slow
def test_one_monitor_poll_of_the_whole_corpus_and_its_health(
    config: ConfigWriter,
    monkeypatch: pytest.MonkeyPatch,
    corpus_outcomes: dict[str, Outcome],
) -> None:
    config.feeds = sorted(corpus_outcomes)
    # A generous deadline: parsing runs beside the fetches and shares their CPU.
    monkeypatch.setenv("MONITOR_FETCH_TIMEOUT", "2m")
    path = config.write()

    polled = runner.invoke(app, ["--config", str(path), "poll"])

    # Exit status 1 when any feed failed (those the parser cannot read at all), else 0.
    unreadable = any(not isinstance(parsed, ParsedFeed) for parsed in corpus_outcomes.values())
    assert polled.exit_code == (1 if unreadable else 0), polled.output
    assert "Traceback" not in polled.output
    assert "internal error" not in polled.output
    output = " ".join(polled.output.split())
    engine = create_db_engine(config.database_url)
    try:
        with Session(engine) as session:
            feeds = {feed.url: feed for feed in session.exec(select(Feed))}
        sightings = sightings_per_feed(engine)
        with Session(engine) as session:
            stored = session.exec(select(func.count()).select_from(Article)).one()
    finally:
        engine.dispose()
    assert set(feeds) == set(corpus_outcomes), "every feed was ingested or failed, none dropped"
    all_keys: set[str] = set()
    for url, parsed in corpus_outcomes.items():
        feed = feeds[url]
        if not isinstance(parsed, ParsedFeed):
            # Malformed beyond reading: a per-feed error, shown with its URL.
            assert feed.state == FeedState.ERRORING, url
            assert (feed.last_error or "").startswith("parse: "), url
            assert f"failed {url}: parse:" in output
            continue
        keys = {k.key_hash for k in article_keys(parsed.entries, feed_id=feed.id or 0)}
        all_keys |= keys
        assert (feed.state, feed.last_error) == (FeedState.ACTIVE, None), url
        # feedparser's entry count less exact duplicates.
        assert sightings.get(feed.id or 0, 0) == len(keys), url
        if parsed.warning:
            # Broken but readable: a partial ingest, with a warning naming the feed.
            assert f"malformed {url}:" in output
    assert stored == len(all_keys)

    health = runner.invoke(app, ["--config", str(path), "feeds", "health"])

    assert health.exit_code == 0
    failed = sum(1 for outcome in corpus_outcomes.values() if not isinstance(outcome, ParsedFeed))
    ok = len(corpus_outcomes) - failed
    summary = f"{len(corpus_outcomes)} feeds: {ok} active, {failed} erroring, 0 disabled"
    assert summary in " ".join(health.output.split())
