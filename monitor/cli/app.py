"""The ``monitor`` command: parse arguments, call an operation, print the outcome."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import Engine
from sqlmodel import Session

from monitor.cli.channels import channels_app
from monitor.cli.common import console, prepare, say, settings_of, show, tell, user_errors
from monitor.cli.deliveries import deliveries_app
from monitor.cli.feeds import feeds_app
from monitor.cli.index import index_app
from monitor.cli.pages import articles_refetch, articles_show, extract
from monitor.cli.prune import prune
from monitor.cli.reports import daily_report
from monitor.cli.subscriptions import subscribe, subscriptions_app, unsubscribe_command
from monitor.cli.topics import search, topics_app
from monitor.cli.users import users_app
from monitor.db import describe_engine, head_revision
from monitor.delivery.dispatch import preview_digests
from monitor.delivery.render import load_templates
from monitor.delivery.subscriptions import check_email, get_subscriber
from monitor.errors import ConfigError, NotFoundError, UsageError
from monitor.ingest.refresh import RefreshResult, RefreshStatus
from monitor.ingest.store import list_articles
from monitor.models import Frequency, utcnow
from monitor.operations import (
    fetch_pages,
    host_limits,
    open_database,
    poll_feeds,
    prepare_pool,
    send_digests,
    sync_config,
)
from monitor.pages.run import PageOutcome, PageResult
from monitor.runlock import hold_service_lock
from monitor.service import run_service, run_web
from monitor.settings import Settings, load_settings, parse_duration
from monitor.text import shorten
from monitor.topics.catalog import get_topic
from monitor.untrusted import web_url

app = typer.Typer(
    help="monitor: poll news feeds, tag articles against watched topics, e-mail digests.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
articles_app = typer.Typer(help="Browse stored articles.", no_args_is_help=True)
digest_app = typer.Typer(help="Send topic digests.", no_args_is_help=True)
app.add_typer(feeds_app, name="feeds")
app.add_typer(topics_app, name="topics")
app.add_typer(articles_app, name="articles")
app.add_typer(digest_app, name="digest")
app.add_typer(subscriptions_app, name="subscriptions")
app.add_typer(deliveries_app, name="deliveries")
app.add_typer(channels_app, name="channels")
app.add_typer(users_app, name="users")
app.add_typer(index_app, name="index")


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="monitor.toml, or the directory holding it "
            "[default: $MONITOR_CONFIG or config/monitor.toml]",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")] = False,
) -> None:
    """Load the configuration every command shares."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not verbose:
        # Their INFO lines (every request, every job run, every migration check) drown ours.
        for noisy in ("httpx", "apscheduler", "alembic"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        ctx.obj = load_settings(config)
    except ConfigError as exc:
        tell("error:", "bold red", str(exc))
        raise typer.Exit(1) from None


@app.command()
@user_errors
def init(ctx: typer.Context) -> None:
    """Create or migrate the database and load feeds, topics and subscriptions from config/."""
    settings = settings_of(ctx)
    engine = open_database(settings)
    synced = sync_config(engine, settings, now=utcnow())
    say(f"database  {describe_engine(engine)} at revision {head_revision()}")
    say(f"feeds     {len(synced.feeds.added)} added, {len(synced.feeds.existing)} already there")
    for rejected in synced.feeds.rejected:
        tell("skipped feed:", "yellow", rejected)
    topics = synced.topics
    say(
        f"topics    {len(topics.added)} added, {len(topics.updated)} updated, "
        f"{len(topics.unchanged)} unchanged"
    )
    subs = synced.subscriptions
    say(
        f"subscriptions  {subs.subscribers_added} new subscribers, "
        f"{subs.subscriptions_added} added, {subs.subscriptions_removed} removed"
    )
    for kept in subs.kept_unsubscribed:
        tell("kept unsubscribed:", "yellow", kept)
    channels = subs.channels
    if channels.added or channels.changed or channels.ended:
        say(
            f"channels  {len(channels.added)} added, {len(channels.changed)} changed, "
            f"{len(channels.ended)} ended"
        )
    for kept in channels.kept_disabled:
        tell("kept disabled:", "yellow", f"{kept} (`monitor channels enable` starts it again)")
    for made in channels.secrets_made:
        tell("signing secret made:", "yellow", made)
    say(f"mail      {_mail_route(settings)}")


@app.command()
@user_errors
def run(
    ctx: typer.Context,
    web: Annotated[
        bool, typer.Option("--web", help="Serve the web app on web.host:web.port too.")
    ] = False,
) -> None:
    """Run the service: poll due feeds and send due digests until SIGINT or SIGTERM."""
    logging.getLogger().setLevel(logging.INFO)
    settings = settings_of(ctx)
    env = load_templates(settings)  # a broken template is reported now, not at the first send
    # One service per SQLite file: a second one is refused before it touches anything.
    with hold_service_lock(settings.database.url):
        engine = prepare(ctx)
        # The web app (FastAPI and its pages) is imported only when served: a poller without
        # it starts faster and is some 70 MB smaller.
        from monitor.web import create_app

        application = create_app(settings, engine, env=env) if web else None
        started = _announce_web(ctx, engine) if web else None
        # SIGINT is handled inside the service; this catches one that lands before it starts.
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(
                run_service(engine, settings, web=application, templates=env, on_started=started)
            )


@app.command()
@user_errors
def poll(
    ctx: typer.Context,
    feed: Annotated[
        list[str] | None, typer.Option("--feed", help="Only this feed URL (repeatable).")
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Fetch feeds whose server asked to wait (Retry-After)."),
    ] = False,
    pages: Annotated[
        bool,
        typer.Option(
            "--pages/--no-pages", help="Then fetch the due article pages (bodies, full-text tags)."
        ),
    ] = True,
) -> None:
    """Refresh every active feed now (or only --feed), store and tag new articles; then fetch
    the pages of those whose feeds ask for them.

    Exits with status 1 when any feed failed (each is listed), 0 otherwise.
    """
    settings = settings_of(ctx)
    engine = prepare(ctx)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    progress_console = console(stderr=True)
    with Progress(
        *columns,
        console=progress_console,
        transient=True,
        disable=not progress_console.is_terminal,
    ) as progress:

        async def run() -> tuple[list[RefreshResult], list[PageResult]]:
            hosts = host_limits(settings)
            async with prepare_pool(settings) as pool:
                task = progress.add_task("polling", total=None)
                results = await poll_feeds(
                    engine,
                    settings,
                    urls=feed,
                    on_start=lambda total: progress.update(task, total=total),
                    on_done=lambda _result: progress.advance(task),
                    pool=pool,
                    hosts=hosts,
                    force=force,
                )
                if not pages:
                    return results, []
                pages_task = progress.add_task("pages", total=None)
                fetched = await fetch_pages(
                    engine,
                    settings,
                    pool=pool,
                    hosts=hosts,
                    on_start=lambda total: progress.update(pages_task, total=total),
                    on_done=lambda _result: progress.advance(pages_task),
                )
            return results, fetched

        results, page_results = asyncio.run(run())
    _print_poll_summary(results)
    if page_results:
        _print_pages_summary(page_results)
    if any(result.status is RefreshStatus.FAILED for result in results):
        raise typer.Exit(1)


def _print_poll_summary(results: list[RefreshResult]) -> None:
    counts = Counter(result.status for result in results)
    table = Table(title="poll", show_header=True)
    columns = ["feeds", "ok", "not modified", "failed", "new articles", "matches"]
    values = [
        len(results),
        counts[RefreshStatus.UPDATED],
        counts[RefreshStatus.NOT_MODIFIED] + counts[RefreshStatus.UNCHANGED],
        counts[RefreshStatus.FAILED],
        sum(r.new_articles for r in results),
        sum(r.matches for r in results),
    ]
    if counts[RefreshStatus.DEFERRED]:
        columns.insert(4, "deferred")
        values.insert(4, counts[RefreshStatus.DEFERRED])
    for column in columns:
        table.add_column(column, justify="right")
    table.add_row(*(str(value) for value in values))
    show(table)
    for result in results:
        if result.status is RefreshStatus.FAILED:
            tell("failed", "red", f"{result.feed_url}: {result.error}")
        elif result.status is RefreshStatus.DEFERRED:
            tell("deferred", "yellow", f"{result.feed_url}: {result.warning}")
        elif result.warning:
            tell("malformed", "yellow", f"{result.feed_url}: {result.warning}")


def _print_pages_summary(results: list[PageResult]) -> None:
    counts = Counter(result.outcome for result in results)
    table = Table(title="article pages", show_header=True)
    for column in ("pages", "stored", "will retry", "failed", "new matches"):
        table.add_column(column, justify="right")
    table.add_row(
        str(len(results)),
        str(counts[PageOutcome.STORED]),
        str(counts[PageOutcome.RETRYING]),
        str(counts[PageOutcome.FAILED]),
        str(sum(r.new_matches for r in results)),
    )
    show(table)
    for result in results:
        if result.outcome is not PageOutcome.STORED:
            label = "page failed" if result.outcome is PageOutcome.FAILED else "page will retry"
            tell(label, "yellow", f"{result.url}: {result.reason}")


@articles_app.command("list")
@user_errors
def articles_list(
    ctx: typer.Context,
    topic: Annotated[
        str | None, typer.Option(help="Only articles matching this topic slug.")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only articles first seen this recently, as 1d or 6h.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many.")] = 50,
) -> None:
    """List the newest stored articles."""
    cutoff = utcnow() - parse_duration(since) if since else None
    engine = prepare(ctx)
    with Session(engine) as session:
        topic_id = None
        if topic is not None:
            found = get_topic(session, topic)
            if found is None:
                raise NotFoundError(f"no topic {topic!r} (see `monitor topics list`)")
            topic_id = found.id
        rows = list_articles(session, since=cutoff, topic_id=topic_id, limit=limit)
    table = Table(show_header=True)
    for column in ("first seen", "published", "topics", "title", "url"):
        table.add_column(column, overflow="fold")
    for article, slugs in rows:
        link = web_url(article.url)  # only http(s): never a javascript: "link" to copy
        published = _when(article.published_at)
        if article.backlog:
            # Published well before monitor saw it: stored, but counted and sent nowhere.
            published = f"{published} (backlog)".strip()
        title = shorten(article.title, 200)
        table.add_row(_when(article.first_seen_at), published, ", ".join(slugs), title, link)
    show(table)
    say(f"{len(rows)} articles")


@digest_app.command("send")
@user_errors
def digest_send(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be sent; send and record nothing.")
    ] = False,
    to: Annotated[
        str | None, typer.Option("--to", help="Only the subscriber with this address.")
    ] = None,
) -> None:
    """Send each subscriber a digest now of the matches they have not received yet."""
    settings = settings_of(ctx)
    email = check_email(to) if to else None
    env = load_templates(settings)
    engine = prepare(ctx)
    if dry_run:
        previews = preview_digests(engine, settings, env, now=utcnow(), email=email)
        for preview in previews:
            say(f"would send to {preview.email}: {preview.rendered.subject}")
        if not previews:
            say("nothing new to send")
        return
    report = asyncio.run(send_digests(engine, settings, scheduled=False, email=email))
    for address in report.sent:
        say(f"sent to {address} via {_mail_route(settings)}")
    for line in report.sent_channels:
        say(f"sent to {line}")
    for line in report.retrying:
        tell("will retry", "yellow", line)
    for line in report.failed:
        tell("failed", "red", line)
    if not (report.sent or report.sent_channels or report.retrying or report.failed):
        say("nothing new to send")
    for line in report.waiting:
        tell("waiting", "yellow", line)
    if report.failed or report.retrying:
        raise typer.Exit(1)


@digest_app.command("preview")
@user_errors
def digest_preview(
    ctx: typer.Context,
    subscriber: Annotated[str, typer.Option("--subscriber", help="The subscriber's address.")],
    out: Annotated[Path, typer.Option("--out", help="Write the HTML part to this file.")],
    period: Annotated[
        Frequency | None,
        typer.Option("--period", help="Only the subscriptions of this frequency, as their digest."),
    ] = None,
) -> None:
    """Render the digest a subscriber would get now (its HTML part); send and record nothing."""
    settings = settings_of(ctx)
    email = check_email(subscriber)
    env = load_templates(settings)
    engine = prepare(ctx)
    with Session(engine) as session:
        if get_subscriber(session, email) is None:
            raise NotFoundError(f"no subscriber {email!r} (see config/subscriptions.yaml)")
    frequency = period.value if period is not None else None
    previews = preview_digests(
        engine, settings, env, now=utcnow(), email=email, frequency=frequency
    )
    if not previews:
        say(f"nothing new for {email}: no e-mail would be sent")
        return
    try:
        out.write_text(previews[0].rendered.html, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
    say(f"wrote {out}: {previews[0].rendered.subject}")


@app.command("web")
@user_errors
def web(ctx: typer.Context) -> None:
    """Serve the web app (admin pages, one-click unsubscribe links) on web.host:web.port."""
    settings = settings_of(ctx)
    env = load_templates(settings)
    engine = prepare(ctx)
    from monitor.web import create_app

    application = create_app(settings, engine, env=env)
    logging.getLogger().setLevel(logging.INFO)
    # SIGINT is handled inside; this catches one that lands before it starts.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_web(application, settings, on_started=_announce_web(ctx, engine)))


def _announce_web(ctx: typer.Context, engine: Engine) -> Callable[[], None]:
    """Print the web app's URL (and how to add the first admin) once it listens."""
    from monitor.web.firstrun import first_run_lines, monitor_command

    root = ctx.find_root()
    config = root.params.get("config")
    command = monitor_command(config if isinstance(config, Path) else None)

    def announce() -> None:
        for line in first_run_lines(settings_of(ctx).web, engine, command=command):
            say(line)

    return announce


def _mail_route(settings: Settings) -> str:
    mail = settings.mail
    return f"SMTP {mail.smtp_host}:{mail.smtp_port}" if mail.uses_smtp() else str(mail.outbox_dir)


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""


app.command("search")(search)
app.command("report")(daily_report)
app.command("prune")(prune)
app.command("subscribe")(subscribe)
app.command("unsubscribe")(unsubscribe_command)
app.command("extract")(extract)
articles_app.command("show")(articles_show)
articles_app.command("refetch")(articles_refetch)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="monitor")
