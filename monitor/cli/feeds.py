"""``monitor feeds``: list, add, import and export feeds; show one, check health, retry;
change, pause, resume and delete one."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlmodel import Session

from monitor.cli.common import prepare, say, settings_of, show, tell, user_errors
from monitor.errors import ConfigError, NotFoundError, UsageError
from monitor.ingest.prune import FeedRemoval, remove_feed
from monitor.models import FeedState, FetchPages, utcnow
from monitor.operations import feed_admission
from monitor.pages.health import page_health
from monitor.sources.feeds import (
    add_feed,
    get_feed,
    import_feeds,
    list_feeds,
    parse_interval,
    pause_feed,
    require_feed,
    retry_feeds,
    set_fetch_pages,
    update_feed,
)
from monitor.sources.health import explain_next_check, feed_health
from monitor.sources.opml import OpmlFeed, read_opml, write_opml
from monitor.sources.schedule import format_span
from monitor.text import shorten

# A title in a table is cut here (one feed's was 10,000 characters); `feeds show` has it whole.
TITLE_CHARS = 200

feeds_app = typer.Typer(
    help="List, add, import and export feeds; show one, check their health, retry them.",
    no_args_is_help=True,
)


@feeds_app.command("list")
@user_errors
def feeds_list(ctx: typer.Context) -> None:
    """List feeds with their state and last error."""
    engine = prepare(ctx)
    with Session(engine) as session:
        feeds = list_feeds(session)
    table = Table(show_header=True)
    for column in ("url", "title", "state", "errors", "last success", "last error"):
        table.add_column(column, overflow="fold")
    for feed in feeds:
        table.add_row(
            feed.url,
            shorten(feed.title, TITLE_CHARS),
            str(feed.state),
            str(feed.error_count),
            _when(feed.last_success_at),
            feed.last_error or (f"warning: {feed.last_warning}" if feed.last_warning else ""),
        )
    show(table)
    say(f"{len(feeds)} feeds")


@feeds_app.command("add")
@user_errors
def feeds_add(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="The feed's URL (RSS, Atom or RDF).")],
    title: Annotated[str, typer.Option(help="A title until the feed gives its own.")] = "",
) -> None:
    """Add a feed; it is polled on the next tick (or by `monitor poll`)."""
    settings = settings_of(ctx)
    engine = prepare(ctx)
    with Session(engine) as session, session.begin():
        existing = get_feed(session, url)
        checked = url.strip() if existing is not None else feed_admission(settings)(url)
        _, created = add_feed(
            session,
            url=checked,
            title=title,
            interval=settings.schedule.poll_interval,
            now=utcnow(),
        )
    say(f"{'added' if created else 'already there'}: {checked}")


@feeds_app.command("import-opml")
@user_errors
def feeds_import_opml(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="An OPML file, as exported by most feed readers.")],
) -> None:
    """Add every feed listed in an OPML file."""
    settings = settings_of(ctx)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read: {exc.strerror or exc}") from None
    outlines = read_opml(data, source=str(path))
    engine = prepare(ctx)
    with Session(engine) as session, session.begin():
        result = import_feeds(
            session,
            outlines,
            interval=settings.schedule.poll_interval,
            now=utcnow(),
            admit=feed_admission(settings),
        )
    say(f"{len(result.added)} added, {len(result.existing)} already there")
    for rejected in result.rejected:
        tell("skipped:", "yellow", rejected)


@feeds_app.command("export-opml")
@user_errors
def feeds_export_opml(
    ctx: typer.Context,
    path: Annotated[
        Path | None, typer.Argument(help="Write here instead of standard output.")
    ] = None,
) -> None:
    """Write every feed as OPML."""
    engine = prepare(ctx)
    with Session(engine) as session:
        outlines = [
            OpmlFeed(f.url, f.title, f.site_url, f.category, f.fetch_pages)
            for f in list_feeds(session)
        ]
    document = write_opml(outlines)
    if path is None:
        sys.stdout.buffer.write(document)
        return
    path.write_bytes(document)
    say(f"{len(outlines)} feeds written to {path}")


@feeds_app.command("show")
@user_errors
def feeds_show(
    ctx: typer.Context, url: Annotated[str, typer.Argument(help="The feed's URL.")]
) -> None:
    """Show one feed: state, errors, validators, and why its interval is what it is."""
    engine = prepare(ctx)
    with Session(engine) as session:
        feed = get_feed(session, url)
        if feed is None:
            raise NotFoundError(f"no such feed: {url.strip()} (see `monitor feeds list`)")
    hint = (
        f"{format_span_seconds(feed.hint_seconds)} ({feed.hint_source})"
        if feed.hint_seconds
        else "none"
    )
    rate = f"{feed.items_per_day:.1f}" if feed.items_per_day is not None else "unknown"
    lines = [
        ("url", feed.url),
        ("title", feed.title),
        ("state", str(feed.state)),
        ("disabled because", feed.disabled_reason or ""),
        ("error streak", str(feed.error_count)),
        ("last error", feed.last_error or ""),
        ("last warning", feed.last_warning or ""),
        ("last check", _when(feed.last_checked_at)),
        ("last success", _when(feed.last_success_at)),
        ("next check", _when(feed.next_check_at)),
        ("article pages", _pages_mode(feed.fetch_pages)),
        ("interval", format_span_seconds(feed.interval_seconds)),
        ("why", explain_next_check(feed)),
        ("items a day", rate),
        ("feed's own hint", hint),
        ("etag", feed.etag or ""),
        ("last modified", feed.last_modified or ""),
        ("last full fetch", _when(feed.last_full_fetch_at)),
    ]
    for label, value in lines:
        if value:
            say(f"{label + ':':18}{value}")


@feeds_app.command("health")
@user_errors
def feeds_health(ctx: typer.Context) -> None:
    """Every feed's state, last success, error streak, last error, interval, new items a day;
    flags feeds silent for much longer than usual."""
    settings = settings_of(ctx)
    engine = prepare(ctx)
    now = utcnow()
    with Session(engine) as session:
        rows = feed_health(session, now=now, silent_factor=settings.reports.silent_factor)
        hosts = [host for host in page_health(session, now=now) if host.failed]
    table = Table(show_header=True)
    columns = ("url", "state", "last success", "errors", "last error", "interval", "new/day", "")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        problem = row.disabled_reason if row.state == FeedState.DISABLED else row.last_error
        if not problem and row.warning:
            problem = f"warning: {row.warning}"
        table.add_row(
            row.url,
            str(row.state),
            _when(row.last_success_at) or "never",
            str(row.error_count),
            problem or "",
            format_span(row.interval),
            f"{row.new_per_day:.1f}",
            f"silent: {row.silent}" if row.silent else "",
        )
    show(table)
    counts = {state: sum(1 for r in rows if r.state == state) for state in FeedState}
    silent = sum(1 for r in rows if r.silent)
    say(
        f"{len(rows)} feeds: {counts[FeedState.ACTIVE]} active, "
        f"{counts[FeedState.ERRORING]} erroring, {counts[FeedState.DISABLED]} disabled, "
        f"{silent} silent"
    )
    if hosts:
        pages = Table(title="article pages failing, by host (last 24 h)", show_header=True)
        for column in ("host", "stored", "will retry", "given up", "last error", "when"):
            pages.add_column(column, overflow="fold")
        for host in hosts:
            pages.add_row(
                host.host,
                str(host.stored),
                str(host.retrying),
                str(host.given_up),
                host.last_reason or "",
                _when(host.last_failure_at),
            )
        show(pages)


@feeds_app.command("set")
@user_errors
def feeds_set(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="The feed's URL.")],
    fetch_pages: Annotated[
        FetchPages | None,
        typer.Option(
            "--fetch-pages",
            help="Fetch new articles' pages for their full text: auto (when the feed's text is "
            "short), always, never.",
        ),
    ] = None,
    title: Annotated[
        str | None, typer.Option(help="A title of your own, kept over the feed's ('' : its own).")
    ] = None,
    category: Annotated[str | None, typer.Option(help="A category (an OPML folder).")] = None,
    interval: Annotated[
        str | None,
        typer.Option(help="Check it every 30m, 2h, 1d, ... instead of adaptively; 'auto' again."),
    ] = None,
) -> None:
    """Change a feed's settings: article pages, title, category, interval."""
    if fetch_pages is None and title is None and category is None and interval is None:
        raise UsageError("nothing to change (see --help)")
    settings = settings_of(ctx)
    bounds = settings.schedule.min_interval, settings.schedule.max_interval
    every = parse_interval(interval, *bounds) if interval is not None else None
    engine = prepare(ctx)
    with Session(engine) as session, session.begin():
        feed = require_feed(session, url)
        changed = update_feed(session, feed, title=title, category=category, interval=every,
                              adaptive=interval is not None and every is None,
                              now=utcnow())  # fmt: skip
        if fetch_pages is not None:
            feed = set_fetch_pages(session, url, fetch_pages)
            changed.append(f"article pages {_pages_mode(feed.fetch_pages)}")
    say(f"{url.strip()}: {'; '.join(changed) or 'nothing changed'}")


