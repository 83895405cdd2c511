"""``monitor topics ...`` and ``monitor search``: write, test and explain topic queries."""

from __future__ import annotations

import sys
from datetime import datetime
from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text
from sqlmodel import Session

from monitor.cli.common import prepare, say, settings_of, show, user_errors
from monitor.errors import NotFoundError, UsageError
from monitor.exports import csv_text, json_value
from monitor.models import Article, Feed, TopicPriority, utcnow
from monitor.operations import retag_pending_topics
from monitor.settings import parse_duration
from monitor.text import shorten
from monitor.topics.catalog import apply_changes, create_topic, list_topics, require_topic
from monitor.topics.matcher import Span, explain
from monitor.topics.query import Node, parse_query
from monitor.topics.results import COLUMNS, record_row, sample_record
from monitor.topics.tagging import Backtest, Sample, article_view, backtest, topic_rule
from monitor.untrusted import web_url

topics_app = typer.Typer(
    help="Watched topics: list, test a query, explain a match, add, edit, disable.",
    no_args_is_help=True,
)

QueryArgument = Annotated[
    str, typer.Argument(help="A query, as '(russia* OR kremlin) AND elect*'.")
]
SinceOption = Annotated[str, typer.Option(help="Look at articles first seen this recently.")]
LimitOption = Annotated[int, typer.Option(min=1, help="Show at most this many articles.")]


class OutputFormat(StrEnum):
    """How search and topics test print their results."""

    TABLE = "table"
    JSON = "json"
    CSV = "csv"


def output_format(value: str) -> OutputFormat:
    """The format ``--format`` names; UsageError (one line) for any other word."""
    try:
        return OutputFormat(value.strip().lower())
    except ValueError:
        choices = ", ".join(choice.value for choice in OutputFormat)
        raise UsageError(f"--format: {value!r} is not one of {choices}") from None


# A plain string checked by output_format: a bad word is a one-line error, as every other is.
FormatOption = Annotated[
    str,
    typer.Option(
        "--format",
        help="table (for people, with each article's URL), json (one JSON document: the "
        "counts per day and the articles) or csv (a header line, then one line per article; "
        "cells that a spreadsheet would read as a formula start with a quote).",
    ),
]


def _highlighted(text: str, ranges: list[tuple[int, int]]) -> Text:
    line = Text(text)
    for start, end in ranges:
        line.stylize("bold black on yellow", start, end)
    return line


def _sample_table(samples: list[Sample]) -> Table:
    table = Table(show_header=True, expand=False)
    for column in ("first seen", "id", "article"):
        table.add_column(column, overflow="fold")
    for sample in samples:
        title_ranges = [(s.start, s.end) for s in sample.hit.spans if s.field == "title"]
        body = _highlighted(shorten(sample.article.title, 200), title_ranges)
        body.append(f"\n{shorten(sample.feed.title or sample.feed.url, 200)}", style="dim")
        if sample.hit.snippet.text:
            body.append("\n")
            body.append(_highlighted(sample.hit.snippet.text, list(sample.hit.snippet.highlights)))
        if sample.article.backlog:
            body.append("\nbacklog (published well before first seen)", style="dim")
        # Last, so the title, feed and snippet keep their lines; plain, so terminals link it.
        url = web_url(sample.article.url)
        if url:
            body.append(f"\n{url}")
        table.add_row(sample.article.first_seen_at.strftime("%Y-%m-%d %H:%M"),
                      str(sample.article.id), body)  # fmt: skip
    return table


def _print_backtest(result: Backtest, since: datetime) -> None:
    say(f"{result.total} of {result.scanned} articles first seen since "
        f"{since:%Y-%m-%d %H:%M} UTC match")  # fmt: skip
    if result.per_day:
        days = Table(show_header=True)
        days.add_column("day")
        days.add_column("matches", justify="right")
        peak = max(result.per_day.values())
        days.add_column("")
        for day, count in result.per_day.items():
            days.add_row(day.isoformat(), str(count), "█" * max(1, round(20 * count / peak)))
        show(days)
    if result.samples:
        show(_sample_table(result.samples))


def backtest_document(node: Node, result: Backtest, since: datetime) -> dict[str, object]:
    """The JSON document of a search: the query, the counts per day and the articles."""
    return {
        "query": str(node),
        "since": since,
        "scanned": result.scanned,
        "total": result.total,
        "per_day": {day.isoformat(): count for day, count in result.per_day.items()},
        "articles": [sample_record(sample) for sample in result.samples],
    }


def _run_query(ctx: typer.Context, query: str, since: str, limit: int, chosen: str) -> None:
    output = output_format(chosen)
    node = parse_query(query)
    cutoff = utcnow() - parse_duration(since)
    engine = prepare(ctx)
    with Session(engine) as session:
        result = backtest(session, node, since=cutoff, limit=limit)
    if output == OutputFormat.JSON:
        sys.stdout.write(json_value(backtest_document(node, result, cutoff)) + "\n")
    elif output == OutputFormat.CSV:
        rows = (record_row(sample_record(sample)) for sample in result.samples)
        sys.stdout.write(csv_text(COLUMNS, rows))
    else:
        _print_backtest(result, cutoff)


@topics_app.command("test")
@user_errors
def topics_test(
    ctx: typer.Context,
    query: QueryArgument,
    since: SinceOption = "30d",
    limit: LimitOption = 20,
    output: FormatOption = OutputFormat.TABLE.value,
) -> None:
    """Try a query on stored articles without saving: matches per day and the newest ones."""
    _run_query(ctx, query, since, limit, output)


