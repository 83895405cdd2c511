"""One feed's page: its health and settings (title, category, interval, article pages), pause
and resume, retry now, delete (its articles kept or pruned, asked). The same functions as
``monitor feeds set / pause / resume / retry / delete``."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func
from sqlmodel import Session, select

from monitor.errors import MonitorError, UsageError
from monitor.ingest.prune import remove_feed
from monitor.models import Article, Feed, FeedState, FetchPages
from monitor.sources.feeds import (
    is_paused,
    parse_interval,
    pause_feed,
    retry_feeds,
    set_fetch_pages,
    update_feed,
)
from monitor.sources.health import explain_next_check
from monitor.sources.schedule import format_span
from monitor.web.csrf import notice_signature, notice_valid
from monitor.web.pages import AdminVisit, CheckedVisit, Visit, WebPages

PAGE_MODES = (("auto", "auto (when the feed's text is short)"), ("always", "always"),
              ("never", "never"))  # fmt: skip


def _form(feed: Feed) -> dict[str, Any]:
    interval = ""
    if feed.fixed_interval_seconds:
        interval = _span_text(feed.fixed_interval_seconds)
    return {"title": feed.title if feed.title_locked else "", "category": feed.category,
            "interval": interval or "auto", "fetch_pages": str(feed.fetch_pages)}  # fmt: skip


def _span_text(seconds: int) -> str:
    """Seconds as the shortest ``30m`` / ``2h`` / ``1d`` form parse_duration reads back."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def feed_routes(web: WebPages) -> APIRouter:
    """The ``/feeds/{id}`` pages."""
    router = APIRouter()

    def page(
        request: Request,
        visit: Visit,
        feed_id: int,
        status: int = 200,
        form: dict[str, Any] | None = None,
        errors: list[str] | None = None,
    ) -> Response:
        with Session(web.engine) as session:
            feed = session.get(Feed, feed_id)
            if feed is None or feed.state == FeedState.REMOVED:
                return web.render(request, visit, "error.html", 404, title="No such feed",
                                  message=f"There is no feed {feed_id}.")  # fmt: skip
            articles = session.exec(
                select(func.count()).select_from(Article).where(Article.feed_id == feed_id)
            ).one()
            return web.render(
                request, visit, "feed.html", status, feed=feed, form=form or _form(feed),
                errors=errors or [], articles=int(articles), paused=is_paused(feed),
                why=explain_next_check(feed), interval=format_span_seconds(feed.interval_seconds),
                modes=PAGE_MODES,
            )  # fmt: skip

    def done(request: Request, visit: Visit, target: str, notice: str) -> Response:
        # Post/redirect/get: a reload does not send the form again.
        sig = notice_signature(web.secret_key, notice)
        return web.redirect(request, visit, f"{target}?done={quote(notice)}&sig={sig}")

    @router.get("/feeds/{feed_id:int}", response_class=HTMLResponse)
    def show(
        request: Request, visit: AdminVisit, feed_id: int, done: str = "", sig: str = ""
    ) -> Response:
        """One feed: its health, its settings, and what can be done with it."""
        if done and notice_valid(web.secret_key, done, sig):
            visit.notices.append(done)
        return page(request, visit, feed_id)

    @router.post("/feeds/{feed_id:int}", response_class=HTMLResponse)
    def change(
        request: Request,
        visit: CheckedVisit,
        feed_id: int,
        title: Annotated[str, Form()] = "",
        category: Annotated[str, Form()] = "",
        interval: Annotated[str, Form()] = "auto",
        fetch_pages: Annotated[str, Form()] = "auto",
    ) -> Response:
        """Save the feed's title, category, interval and article-pages setting."""
        form = {"title": title, "category": category, "interval": interval,
                "fetch_pages": fetch_pages}  # fmt: skip
        schedule = web.settings.schedule
        try:
            every = parse_interval(interval or "auto", schedule.min_interval,
                                   schedule.max_interval)  # fmt: skip
            with Session(web.engine) as session, session.begin():
                feed = _live(session, feed_id)
                changed = update_feed(session, feed, title=title, category=category,
                                      interval=every, adaptive=every is None,
                                      now=web.clock())  # fmt: skip
                if fetch_pages != feed.fetch_pages:
                    set_fetch_pages(session, feed.url, fetch_pages)
                    changed.append(f"article pages {FetchPages(fetch_pages)}")
        except MonitorError as exc:
            return page(request, visit, feed_id, 400, form=form, errors=[str(exc)])
        return done(request, visit, f"/feeds/{feed_id}",
                    f"Saved: {'; '.join(changed)}." if changed else "Nothing changed.")  # fmt: skip

    @router.post("/feeds/{feed_id:int}/pause", response_class=HTMLResponse)
    def pause(request: Request, visit: CheckedVisit, feed_id: int) -> Response:
        """Stop polling the feed until it is resumed."""
        try:
            with Session(web.engine) as session, session.begin():
                feed = _live(session, feed_id)
                pause_feed(session, feed, by=visit.username or "an admin", now=web.clock())
        except MonitorError as exc:
            return page(request, visit, feed_id, 404, errors=[str(exc)])
        return done(request, visit, f"/feeds/{feed_id}", "Paused: it is not polled until resumed.")

    @router.post("/feeds/{feed_id:int}/retry", response_class=HTMLResponse)
    def retry(request: Request, visit: CheckedVisit, feed_id: int) -> Response:
        """Resume a paused (or disabled, or erroring) feed: active, error streak cleared, due
        now (polled on the service's next tick)."""
        try:
            with Session(web.engine) as session, session.begin():
                feed = _live(session, feed_id)
                retry_feeds(session, urls=[feed.url], now=web.clock())
        except MonitorError as exc:
            return page(request, visit, feed_id, 404, errors=[str(exc)])
        return done(request, visit, f"/feeds/{feed_id}",
                    "Due now: the service polls it on its next tick.")  # fmt: skip

    @router.post("/feeds/{feed_id:int}/delete", response_class=HTMLResponse)
    def delete(
        request: Request,
        visit: CheckedVisit,
        feed_id: int,
        articles: Annotated[str, Form()] = "",
    ) -> Response:
        """Delete the feed, its articles kept or pruned as the form says (it must say)."""
        try:
            if articles not in ("keep", "prune"):
                raise UsageError("Choose whether to keep or prune its articles.")
            with Session(web.engine) as session, session.begin():
                feed = _live(session, feed_id)
                url = feed.url
                result = remove_feed(session, feed, keep_articles=articles == "keep",
                                     now=web.clock())  # fmt: skip
        except MonitorError as exc:
            return page(request, visit, feed_id, 400, errors=[str(exc)])
        notice = (f"Deleted {url}: {result.kept} articles kept, {result.pruned} pruned, "
                  f"{result.moved} carried by other feeds too left to them.")  # fmt: skip
        return done(request, visit, "/feeds", notice)

    return router


def _live(session: Session, feed_id: int) -> Feed:
    feed = session.get(Feed, feed_id)
    if feed is None or feed.state == FeedState.REMOVED:
        raise UsageError(f"There is no feed {feed_id}.")
    return feed


def format_span_seconds(seconds: int) -> str:
    """A number of seconds in words (``15 minutes``)."""
    return format_span(timedelta(seconds=seconds))
