"""The article page: the whole stored text (the page's body when it was fetched, and the feed's
own text), its language, its story with the other outlets' copies, where it was seen, and why
each topic matched, with the matched words marked in the text itself.

Stored text is plain text (the parse edge and the extractor keep no markup), so it reaches the
page only escaped: paragraphs are split here and each is escaped by ``highlight``; marks are
the only tags added. Links are shown only when they are http(s).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from sqlmodel import Session, col, select

from monitor.models import Article, ArticlePage, Feed, Match, Sighting, Story, Topic
from monitor.pages.store import text_source_label
from monitor.text import article_text
from monitor.topics.matcher import TEXT, Matcher, TopicHit, explain
from monitor.topics.tagging import article_view, topic_rule
from monitor.web.pages import AdminVisit, WebPages, highlight

STORY_COPIES = 50


@dataclass(frozen=True, slots=True)
class TextBlock:
    """One stored text of the article, as paragraphs with the matched words marked."""

    kind: str  # "page" or "feed"
    heading: str
    characters: int
    paragraphs: list[Markup]
    marks: int


def paragraphs(text: str, ranges: Sequence[tuple[int, int]]) -> list[Markup]:
    """``text`` split at blank lines, each paragraph escaped with the ``ranges`` (offsets in
    ``text``) that fall inside it marked."""
    out: list[Markup] = []
    at = 0
    for part in text.split("\n\n"):
        start, end = at, at + len(part)
        at = end + 2
        if not part.strip():
            continue
        inside = [(a - start, b - start) for a, b in ranges if a >= start and b <= end]
        out.append(highlight(part, inside))
    return out


def _text_ranges(hits: Sequence[TopicHit], limit: int) -> list[tuple[int, int]]:
    """The character ranges of the hits' spans in the text field, below ``limit``."""
    ranges = {
        (span.start, span.end)
        for hit in hits
        for span in hit.spans
        if span.field == TEXT and span.end <= limit
    }
    return sorted(ranges)


def text_blocks(article: Article, feed: Feed | None, topics: Sequence[Topic]) -> list[TextBlock]:
    """The page body (when fetched) and the feed's text, each marked where ``topics`` match."""
    title, url = (feed.title, feed.url) if feed else ("", "")
    matcher = Matcher(topic_rule(topic) for topic in topics)
    view = article_view(article, feed_title=title, feed_url=url)
    blocks = []
    body = article.body.strip()
    if body:
        # The matcher reads the body first, then what of the feed's text the body lacks.
        hits = matcher.match(view)
        ranges = _text_ranges(hits, len(body))
        method = f", extracted by {article.body_method}" if article.body_method else ""
        blocks.append(TextBlock("page", f"From the article's page{method}", len(body),
                                paragraphs(body, ranges), len(ranges)))  # fmt: skip
    feed_text = article_text(article.summary, article.content)
    if feed_text:
        hits = matcher.match(replace(view, text=feed_text))
        ranges = _text_ranges(hits, len(feed_text))
        blocks.append(TextBlock("feed", "From the feed", len(feed_text),
                                paragraphs(feed_text, ranges), len(ranges)))  # fmt: skip
    return blocks


def article_routes(web: WebPages) -> APIRouter:
    """The ``/articles/{id}`` page."""
    router = APIRouter()

    @router.get("/articles/{article_id}", response_class=HTMLResponse)
    def article(request: Request, visit: AdminVisit, article_id: int) -> Response:
        """One article: its whole text, where it was seen, its story, and why it matched."""
        with Session(web.engine) as session:
            found = session.get(Article, article_id)
            if found is None:
                return web.render(request, visit, "error.html", 404, title="No such article",
                                  message=f"There is no article {article_id}.")  # fmt: skip
            context = article_context(session, found)
        return web.render(request, visit, "article.html", article=found, **context)

    return router


def article_context(session: Session, article: Article) -> dict[str, Any]:
    """What the article page shows besides the article row."""
    feed = session.get(Feed, article.feed_id)
    sightings = session.exec(
        select(Sighting, Feed)
        .join(Feed, col(Feed.id) == Sighting.feed_id)
        .where(Sighting.article_id == article.id)
        .order_by(col(Sighting.first_seen_at))
    ).all()
    view = article_view(article, feed_title=feed.title if feed else "",
                        feed_url=feed.url if feed else "")  # fmt: skip
    matches = []
    topics = []
    for match, topic in session.exec(
        select(Match, Topic)
        .join(Topic, col(Topic.id) == Match.topic_id)
        .where(Match.article_id == article.id)
        .order_by(col(Topic.slug))
    ):
        matches.append({"match": match, "topic": topic, "why": explain(topic_rule(topic), view)})
        topics.append(topic)
    return {"feed": feed, "sightings": sightings, "matches": matches,
            "story": _story(session, article), "page": session.get(ArticlePage, article.id),
            "text": view.text, "text_source": text_source_label(article),
            "blocks": text_blocks(article, feed, topics)}  # fmt: skip


def _story(session: Session, article: Article) -> dict[str, Any] | None:
    """The article's story and its other articles (the other outlets' copies), oldest first,
    each with the feed that carried it first."""
    if article.story_id is None:
        return None
    story = session.get(Story, article.story_id)
    if story is None:
        return None
    others = session.exec(
        select(Article, Feed)
        .join(Feed, col(Feed.id) == Article.feed_id)
        .where(Article.story_id == story.id, col(Article.id) != article.id)
        .order_by(col(Article.first_seen_at))
        .limit(STORY_COPIES)
    ).all()
    copies = [
        {"article": other, "outlet": outlet.title or outlet.url,
         "same_outlet": outlet.id == article.feed_id}
        for other, outlet in others
    ]  # fmt: skip
    return {"story": story, "title": story.title or article.title, "copies": copies}
