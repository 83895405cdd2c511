"""``monitor index check`` and ``monitor index rebuild``: the search index against the archive."""

from __future__ import annotations

import sys
from collections.abc import Callable

import typer

from monitor.cli.common import prepare, say, user_errors
from monitor.topics.index import check_index, rebuild_index

index_app = typer.Typer(
    help="The search index: check it against the stored articles, or build it again.",
    no_args_is_help=True,
)
# A progress line on standard error every this many articles.
PROGRESS_EVERY = 20_000


def _progress(verb: str) -> Callable[[int, int], None]:
    def report(done: int, total: int) -> None:
        if done % PROGRESS_EVERY < 500 or done == total:
            print(f"{verb} {done:,} of {total:,} articles", file=sys.stderr, flush=True)

    return report


@index_app.command("check")
@user_errors
def index_check(ctx: typer.Context) -> None:
    """Compare the index with every stored article; exit 1 when anything has drifted."""
    engine = prepare(ctx)
    with engine.connect() as connection:
        result = check_index(connection, progress=_progress("checked"))
        connection.rollback()
    say(
        f"{result.articles} articles: {result.missing} missing from the index, "
        f"{result.stale} indexed with other words, {result.orphans} left over"
    )
    if result.broken:
        say(f"the FTS5 table failed its integrity check: {result.broken}")
    if result.drift:
        say(f"drift: {result.drift}; `monitor index rebuild` puts it right")
        raise typer.Exit(1)
    say("drift: 0")


@index_app.command("rebuild")
@user_errors
def index_rebuild(ctx: typer.Context) -> None:
    """Index every stored article again, a batch per transaction (safe to stop and rerun)."""
    engine = prepare(ctx)
    with engine.connect() as connection:
        done = rebuild_index(connection, progress=_progress("indexed"), commit=connection.commit)
        connection.commit()
    say(f"indexed {done} articles")
