"""Run the benchmarks: ``python -m benchmarks`` for all, or name some (``poll parse``)."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import platform
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from benchmarks import (
    channels,
    digest,
    exports,
    extract,
    languages,
    match,
    orphans,
    parse,
    poll,
    review,
    search,
    store,
    stories,
    workers,
)
from benchmarks.common import (
    Table,
    corpus_location,
    find_corpus,
    format_value,
    isolate_environment,
    postgres_unavailable,
    postgres_url,
)

OUTPUT_WIDTH = 100
BENCHMARKS: dict[str, Callable[[], list[Table]]] = {
    "poll": poll.run,
    "parse": parse.run,
    "match": match.run,
    "store": store.run,
    "digest": digest.run,
    "stories": stories.run,
    "workers": workers.run,
    "orphans": orphans.run,
    "extract": extract.run,
    "languages": languages.run,
    "channels": channels.run,
    "review": review.run,
    "exports": exports.run,
    "search": search.run,
}


def render(table: Table) -> RichTable:
    """A benchmark table as Rich draws it: a figure per row, a variant per column."""
    rich_table = RichTable(box=box.SIMPLE_HEAD)
    rich_table.add_column("figure")
    # A table whose columns carry the units (poll's) has no use for the unit column.
    units = any(row.unit for row in table.rows)
    if units:
        rich_table.add_column("unit")
    for variant in table.variants:
        rich_table.add_column(variant, justify="right")
    for row in table.rows:
        values = [format_value(v) for v in row.values]
        rich_table.add_row(row.label, *([row.unit] if units else []), *values)
    return rich_table


def describe_machine() -> str:
    """Where the figures come from: interpreter, machine, corpus and database."""
    corpus = find_corpus()
    corpus_text = (
        f"{len(corpus.feeds)} feeds at {corpus.root}" if corpus else f"absent ({corpus_location()})"
    )
    postgres = postgres_unavailable() or f"PostgreSQL {postgres_url()}"
    return "\n".join(
        [
            f"monitor benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            f"Python {platform.python_version()} on {platform.platform()}, "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}",
            f"corpus: {corpus_text}",
            f"database: SQLite (temporary file); {postgres}",
        ]
    )


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    """The benchmarks named and the options given."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="Run monitor's benchmarks and print tables."
    )
    parser.add_argument(
        "names", nargs="*", metavar="name", help=f"benchmarks to run: {', '.join(BENCHMARKS)}"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the tables here")
    parser.add_argument(
        "--feeds",
        type=int,
        metavar="N",
        help="poll: N distinct feed URLs (the corpus repeated); beyond the corpus size only the "
        "cold poll runs, for its memory",
    )
    parser.add_argument(
        "--postgres", action="store_true", help="poll: also poll into PostgreSQL, when reachable"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="PATH",
        help="poll: cProfile one more cold poll (parsing in-process) into PATH",
    )
    parser.add_argument(
        "--articles",
        type=_sizes,
        metavar="N[,N...]",
        help=f"search: archive sizes to load and query (default {search.DEFAULT_ARTICLES:,})",
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(
            f"unknown benchmark: {', '.join(unknown)} (choose from {', '.join(BENCHMARKS)})"
        )
    if args.feeds is not None and args.feeds < 1:
        parser.error("--feeds must be at least 1")
    return args


def _sizes(value: str) -> list[int]:
    """``--articles 100000,1000000``: one size or several, each at least 1,000."""
    try:
        sizes = [int(part.replace("_", "")) for part in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of articles: {value!r}") from None
    if any(size < 1000 for size in sizes):
        raise argparse.ArgumentTypeError("--articles takes sizes of at least 1000")
    return sizes


def write_json(path: Path, machine: str, tables: list[Table]) -> None:
    """The run's tables as JSON: a figure per row, a value per variant, and the notes."""
    document = {"machine": machine, "tables": [dataclasses.asdict(table) for table in tables]}
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str]) -> int:
    """Run the benchmarks named in ``argv`` (all when none) and print their tables."""
    args = parse_arguments(argv)
    options = poll.PollOptions(feeds=args.feeds, postgres=args.postgres, profile=args.profile)
    benchmarks: dict[str, Callable[[], list[Table]]] = {
        **BENCHMARKS,
        "poll": functools.partial(poll.run, options),
        "search": functools.partial(search.run, args.articles),
    }
    isolate_environment()
    # Piped output (make bench > file) gets room for the widest table instead of 80 columns.
    console = Console(highlight=False, width=None if sys.stdout.isatty() else OUTPUT_WIDTH)
    machine = describe_machine()
    console.print(machine, markup=False, soft_wrap=True)
    tables: list[Table] = []
    for name in args.names or list(BENCHMARKS):
        for table in benchmarks[name]():
            tables.append(table)
            console.print()
            console.print(Text(table.title, style="bold"))
            if table.rows:
                console.print(render(table))
            for note in table.notes:
                console.print(f"  {note}", markup=False, soft_wrap=True)
    if args.json is not None:
        write_json(args.json, machine, tables)
        console.print(f"\nfigures written to {args.json}", markup=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
