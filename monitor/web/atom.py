"""Topic feeds: ``/topics/{slug}/feed.atom``, an Atom 1.0 feed (RFC 4287) of a topic's latest
matches, each story once.

A private topic's feed is served only with its secret token (``?token=``); with a wrong one
the answer is the same 404 as for a topic that does not exist. With ``web.public_reads`` off
(the default) every topic feed needs its own feed token, the API token (``Authorization:
Bearer``) or a signed-in session; a request with none of them is answered 401, whether the topic
exists or not.
"""

import hashlib
import hmac
import re
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy import Engine, not_
from sqlmodel import Session, col, select

from monitor.models import Article, Feed, Match, Story, Topic, utcnow
from monitor.settings import WebSettings
from monitor.untrusted import strip_controls
from monitor.web.pages import signed_in

ATOM_NS = "http://www.w3.org/2005/Atom"
MEDIA_TYPE = "application/atom+xml; charset=utf-8"
MAX_ENTRIES = 50
# Matches read to fill MAX_ENTRIES stories: copies of one story usually match together.
SCAN_ROWS = MAX_ENTRIES * 5
# Characters XML 1.0 cannot carry at all, not even escaped: feed text is stripped of them.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: str) -> str:
    """``value`` without the characters XML 1.0 forbids (ElementTree escapes the rest), nor
    controls and bidi overrides, which feed readers would show as they are."""
    return _NOT_XML.sub("", strip_controls(value))


@dataclass(frozen=True, slots=True)
class AtomEntry:
    """One story of a topic feed, told by its first-seen matching article."""

    key: str
    title: str
    url: str
    outlet: str
    author: str
    snippet: str
    terms: tuple[str, ...]
    published_at: datetime | None
    updated_at: datetime
    outlets: int


def latest_entries(session: Session, topic: Topic, limit: int = MAX_ENTRIES) -> list[AtomEntry]:
    """The topic's latest matched stories, newest match first, each story once; no backlog."""
    rows = session.exec(
        select(Match, Article, Feed, Story)
        .join(Article, col(Article.id) == Match.article_id)
        .join(Feed, col(Feed.id) == Article.feed_id)
        .join(Story, col(Story.id) == Article.story_id, isouter=True)
        .where(Match.topic_id == topic.id, not_(col(Article.backlog)))
        .order_by(col(Match.matched_at).desc(), col(Article.id).desc())
        .limit(SCAN_ROWS)
    ).all()
    groups: dict[str, list[tuple[Match, Article, Feed, Story | None]]] = {}
    for match, article, feed, story in rows:
        # An article stored before stories existed is a story of its own.
        key = f"story/{story.id}" if story is not None else f"article/{article.key_hash}"
        if key in groups or len(groups) < limit:
            groups.setdefault(key, []).append((match, article, feed, story))
    return [_entry(key, group) for key, group in groups.items()]


def _entry(key: str, group: Sequence[tuple[Match, Article, Feed, Story | None]]) -> AtomEntry:
    match, article, feed, story = min(group, key=lambda row: (row[1].first_seen_at, row[1].id))
    return AtomEntry(
        key=key,
        title=article.title or "(untitled)",
        url=article.url,
        outlet=feed.title or urlsplit(feed.url).hostname or feed.url,
        author=article.author,
        snippet=match.snippet,
        terms=tuple(match.terms),
        published_at=article.published_at,
        updated_at=max(row[0].matched_at for row in group),
        outlets=story.outlet_count if story is not None else 1,
    )


def render_atom(
    topic: Topic, entries: list[AtomEntry], *, base_url: str, self_url: str, now: datetime
) -> bytes:
    """The Atom 1.0 document of a topic feed; every value is escaped by ElementTree."""
    ET.register_namespace("", ATOM_NS)
    host = urlsplit(base_url).hostname or "localhost"
    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    _add(feed, "id", f"tag:{host},2024:monitor/topic/{topic.slug}")
    _add(feed, "title", f"{topic.name} · monitor")
    if topic.description:
        _add(feed, "subtitle", topic.description)
    updated = max((entry.updated_at for entry in entries), default=topic.updated_at or now)
    _add(feed, "updated", updated.isoformat())
    _add(_add(feed, "author"), "name", "monitor")
    _add(feed, "generator", "monitor")
    _link(feed, "self", self_url, MEDIA_TYPE.split(";")[0])
    _link(feed, "alternate", base_url.rstrip("/") + "/", "text/html")
    for entry in entries:
        element = _add(feed, "entry")
        _add(element, "id", f"tag:{host},2024:monitor/{entry.key}")
        _add(element, "title", entry.title)
        _add(element, "updated", entry.updated_at.isoformat())
        if entry.published_at is not None:
            _add(element, "published", entry.published_at.isoformat())
        if urlsplit(entry.url).scheme.lower() in ("http", "https"):
            _link(element, "alternate", entry.url, "text/html")
        _add(_add(element, "author"), "name", entry.author or entry.outlet)
        ET.SubElement(
            element, f"{{{ATOM_NS}}}category", term=topic.slug, label=xml_text(topic.name)
        )
        _add(element, "summary", _summary(entry)).set("type", "text")
    body: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return body


