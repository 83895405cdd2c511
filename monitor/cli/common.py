"""What every command shares: printing, turning errors into one line, opening the database."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from monitor.errors import MonitorError
from monitor.models import utcnow
from monitor.operations import open_database, sync_config
from monitor.settings import Settings
from monitor.topics.query import QuerySyntaxError
from monitor.untrusted import strip_controls

P = ParamSpec("P")
R = TypeVar("R")

# Piped output is wide, so URLs stay whole for grep and scripts.
PIPE_WIDTH = 1000


def console(*, stderr: bool = False) -> Console:
    """A console on standard output (or error), wide when piped."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else PIPE_WIDTH)


def say(text: str) -> None:
    """Print a line of plain text (no markup: feed titles may contain brackets)."""
    console().print(strip_controls(text), markup=False, highlight=False, soft_wrap=True)


def show(renderable: RenderableType) -> None:
    """Print a table; its text cells without control characters or terminal escapes."""
    if isinstance(renderable, Table):
        # Cells hold feed text stored by older versions, or by nobody's parse edge at all:
        # an ANSI escape in a title would restyle (or rewrite) the user's terminal.
        for column in renderable.columns:
            column._cells = [_clean_cell(cell) for cell in column._cells]
    console().print(renderable)


def _clean_cell(cell: RenderableType) -> RenderableType:
    if isinstance(cell, str):
        return strip_controls(cell)
    if isinstance(cell, Text) and strip_controls(cell.plain) != cell.plain:
        return clean_rich_text(cell)
    return cell


def clean_rich_text(text: Text) -> Text:
    """``text`` without control characters, its styles (highlighted words) kept in place."""
    cuts = sorted({offset for span in text.spans for offset in (span.start, span.end)})
    cleaned = Text(style=text.style, justify=text.justify, overflow=text.overflow, end=text.end)
    # Each piece between two span edges is styled alike throughout: clean it, then restyle it.
    for piece in text.divide(cuts):
        start = len(cleaned)
        cleaned.append(strip_controls(piece.plain))
        for span in piece.spans:
            cleaned.stylize(span.style, start, len(cleaned))
    return cleaned


def tell(label: str, style: str, text: str) -> None:
    """Print a labelled line on standard error: ``error: ...``, ``failed URL: ...``."""
    line = Text.assemble((label, style), " ", strip_controls(text))
    console(stderr=True).print(line, highlight=False, soft_wrap=True)


def write_out(document: str) -> None:
    """Write a document (a report) to standard output, without control characters."""
    sys.stdout.write(strip_controls(document))


def user_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Print a MonitorError as one line and exit 1, instead of a traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except QuerySyntaxError as exc:
            # Show where: the query, a caret under the column, then the message.
            console(stderr=True).print(
                f"{exc.query}\n{' ' * exc.position}^", markup=False, highlight=False
            )
            tell("error:", "bold red", str(exc))
            raise typer.Exit(1) from None
        except MonitorError as exc:
            tell("error:", "bold red", str(exc))
            raise typer.Exit(1) from None
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
            tell("error:", "bold red", f"database: {reason}")
            raise typer.Exit(1) from None

    return wrapper


def settings_of(ctx: typer.Context) -> Settings:
    settings = ctx.obj
    assert isinstance(settings, Settings)
    return settings


def prepare(ctx: typer.Context) -> Engine:
    """Open the database (migrating it) and bring it in line with config/."""
    settings = settings_of(ctx)
    engine = open_database(settings)
    sync_config(engine, settings, now=utcnow())
    return engine
