"""The child processes of the poll benchmark: one monitor poll, or the bare feedparser loop.

``python -m benchmarks.poll_runner poll CONFIG OUT [--profile PROF]`` polls every active feed
with monitor.operations.poll_feeds, as ``monitor poll`` does; ``... feedparser PATHS OUT``
parses the listed documents with feedparser alone. Each writes its figures to OUT as JSON; the
parent times the process and measures its memory from outside.
"""

from __future__ import annotations

import time

# Taken before anything else is imported, so the import time of monitor is measured too.
STARTED = time.perf_counter()

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import ParamSpec, TypeVar  # noqa: E402

P = ParamSpec("P")
T = TypeVar("T")
FAILURES_KEPT = 10


def poll(config: Path, out: Path, profile: Path | None) -> None:
    """Poll every active feed of ``config`` once; write timings and outcomes to ``out``."""
    from monitor.operations import open_database, poll_feeds
    from monitor.settings import load_settings

    imported = time.perf_counter()
    settings = load_settings(config)
    engine = open_database(settings)
    opened = time.perf_counter()
    if profile is None:
        results = asyncio.run(poll_feeds(engine, settings))
    else:
        results = _profiled(lambda: asyncio.run(poll_feeds(engine, settings)), profile)
    polled = time.perf_counter()
    engine.dispose()
    figures = {
        "import_s": imported - STARTED,
        "open_s": opened - imported,
        "poll_s": polled - opened,
        "feeds": len(results),
        "statuses": dict(Counter(str(result.status) for result in results)),
        "new_articles": sum(result.new_articles for result in results),
        "matches": sum(result.matches for result in results),
        "warnings": sum(1 for result in results if result.warning),
        "failures": [f"{r.feed_url}: {r.error}" for r in results if r.error][:FAILURES_KEPT],
    }
    out.write_text(json.dumps(figures), encoding="utf-8")


def _profiled(call: Callable[[], T], path: Path) -> T:
    """``call()`` under cProfile, its stats written to ``path``.

    cProfile sees one thread only, so work poll_feeds hands to threads (asyncio.to_thread) is
    run inline on the event loop while profiling; work in worker processes stays unseen.
    """
    import cProfile
    from unittest import mock

    async def inline(func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        return func(*args, **kwargs)

    profiler = cProfile.Profile()
    try:
        with mock.patch.object(asyncio, "to_thread", inline):
            return profiler.runcall(call)
    finally:
        profiler.dump_stats(path)


def bare_feedparser(paths_file: Path, out: Path) -> None:
    """``feedparser.parse(bytes)`` over the files listed in ``paths_file``; figures to ``out``.

    Each file is read just before it is parsed, as a reader holds one body at a time.
    """
    import feedparser

    paths = [Path(line) for line in paths_file.read_text(encoding="utf-8").splitlines() if line]
    clock = time.perf_counter()
    entries = sum(len(feedparser.parse(path.read_bytes()).entries) for path in paths)
    seconds = time.perf_counter() - clock
    figures = {"documents": len(paths), "entries": entries, "parse_s": seconds}
    out.write_text(json.dumps(figures), encoding="utf-8")


def main(argv: list[str]) -> int:
    """Run the child named in ``argv``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.poll_runner")
    commands = parser.add_subparsers(dest="command", required=True)
    poll_parser = commands.add_parser("poll")
    poll_parser.add_argument("config", type=Path)
    poll_parser.add_argument("out", type=Path)
    poll_parser.add_argument("--profile", type=Path)
    feedparser_parser = commands.add_parser("feedparser")
    feedparser_parser.add_argument("paths", type=Path, help="a file listing the documents")
    feedparser_parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    # Per-feed warnings (malformed documents) would flood the terminal; failures are counted.
    logging.basicConfig(level=logging.ERROR, format="    [poller] %(levelname)s %(message)s")
    if args.command == "poll":
        poll(args.config, args.out, args.profile)
    else:
        bare_feedparser(args.paths, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