@user_errors
def search(
    ctx: typer.Context,
    query: QueryArgument,
    since: SinceOption = "30d",
    limit: LimitOption = 20,
    output: FormatOption = OutputFormat.TABLE.value,
) -> None:
    """Search stored articles with the topic query language, newest first."""
    _run_query(ctx, query, since, limit, output)


@topics_app.command("list")
@user_errors
def topics_list(ctx: typer.Context) -> None:
    """List topics with their query, priority and version."""
    engine = prepare(ctx)
    with Session(engine) as session:
        topics = list_topics(session)
    table = Table(show_header=True)
    for column in ("slug", "name", "enabled", "priority", "version", "query"):
        table.add_column(column, overflow="fold", no_wrap=column == "slug")
    for topic in topics:
        table.add_row(topic.slug, topic.name, "yes" if topic.enabled else "no",
                      str(topic.priority), str(topic.version), topic.query)  # fmt: skip
    show(table)


@topics_app.command("explain")
@user_errors
def topics_explain(
    ctx: typer.Context,
    slug: Annotated[str, typer.Argument(help="The topic.")],
    article_id: Annotated[int, typer.Argument(help="The article (ids in `monitor search`).")],
) -> None:
    """Show which clauses of a topic's query match an article, and where."""
    engine = prepare(ctx)
    with Session(engine) as session:
        topic = require_topic(session, slug)
        article = session.get(Article, article_id)
        if article is None:
            raise NotFoundError(f"no article {article_id}")
        feed = session.get(Feed, article.feed_id)
        view = article_view(
            article, feed_title=feed.title if feed else "", feed_url=feed.url if feed else ""
        )
        lines = explain(topic_rule(topic), view)
    say(f"{topic.slug} (version {topic.version}): {topic.query}")
    say(f"article {article_id}: {article.title}")
    for line in lines:
        mark = Text("✓ " if line.matched else "✗ ", style="green" if line.matched else "red")
        row = Text("  " * line.depth).append(mark).append(line.clause)
        if line.spans:
            row.append("  " + _where(line.spans, view.title, view.text), style="dim")
        show(row)
    verdict = "matches" if lines and lines[0].matched else "does not match"
    say(f"the topic {verdict} this article")


def _where(spans: tuple[Span, ...], title: str, text: str) -> str:
    places = []
    for span in spans[:3]:
        source = title if span.field == "title" else text
        places.append(f"{span.field} {span.start}: “{source[span.start : span.end]}”")
    more = f" and {len(spans) - 3} more" if len(spans) > 3 else ""
    return "; ".join(places) + more


def _retag_now(ctx: typer.Context) -> None:
    settings = settings_of(ctx)
    engine = prepare(ctx)
    for slug, matched in retag_pending_topics(engine, settings, now=utcnow()).items():
        window = settings.topics.retag_window.days
        say(f"retagged {slug}: {matched} articles of the last {window} days match")


PriorityOption = Annotated[
    TopicPriority | None, typer.Option(help="high: instant subscribers hear at once.")
]


@topics_app.command("add")
@user_errors
def topics_add(
    ctx: typer.Context,
    slug: Annotated[str, typer.Argument(help="Lower-case letters, digits and hyphens.")],
    query: Annotated[str, typer.Option("--query", "-q", help="The topic's query.")],
    name: Annotated[str, typer.Option(help="A name for people (default: the slug).")] = "",
    description: Annotated[str, typer.Option(help="What the topic is about.")] = "",
    priority: PriorityOption = None,
) -> None:
    """Add a topic (the query is checked first) and tag the recent articles with it."""
    engine = prepare(ctx)
    with Session(engine) as session, session.begin():
        create_topic(session, slug=slug, name=name, query=query, description=description,
                     priority=priority or TopicPriority.NORMAL, now=utcnow())  # fmt: skip
    say(f"added topic {slug}")
    _retag_now(ctx)


@topics_app.command("edit")
@user_errors
def topics_edit(
    ctx: typer.Context,
    slug: Annotated[str, typer.Argument(help="The topic to change.")],
    query: Annotated[str | None, typer.Option("--query", "-q", help="A new query.")] = None,
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    description: Annotated[str | None, typer.Option(help="A new description.")] = None,
    priority: PriorityOption = None,
    enable: Annotated[
        bool | None, typer.Option("--enable/--disable", help="Tag with it, or stop.")
    ] = None,
) -> None:
    """Change a topic; a new query is checked, bumps the version and retags recent articles."""
    engine = prepare(ctx)
    with Session(engine) as session, session.begin():
        topic = require_topic(session, slug)
        # An empty --query is a query too (and refused), not the absence of one.
        new_query = query.strip() if query is not None else None
        changed = apply_changes(
            topic, query=new_query, name=name, description=description,
            priority=priority, enabled=enable, now=utcnow(),
        )  # fmt: skip
        session.add(topic)
        version = topic.version
    say(f"{'updated' if changed else 'nothing to change in'} topic {slug} (version {version})")
    _retag_now(ctx)


@topics_app.command("disable")
@user_errors
def topics_disable(
    ctx: typer.Context, slug: Annotated[str, typer.Argument(help="The topic to stop.")]
) -> None:
    """Stop tagging with a topic; its matches so far are kept."""
    engine = prepare(ctx)
    with Session(engine) as session, session.begin():
        topic = require_topic(session, slug)
        apply_changes(topic, enabled=False, now=utcnow())
        session.add(topic)
    say(f"disabled topic {slug}")


@topics_app.command("retag")
@user_errors
def topics_retag(ctx: typer.Context) -> None:
    """Retag recent articles for every topic whose query changed (the service does this too)."""
    _retag_now(ctx)