def _summary(entry: AtomEntry) -> str:
    parts = [entry.snippet.strip()]
    if entry.terms:
        parts.append(f"Matched: {', '.join(entry.terms)}")
    parts.append(
        entry.outlet
        if entry.outlets <= 1
        else f"{entry.outlet}, and {entry.outlets - 1} more outlets"
    )
    return "\n".join(part for part in parts if part)


def _add(parent: ET.Element, name: str, text: str | None = None) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ATOM_NS}}}{name}")
    if text is not None:
        element.text = xml_text(text)
    return element


def _link(parent: ET.Element, rel: str, href: str, media_type: str) -> None:
    ET.SubElement(parent, f"{{{ATOM_NS}}}link", rel=rel, href=xml_text(href), type=media_type)


def token_matches(topic: Topic, token: str | None) -> bool:
    """Whether ``token`` opens the topic's feed: any for a public topic, its own for a private."""
    if not topic.private:
        return True
    return own_token(topic, token)


def own_token(topic: Topic, token: str | None) -> bool:
    """Whether ``token`` is the topic's own feed token."""
    if not topic.feed_token or not token:
        return False
    return secrets.compare_digest(topic.feed_token.encode(), token.encode())


def atom_router(
    engine: Engine, web: WebSettings, *, clock: Callable[[], datetime] = utcnow
) -> APIRouter:
    """The /topics/{slug}/feed.atom route."""
    router = APIRouter(include_in_schema=False)
    base_url = web.base_url

    def not_found() -> Response:
        return PlainTextResponse("no such topic feed\n", status_code=404)

    def trusted(request: Request) -> bool:
        """A signed-in admin, or a caller with the API token: every feed is open to them."""
        given = request.headers.get("authorization", "")
        scheme, _, credentials = given.partition(" ")
        if (
            web.api_token
            and scheme.lower() == "bearer"
            and hmac.compare_digest(credentials.strip().encode(), web.api_token.encode())
        ):
            return True
        return signed_in(request)

    @router.get("/topics/{slug}/feed.atom")
    def topic_feed(
        slug: str, request: Request, token: Annotated[str | None, Query(max_length=200)] = None
    ) -> Response:
        """The topic's latest matched stories as Atom; 404 without a private topic's token."""
        is_trusted = trusted(request)
        if not (web.public_reads or token or is_trusted):
            # Asked before looking: the answer is the same whether the topic exists or not.
            return PlainTextResponse(
                "topic feeds need the topic's feed token (?token=), the API token or a "
                "sign-in: web.public_reads is off\n",
                status_code=401,
            )
        if "\x00" in slug or len(slug) > 100:
            return not_found()
        with Session(engine) as session:
            topic = session.exec(select(Topic).where(Topic.slug == slug)).first()
            if topic is None:
                return not_found()
            opened = own_token(topic, token)
            if not (opened or is_trusted or (web.public_reads and not topic.private)):
                return not_found()
            entries = latest_entries(session, topic)
        path = f"/topics/{quote(topic.slug)}/feed.atom"
        self_url = base_url.rstrip("/") + path + (f"?token={quote(token or '')}" if opened else "")
        body = render_atom(topic, entries, base_url=base_url, self_url=self_url, now=clock())
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        # A feed opened by a credential (a token in its URL, a session) is nobody else's: shared
        # caches and referrers must not keep it.
        shared = web.public_reads and not topic.private
        headers = {
            "ETag": etag,
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "public, max-age=300" if shared else "private, no-cache",
        }
        if not shared:
            headers["Referrer-Policy"] = "no-referrer"
        if etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type=MEDIA_TYPE, headers=headers)

    return router
