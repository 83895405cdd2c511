"""``poll``: the corpus served from 127.0.0.1, polled by monitor, beside feedparser and newsboat.

One run measures, each in its own process so its wall time and peak memory are its own:

- monitor's poll of every feed (monitor.operations.poll_feeds, as ``monitor poll`` runs it) on
  a fresh database: cold, then warm with every answer a 304, then warm with every body sent
  again unchanged (the server ignores the validators; monitor sees the same body hash);
- ``feedparser.parse(bytes)`` over the same documents in one process (no fetching, no storing);
- newsboat's cold ``-x reload`` of the same URLs, when ``newsboat`` is installed: once with its
  defaults (one reload thread) and once with as many reload threads as monitor's fetch
  concurrency.

The server (benchmarks/corpus_server.py) is a separate process, so its CPU is not the client's.
With ``--feeds N`` (or ``$MONITOR_BENCH_POLL_FEEDS``) beyond the corpus size, the corpus repeats
under N distinct URLs and only the cold poll runs (the memory figure is the point of it).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from benchmarks.common import (
    REPO_ROOT,
    TOPICS_FILE,
    Corpus,
    Table,
    corpus_missing,
    find_corpus,
    isolate_environment,
    postgres_schema,
    postgres_unavailable,
    progress,
    rate,
    skipped,
)
from benchmarks.corpus_server import feed_path
from benchmarks.processes import Measured, measure
from monitor.models import Article, utcnow
from monitor.operations import open_database, sync_config
from monitor.settings import FetchSettings, Settings, load_settings
from monitor.sources.opml import OpmlFeed, write_opml

TITLE = "poll: corpus from 127.0.0.1 (separate server process); each reader in its own process"
COLUMNS = ["wall s", "poll s", "feeds/s", "articles/s", "peak PSS MB", "peak RSS MB"]
FEEDS_ENV = "MONITOR_BENCH_POLL_FEEDS"


@dataclass(frozen=True, slots=True)
class PollOptions:
    """What ``python -m benchmarks poll`` was asked for."""

    feeds: int | None = None  # distinct feed URLs; None: one per corpus document
    postgres: bool = False  # also poll into PostgreSQL (when reachable)
    profile: Path | None = None  # write a cProfile of one more, in-process, cold poll here


@dataclass(slots=True)
class Phase:
    """One row of the table: a reader doing one thing, measured from outside its process."""

    label: str
    run: Measured
    feeds: int
    articles: int | None = None  # stored (monitor, newsboat) or parsed (feedparser)
    inner_seconds: float | None = None  # the work alone, without process start and imports
    detail: dict[str, Any] = field(default_factory=dict)
    served: dict[str, Any] = field(default_factory=dict)  # what the server answered meanwhile

    def values(self) -> list[float | int | str | None]:
        """The row's figures in COLUMNS order; rates are over the whole process's wall time."""
        run = self.run
        return [
            run.seconds,
            self.inner_seconds,
            rate(self.feeds, run.seconds),
            rate(self.articles, run.seconds) if self.articles is not None else None,
            run.peak_pss_mb,
            run.peak_rss_mb,
        ]


class CorpusServer:
    """The corpus server child process, and a way to switch its mode and read its counters."""

    def __init__(self, feeds: int) -> None:
        command = [sys.executable, "-m", "benchmarks.corpus_server", "--feeds", str(feeds)]
        # Its stdin stays open while we live: if we die, it sees EOF and stops too.
        self.process = subprocess.Popen(
            command, cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode().strip()
        if not line.isdigit():
            self.stop()
            raise RuntimeError(f"the corpus server did not start (it said {line!r})")
        self.port = int(line)

    def url(self, path: str) -> str:
        """The full URL of ``path``."""
        return f"http://127.0.0.1:{self.port}{path}"

    def control(self, command: str) -> dict[str, Any]:
        """Send a /_bench/ command (``mode/honour``, ``mode/ignore``, ``stats``); its answer."""
        if (code := self.process.poll()) is not None:
            # Otherwise the figures of a poll whose feeds all failed would look like a result.
            raise RuntimeError(f"the corpus server exited (code {code}) during the benchmark")
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request("GET", f"/_bench/{command}")
            answer: dict[str, Any] = json.loads(connection.getresponse().read())
        finally:
            connection.close()
        return answer

    def stop(self) -> None:
        """Stop the server and reap it."""
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def running_corpus_server(feeds: int) -> Iterator[CorpusServer]:
    """A started corpus server for ``feeds`` URLs, stopped afterwards."""
    server = CorpusServer(feeds)
    try:
        yield server
    finally:
        server.stop()


def feed_urls(server: CorpusServer, corpus: Corpus, count: int) -> list[tuple[str, str]]:
    """(URL, title) of ``count`` feeds: the corpus in order, repeated under distinct paths."""
    documents = corpus.feeds
    urls = []
    for n in range(count):
        document = documents[n % len(documents)]
        urls.append((server.url(feed_path(n, document.name)), document.title))
    return urls


def write_config(
    directory: Path, database_url: str, feeds: list[tuple[str, str]], *, inline: bool = False
) -> Path:
    """monitor.toml on ``database_url``, feeds.opml listing ``feeds``, the shipped topics.

    ``inline``: parse in a thread of the polling process (for the profile, which sees only it).
    """
    opml = write_opml([OpmlFeed(url, title) for url, title in feeds], title="benchmark corpus")
    (directory / "feeds.opml").write_bytes(opml)
    inline_line = "parse_processes = 0\n" if inline else ""
    config = directory / "monitor.toml"
    config.write_text(
        "[database]\n"
        f"url = {json.dumps(database_url)}\n"
        # The server listens on 127.0.0.1, which the address guard refuses by default; every
        # feed is on that one host, so the per-host limit must not be the one that binds.
        "[fetch]\n"
        'allow_networks = ["127.0.0.0/8"]\n'
        f"per_host = {len(feeds)}\n"
        f"{inline_line}"
        # The corpus items link to real sites: their pages are not fetched (no network here;
        # ``python -m benchmarks extract`` measures pages, served locally).
        "[pages]\n"
        "enabled = false\n"
        "[files]\n"
        'feeds = "feeds.opml"\n'
        f"topics = {json.dumps(str(TOPICS_FILE))}\n"
        'subscriptions = "absent.yaml"\n',
        encoding="utf-8",
    )
    return config


def set_up(config: Path) -> Settings:
    """Migrate the empty database and add the feeds and topics, as ``monitor init`` does."""
    settings = load_settings(config)
    engine = open_database(settings)
    try:
        synced = sync_config(engine, settings, now=utcnow())
    finally:
        engine.dispose()
    if synced.feeds.rejected:
        raise RuntimeError(f"feeds refused: {synced.feeds.rejected[:3]}")
    return settings


def stored_articles(settings: Settings) -> int:
    """How many articles the database holds."""
    engine = open_database(settings)
    try:
        with Session(engine) as session:
            return session.exec(select(func.count()).select_from(Article)).one()
    finally:
        engine.dispose()


def _python(*args: str) -> list[str]:
    return [sys.executable, "-m", *args]


def _check(run: Measured, what: str) -> None:
    if run.returncode != 0:
        raise RuntimeError(f"{what} exited with {run.returncode}:\n{run.stderr}")


def monitor_poll(
    server: CorpusServer, config: Path, mode: str, label: str, feeds: int, profile: Path | None
) -> Phase:
    """One ``poll_feeds`` of every feed in a child process, the server in ``mode``."""
    server.control(f"mode/{mode}")
    with tempfile.TemporaryDirectory(prefix="monitor-bench-out-") as directory:
        out = Path(directory) / "figures.json"
        command = _python("benchmarks.poll_runner", "poll", str(config), str(out))
        if profile is not None:
            command += ["--profile", str(profile)]
        run = measure(command, cwd=REPO_ROOT)
        _check(run, f"the poll ({label})")
        detail = json.loads(out.read_text(encoding="utf-8"))
    phase = Phase(label, run, feeds, inner_seconds=detail["poll_s"], detail=detail)
    phase.served = server.control("stats")
    return phase


def monitor_phases(
    server: CorpusServer, database: str, url: str, feeds: list[tuple[str, str]], warm: bool
) -> list[Phase]:
    """Cold poll into a fresh database, then (``warm``) the 304 and the unchanged-body polls.

    ``url`` is the database's; SQLite's (empty here) is a file in the run's directory.
    """
    count = len(feeds)
    with tempfile.TemporaryDirectory(prefix="monitor-bench-poll-") as directory:
        if database == "sqlite":
            url = f"sqlite:///{Path(directory) / 'monitor.db'}"
        config = write_config(Path(directory), url, feeds)
        progress(f"poll: {count} feeds into a fresh {database} database (setup)")
        settings = set_up(config)
        progress(f"poll: monitor cold poll ({database})")
        cold = monitor_poll(server, config, "honour", f"monitor cold ({database})", count, None)
        cold.articles = stored_articles(settings)
        phases = [cold]
        if warm:
            progress(f"poll: monitor warm poll, every answer 304 ({database})")
            label = f"monitor warm, 304 ({database})"
            phases.append(monitor_poll(server, config, "honour", label, count, None))
            progress(f"poll: monitor warm poll, every body unchanged ({database})")
            label = f"monitor warm, same body ({database})"
            phases.append(monitor_poll(server, config, "ignore", label, count, None))
    return phases


def profile_cold_poll(server: CorpusServer, feeds: list[tuple[str, str]], path: Path) -> None:
    """One more cold poll into a fresh SQLite database under cProfile; not in the table."""
    with tempfile.TemporaryDirectory(prefix="monitor-bench-profile-") as directory:
        url = f"sqlite:///{Path(directory) / 'monitor.db'}"
        # The profiler sees the polling process only: parse there (if this monitor can).
        inline = "parse_processes" in FetchSettings.model_fields
        config = write_config(Path(directory), url, feeds, inline=inline)
        set_up(config)
        progress(f"poll: profiling a cold poll into {path}")
        monitor_poll(server, config, "honour", "profiled", len(feeds), path)


def bare_feedparser(corpus: Corpus, count: int) -> Phase:
    """``feedparser.parse(bytes)`` over the first ``count`` documents, in a child process."""
    progress(f"poll: bare feedparser loop over {count} documents")
    with tempfile.TemporaryDirectory(prefix="monitor-bench-out-") as directory:
        paths, out = Path(directory) / "paths", Path(directory) / "figures.json"
        paths.write_text("".join(f"{feed.path}\n" for feed in corpus.feeds[:count]))
        run = measure(_python("benchmarks.poll_runner", "feedparser", str(paths), str(out)))
        _check(run, "the feedparser loop")
        detail = json.loads(out.read_text(encoding="utf-8"))
    return Phase(
        "feedparser.parse loop (no fetch, no store)",
        run,
        detail["documents"],
        articles=detail["entries"],
        inner_seconds=detail["parse_s"],
        detail=detail,
    )


def newsboat_reload(server: CorpusServer, newsboat: str, urls: list[str], threads: int) -> Phase:
    """newsboat's cold ``-x reload`` of ``urls`` into a fresh cache (``threads`` 0: defaults)."""
    server.control("mode/honour")
    with tempfile.TemporaryDirectory(prefix="monitor-bench-newsboat-") as directory:
        home = Path(directory)
        (home / "urls").write_text("".join(f"{url}\n" for url in urls), encoding="utf-8")
        # newsboat's default is one reload thread (feeds fetched one after another).
        (home / "config").write_text(f"reload-threads {threads}\n" if threads else "")
        env = {
            **os.environ,
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
        }
        command = [newsboat, "-u", "urls", "-c", "cache.db", "-C", "config", "-x", "reload"]
        run = measure(command, env=env, cwd=home)
        _check(run, "newsboat")
        with contextlib.closing(sqlite3.connect(home / "cache.db")) as cache:
            items, feeds = cache.execute(
                "SELECT count(*), count(DISTINCT feedurl) FROM rss_item"
            ).fetchone()
    how = f"reload-threads {threads}" if threads else "defaults: 1 reload thread"
    phase = Phase(f"newsboat -x reload ({how})", run, len(urls), articles=items)
    phase.detail = {"feeds_with_items": feeds}
    phase.served = server.control("stats")
    return phase