@feeds_app.command("pause")
@user_errors
def feeds_pause(
    ctx: typer.Context, urls: Annotated[list[str], typer.Argument(help="Feed URLs to pause.")]
) -> None:
    """Stop polling feeds until `monitor feeds resume` (their articles stay)."""
    engine = prepare(ctx)
    with Session(engine) as session, session.begin():
        for url in urls:
            paused = pause_feed(session, require_feed(session, url), by="the CLI", now=utcnow())
            say(f"{'paused' if paused else 'already paused'}: {url.strip()}")


@feeds_app.command("resume")
@user_errors
def feeds_resume(
    ctx: typer.Context, urls: Annotated[list[str], typer.Argument(help="Feed URLs to resume.")]
) -> None:
    """Poll paused (or disabled) feeds again, due now."""
    engine = prepare(ctx)
    with Session(engine) as session, session.begin():
        rows = retry_feeds(session, urls=urls, now=utcnow())
        for row in rows:
            say(f"resumed: {row.url}")


@feeds_app.command("delete")
@user_errors
def feeds_delete(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="The feed's URL.")],
    keep_articles: Annotated[
        bool | None,
        typer.Option(
            "--keep-articles/--prune-articles",
            help="Keep the articles only it carried (searchable, in reports) or remove them; "
            "articles other feeds carried too stay either way. One of the two is required.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Delete a feed: it is no longer polled nor listed."""
    if keep_articles is None:
        raise UsageError("say what becomes of its articles: --keep-articles or --prune-articles")
    engine = prepare(ctx)
    with Session(engine) as session, session.begin():
        result = remove_feed(session, require_feed(session, url), keep_articles=keep_articles,
                             now=utcnow())  # fmt: skip
    say(f"deleted {url.strip()}: {removal_words(result)}")


def removal_words(result: FeedRemoval) -> str:
    """What deleting a feed did to its articles, in words."""
    return (
        f"{result.kept} articles kept, {result.pruned} pruned, "
        f"{result.moved} carried by other feeds too left to them"
    )


def _pages_mode(mode: str) -> str:
    return {
        FetchPages.AUTO: "auto (fetched when the feed's text is short)",
        FetchPages.ALWAYS: "always fetched",
        FetchPages.NEVER: "never fetched",
    }.get(FetchPages(mode), mode)


@feeds_app.command("retry")
@user_errors
def feeds_retry(
    ctx: typer.Context,
    urls: Annotated[list[str] | None, typer.Argument(help="Feed URLs to retry.")] = None,
    all_erroring: Annotated[
        bool, typer.Option("--all-erroring", help="Every erroring feed.")
    ] = False,
) -> None:
    """Re-enable feeds (erroring or disabled): active again, error streak cleared, due now."""
    if not urls and not all_erroring:
        raise UsageError("name a feed URL or use --all-erroring")
    engine = prepare(ctx)
    with Session(engine) as session, session.begin():
        rows = retry_feeds(session, urls=urls or [], all_erroring=all_erroring, now=utcnow())
        retried = [row.url for row in rows]
    for url in retried:
        say(f"retrying: {url}")
    say(f"{len(retried)} feeds due now (polled on the next tick, or by `monitor poll`)")


def format_span_seconds(seconds: int) -> str:
    """A number of seconds in at most two units."""
    return format_span(timedelta(seconds=seconds))


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""
