"""Run the benchmarks: ``python -m benchmarks`` for all, or name some (``poll parse``)."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Callable
from datetime import UTC, datetime

from rich import box
from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from benchmarks import digest, match, parse, poll, store, stories
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
}


def render(table: Table) -> RichTable:
    """A benchmark table as Rich draws it: a figure per row, a variant per column."""
    rich_table = RichTable(box=box.SIMPLE_HEAD)
    rich_table.add_column("figure")
    rich_table.add_column("unit")
    for variant in table.variants:
        rich_table.add_column(variant, justify="right")
    for row in table.rows:
        rich_table.add_row(row.label, row.unit, *(format_value(v) for v in row.values))
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


def main(argv: list[str]) -> int:
    """Run the benchmarks named in ``argv`` (all when none) and print their tables."""
    if any(arg in ("-h", "--help") for arg in argv):
        print(f"usage: python -m benchmarks [{' | '.join(BENCHMARKS)}] ...")
        return 0
    unknown = [name for name in argv if name not in BENCHMARKS]
    if unknown:
        names = ", ".join(BENCHMARKS)
        print(f"unknown benchmark: {', '.join(unknown)} (choose from {names})", file=sys.stderr)
        return 2
    isolate_environment()
    # Piped output (make bench > file) gets room for the widest table instead of 80 columns.
    console = Console(highlight=False, width=None if sys.stdout.isatty() else OUTPUT_WIDTH)
    console.print(describe_machine(), markup=False, soft_wrap=True)
    for name in argv or list(BENCHMARKS):
        for table in BENCHMARKS[name]():
            console.print()
            console.print(Text(table.title, style="bold"))
            if table.rows:
                console.print(render(table))
            for note in table.notes:
                console.print(f"  {note}", markup=False, soft_wrap=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
