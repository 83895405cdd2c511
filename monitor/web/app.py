"""The HTTP app: the admin web UI (``pages.py``) and one-click unsubscribe (RFC 8058).

The app is built by ``create_app(settings, engine)``: the engine and settings are passed in,
never global, so tests and the CLI each run their own. Other front doors (the JSON API, Atom
feeds, self-service) add their routers with one ``app.include_router`` line each, below.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from jinja2 import Environment
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from monitor.delivery.render import load_templates, render_template
from monitor.delivery.subscriptions import unsubscribe
from monitor.delivery.tokens import (
    InvalidTokenError,
    UnsubscribeToken,
    load_secret_key,
    read_unsubscribe_token,
)
from monitor.models import Topic, utcnow
from monitor.settings import Settings
from monitor.sources.admission import HostResolver, system_addresses
from monitor.web.api import api_router
from monitor.web.article_page import article_routes
from monitor.web.atom import atom_router
from monitor.web.chart_pages import chart_routes
from monitor.web.digests import digest_router
from monitor.web.feed_pages import feed_routes
from monitor.web.inbox import inbox_routes
from monitor.web.pages import install_pages
from monitor.web.selfservice import selfservice_router
from monitor.web.subscriber_pages import subscriber_routes

PAGE = "unsubscribe.html"
# The token is a credential in the URL: keep it out of caches, referrers and search engines.
PRIVATE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
}


def create_app(
    settings: Settings,
    engine: Engine,
    *,
    env: Environment | None = None,
    clock: Callable[[], datetime] = utcnow,
    resolve: HostResolver = system_addresses,
) -> FastAPI:
    """The web app on ``engine``; templates are checked and the signing key loaded now."""
    env = env or load_templates(settings)
    check_pages(env)
    secret_key = load_secret_key(settings.web)
    app = FastAPI(title="monitor", docs_url=None, redoc_url=None, openapi_url=None)

    def page(status: int, **context: Any) -> HTMLResponse:
        html = render_template(env, PAGE, context)
        return HTMLResponse(html, status_code=status, headers=PRIVATE_HEADERS)

    def verified(token: str) -> UnsubscribeToken | None:
        try:
            return read_unsubscribe_token(secret_key, token)
        except InvalidTokenError:
            return None

    # Plain (not async) handlers: FastAPI runs them in a thread, off the event loop.
    @app.get("/unsubscribe/{token}", response_class=HTMLResponse)
    def confirm_unsubscribe(token: str) -> HTMLResponse:
        """Show what the link would end, with a button; change nothing (link scanners GET)."""
        found = verified(token)
        if found is None:
            return page(400, state="invalid")
        with Session(engine) as session:
            topics = topic_names(session, found.topic_ids)
        return page(200, state="confirm", topics=topics, action=f"/unsubscribe/{token}")

    @app.post("/unsubscribe/{token}", response_class=HTMLResponse)
    def do_unsubscribe(token: str) -> HTMLResponse:
        """End the subscriptions the token names; the body (List-Unsubscribe=One-Click, a
        form's, or none) does not matter."""
        found = verified(token)
        if found is None:
            return page(400, state="invalid")
        with Session(engine) as session, session.begin():
            ended = unsubscribe(
                session,
                subscriber_id=found.subscriber_id,
                topic_ids=found.topic_ids,
                now=clock(),
            )
            topics = topic_names(session, found.topic_ids)
        return page(200, state="done", topics=topics, ended=ended)

    web = install_pages(app, settings, engine, secret_key=secret_key, clock=clock, resolve=resolve)
    app.include_router(article_routes(web))
    app.include_router(chart_routes(web))
    app.include_router(feed_routes(web))
    app.include_router(subscriber_routes(web))
    app.include_router(inbox_routes(web))
    app.include_router(api_router(settings, engine, clock=clock, resolve=resolve))
    app.include_router(atom_router(engine, settings.web, clock=clock))
    app.include_router(selfservice_router(engine, env, secret_key, clock=clock))
    app.include_router(digest_router(settings, engine, env, secret_key))
    return app


def topic_names(session: Session, topic_ids: tuple[int, ...]) -> list[str]:
    """The names of the topics with these ids, by name."""
    if not topic_ids:
        return []
    statement = select(Topic.name).where(col(Topic.id).in_(topic_ids)).order_by(col(Topic.name))
    return list(session.exec(statement))


def check_pages(env: Environment) -> None:
    """Try the unsubscribe page in each state, so a broken override fails at start-up."""
    render_template(env, PAGE, {"state": "confirm", "topics": ["Sample"], "action": "/u/t"})
    render_template(env, PAGE, {"state": "done", "topics": ["Sample"], "ended": 1})
    render_template(env, PAGE, {"state": "invalid"})
