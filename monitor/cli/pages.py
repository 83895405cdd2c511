"""``monitor extract`` (a page's article text, no database), ``monitor articles show`` and
``monitor articles refetch``: an article's text, where it came from, and its page's status."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from sqlmodel import Session, col, select

from monitor.cli.common import prepare, say, settings_of, user_errors
from monitor.errors import NotFoundError
from monitor.models import Article, ArticlePage, Feed, FetchPages, Match, Topic, utcnow
from monitor.operations import extract_article
from monitor.pages.queue import page_host, queue_pages, retry_pages
from monitor.pages.store import text_source_label
from monitor.text import article_text


class OutputFormat(StrEnum):
    """How ``monitor extract`` prints what it found."""

    TEXT = "text"
    JSON = "json"


@user_errors
def extract(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="An http(s) URL to fetch, or an HTML file.")],
    url: Annotated[
        str, typer.Option("--url", help="The page's address, for a file (resolves its links).")
    ] = "",
    output: Annotated[OutputFormat, typer.Option("--format", help="text or json.")] = (
        OutputFormat.TEXT
    ),
) -> None:
    """Extract a page's article text and metadata, as the poller does; stores nothing."""
    settings = settings_of(ctx)
    found = asyncio.run(extract_article(settings, source, url=url))
    page = found.page
    if output is OutputFormat.JSON:
        say(json.dumps({"url": found.url, **page.payload()}, ensure_ascii=False, indent=2))
        return
    for label, value in (
        ("title", page.title),
        ("author", page.author),
        ("published", _when(page.published_at)),
        ("language", page.language),
        ("canonical", page.canonical_url or ""),
        ("site", page.site_name),
        ("method", page.method),
        ("characters", str(len(page.text))),
    ):
        if value:
            say(f"{label + ':':12}{value}")
    say("")
    say(page.text)


@user_errors
def articles_show(
    ctx: typer.Context,
    article_id: Annotated[int, typer.Argument(help="The article (ids in `monitor search`).")],
) -> None:
    """Show one article: its text and where it came from (feed or page), its page's fetch
    status, and the topics it matched."""
    engine = prepare(ctx)
    with Session(engine) as session:
        article = session.get(Article, article_id)
        if article is None:
            raise NotFoundError(f"no article {article_id} (see `monitor articles list`)")
        feed = session.get(Feed, article.feed_id)
        page = session.get(ArticlePage, article_id)
        matches = session.exec(
            select(Match, Topic)
            .join(Topic, col(Topic.id) == Match.topic_id)
            .where(Match.article_id == article_id)
            .order_by(col(Topic.slug))
        ).all()
    lines: list[tuple[str, Any]] = [
        ("title", article.title),
        ("url", article.url),
        ("feed", feed.title or feed.url if feed else ""),
        ("author", article.author),
        ("language", article.language),
        ("published", _when(article.published_at)),
        ("first seen", _when(article.first_seen_at)),
        ("text from", text_source_label(article)),
    ]
    lines += _page_lines(page)
    for label, value in lines:
        if value:
            say(f"{label + ':':14}{value}")
    for match, topic in matches:
        say(f"{'matched:':14}{topic.slug} ({match.text_source} text): {', '.join(match.terms)}")
        if match.snippet:
            say(f"{'':14}{match.snippet}")
    say("")
    say(article_text(article.summary, article.content, article.body))


def _page_lines(page: ArticlePage | None) -> list[tuple[str, Any]]:
    if page is None:
        return [("page", "not fetched (its feed does not ask for pages, or it came first)")]
    status = f"{page.status}, {page.attempts} attempt{'s' if page.attempts != 1 else ''}"
    if page.status == "pending" and page.attempts:
        status += f", next {_when(page.next_attempt_at)}"
    return [
        ("page", status),
        ("page fetched", _when(page.fetched_at)),
        ("page error", page.reason or ""),
        ("page address", page.final_url if page.final_url != page.url else ""),
        ("canonical", page.canonical_url or ""),
    ]


@user_errors
def articles_refetch(
    ctx: typer.Context,
    article_ids: Annotated[list[int], typer.Argument(help="Articles whose pages to fetch again.")],
) -> None:
    """Make these articles' pages due now (failed or fetched ones too), attempts cleared."""
    engine = prepare(ctx)
    now = utcnow()
    with Session(engine) as session, session.begin():
        articles = list(session.exec(select(Article).where(col(Article.id).in_(article_ids))))
        usable = {article.id or 0 for article in articles if page_host(article.url)}
        missing = [str(article_id) for article_id in article_ids if article_id not in usable]
        if missing:
            raise NotFoundError(f"no article with an http(s) link: {', '.join(missing)}")
        # Asked for by name: queued whatever the feed's fetch_pages says.
        queue_pages(session, articles, mode=FetchPages.ALWAYS, auto_below=0, now=now)
        retry_pages(session, list(usable), now=now)
    for article_id in article_ids:
        say(f"page of article {article_id} due now (fetched on the next tick, or by `poll`)")


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""