def _feeds_from_environment() -> int | None:
    value = os.environ.get(FEEDS_ENV, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise SystemExit(f"{FEEDS_ENV} must be a positive number of feeds, not {value!r}")
    return int(value)


def _served(served: dict[str, Any]) -> str:
    statuses = ", ".join(f"{n} x {status}" for status, n in served.get("statuses", {}).items())
    return f"server answered {statuses or 'nothing'} ({served.get('conditional', 0)} conditional)"


def _statuses(detail: dict[str, Any]) -> str:
    return ", ".join(f"{n} {status}" for status, n in sorted(detail.get("statuses", {}).items()))


def run(options: PollOptions | None = None) -> list[Table]:
    """Serve the corpus, poll it with each reader, and tabulate the figures."""
    options = options or PollOptions()
    corpus = find_corpus()
    if corpus is None:
        return [skipped(TITLE, corpus_missing())]
    isolate_environment()
    count = options.feeds or _feeds_from_environment() or len(corpus.feeds)
    # Beyond the corpus size the run is about memory at scale: the cold poll alone.
    compare = count <= len(corpus.feeds)
    phases: list[Phase] = []
    notes: list[str] = []
    newsboat = shutil.which("newsboat")
    with running_corpus_server(count) as server:
        feeds = feed_urls(server, corpus, count)
        phases += monitor_phases(server, "sqlite", "", feeds, compare)
        if options.postgres and postgres_unavailable() is None:
            with postgres_schema("bench_poll") as schema_url:
                phases += monitor_phases(server, "postgresql", schema_url, feeds, compare)
        if compare:
            phases.append(bare_feedparser(corpus, count))
            if newsboat is None:
                notes.append("newsboat: not installed (apt-get install newsboat); skipped")
            else:
                urls = [url for url, _ in feeds]
                concurrency = FetchSettings().concurrency
                for threads in (0, concurrency):
                    progress(f"poll: newsboat -x reload ({threads or 'default'} reload threads)")
                    phases.append(newsboat_reload(server, newsboat, urls, threads))
        if options.profile is not None:
            profile_cold_poll(server, feeds, options.profile)
            notes.append(
                f"profile of one more cold poll (parsing in-process) written to "
                f"{options.profile}; read it with python -m pstats"
            )
    return [_table(corpus, count, phases, notes, options)]


def _table(
    corpus: Corpus, count: int, phases: list[Phase], notes: list[str], options: PollOptions
) -> Table:
    table = Table(TITLE, COLUMNS)
    for phase in phases:
        table.add(phase.label, "", *phase.values())
    documents = min(count, len(corpus.feeds))
    megabytes = sum(feed.size for feed in corpus.feeds[:documents]) / 1e6
    repeated = f", repeated to {count:,} distinct URLs" if count > len(corpus.feeds) else ""
    table.notes.append(
        f"{documents} documents ({megabytes:.1f} MB) from {corpus.root}{repeated}; "
        f"topics from {TOPICS_FILE.relative_to(REPO_ROOT)}; monitor's fetch settings are the "
        f"defaults but allow_networks 127.0.0.0/8 and per_host {count}"
    )
    table.notes.append(
        "wall s: the whole process, start to exit (interpreter start, imports and opening the "
        "database included); poll s: poll_feeds alone (parse alone for feedparser); feeds/s "
        "and articles/s over wall s; peak: summed over the process and its children"
    )
    for phase in phases:
        if phase.label.startswith("monitor"):
            detail = phase.detail
            notes_line = (
                f"{phase.label}: {_statuses(detail)}; {detail['new_articles']:,} new articles, "
                f"{detail['matches']:,} matches; imports {detail['import_s']:.2f} s, "
                f"open database {detail['open_s']:.2f} s; up to {phase.run.processes} "
                f"processes; {_served(phase.served)}"
            )
            table.notes.append(notes_line)
            if "warm" in phase.label and phase.served.get("conditional", 0) < phase.feeds:
                table.notes.append(
                    f"  WARNING: {phase.label} sent validators for only "
                    f"{phase.served.get('conditional', 0)} of {phase.feeds} feeds"
                )
            table.notes.extend(f"  failed: {failure}" for failure in detail["failures"])
        elif phase.label.startswith("newsboat"):
            table.notes.append(
                f"{phase.label}: items from {phase.detail['feeds_with_items']} feeds; "
                f"{_served(phase.served)}"
            )
    table.notes.extend(_ratios(phases))
    table.notes.extend(notes)
    if options.postgres and (reason := postgres_unavailable()) is not None:
        table.notes.append(reason)
    return table


def _ratios(phases: list[Phase]) -> list[str]:
    """How the warm polls compare with the cold one, and monitor with newsboat."""
    by_label = {phase.label: phase for phase in phases}
    lines = []
    for cold in (p for p in phases if p.label.startswith("monitor cold")):
        database = cold.label.removeprefix("monitor cold ")
        for warm_label in (f"monitor warm, 304 {database}", f"monitor warm, same body {database}"):
            warm = by_label.get(warm_label)
            if warm is None or not warm.inner_seconds or not cold.inner_seconds:
                continue
            lines.append(
                f"{warm_label}: {cold.run.seconds / warm.run.seconds:.1f}x faster than cold "
                f"(wall), {cold.inner_seconds / warm.inner_seconds:.1f}x (poll alone)"
            )
        for newsboat in (p for p in phases if p.label.startswith("newsboat")):
            lines.append(
                f"{cold.label} vs {newsboat.label}: "
                f"{newsboat.run.seconds / cold.run.seconds:.2f}x newsboat's speed (wall)"
            )
    return lines
