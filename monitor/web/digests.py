"""The page of one delivered digest, reached through the signed link of its e-mail: every story
the digest covers, those the e-mail had no room for (``digest.max_articles``) too.

A digest lists at most ``digest.max_articles`` stories, so that a busy day makes a readable
e-mail; the rest are counted under their topic and linked here, so nothing a reader was sent
is out of reach. The signed token names the delivery and its subscriber; it is the only
credential, as for unsubscribe links.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from jinja2 import Environment
from sqlalchemy import Engine
from sqlmodel import Session

from monitor.delivery.digest import load_digest
from monitor.delivery.render import Letterhead, compose_digest
from monitor.delivery.tokens import InvalidTokenError, read_digest_token
from monitor.models import Delivery
from monitor.settings import Settings

# Every story of one digest: a digest holds what one period matched, not an archive.
ALL_STORIES = 1_000_000
# The token is a credential in the URL: keep it out of caches, referrers and search engines.
PRIVATE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
}
_NOTICE = (
    '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>monitor</title></head>'
    "<body><p>{}</p></body></html>"
)


def digest_router(
    settings: Settings, engine: Engine, env: Environment, secret_key: str
) -> APIRouter:
    """The /digests/{token} page."""
    router = APIRouter(include_in_schema=False)
    letterhead = Letterhead.from_settings(settings)

    def notice(status: int, text: str) -> HTMLResponse:
        return HTMLResponse(_NOTICE.format(text), status_code=status, headers=PRIVATE_HEADERS)

    @router.get("/digests/{token}", response_class=HTMLResponse)
    def show(token: str) -> HTMLResponse:
        """Every story of the digest, as its e-mail shows them."""
        try:
            delivery_id, subscriber_id = read_digest_token(secret_key, token)
        except InvalidTokenError:
            return notice(400, "This link is not valid.")
        with Session(engine) as session:
            delivery = session.get(Delivery, delivery_id)
            if delivery is None or delivery.subscriber_id != subscriber_id:
                return notice(404, "This digest is no longer kept.")
            digest = load_digest(
                session,
                delivery_id,
                max_articles=ALL_STORIES,
                excerpt_chars=settings.digest.excerpt_chars,
            )
        html = compose_digest(env, digest, letterhead).rendered.html
        return HTMLResponse(html, headers=PRIVATE_HEADERS)

    return router
