"""Store what an article's page gave: its body, the page's facts, and the retag on the full text.

``store_body`` is the one function that writes or changes an article's body: whatever indexes
article text hooks in there. ``store_page`` records a prepared page: the body, the page row,
the matches made on the full text (each noting it came from the page), the story sketch of the
body's opening, and the page's canonical link, by which an article found to be a copy of
another joins that article's story.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, delete, literal, update
from sqlmodel import Session, SQLModel, col, select

from monitor.db import dialect_insert
from monitor.ingest.canonical import canonical_url_or_none, url_key_hash
from monitor.ingest.sketch import StoryRules
from monitor.ingest.stories import resketch_article
from monitor.models import Article, ArticlePage, Match, PageStatus, UTCDateTime
from monitor.pages.prepare import PreparedPage
from monitor.pages.queue import PageJob, release_page_lease
from monitor.topics.index import reindex_articles
from monitor.topics.matcher import TopicHit

ARTICLES = SQLModel.metadata.tables["article"]
PAGE_TEXT = "page"


@dataclass(frozen=True, slots=True)
class StoredPage:
    """What storing a page changed: matches new to the article, and the story it is in."""

    new_matches: int
    story_id: int | None
    copy_of: int | None = None


def text_source_label(article: Article) -> str:
    """Where an article's text comes from, in words: "page (trafilatura)" or "feed"."""
    if article.body:
        return f"page ({article.body_method})" if article.body_method else "page"
    return "feed"


def store_body(
    session: Session,
    *,
    article_id: int,
    body: str,
    method: str,
    author: str = "",
    language: str = "",
    published_at: datetime | None = None,
    detected_language: str = "",
) -> None:
    """Write an article's body and the extractor that found it; the byline, language and
    publication time the page gave fill only what the feed left empty, and the language
    detected from the body replaces the one detected from the teaser."""
    values: dict[str, object] = {"body": body, "body_method": method[:32]}
    if detected_language:
        values["detected_language"] = detected_language[:35]
    if author:
        values["author"] = case((ARTICLES.c.author == "", author), else_=ARTICLES.c.author)
    if language:
        values["language"] = case(
            (ARTICLES.c.language == "", language[:35]), else_=ARTICLES.c.language
        )
    if published_at is not None:
        when = literal(published_at, UTCDateTime())
        values["published_at"] = case(
            (ARTICLES.c.published_at.is_(None), when), else_=ARTICLES.c.published_at
        )
    session.execute(update(ARTICLES).where(ARTICLES.c.id == article_id).values(values))
    # The body is the text matching reads now: the index follows it in the same transaction.
    reindex_articles(session.connection(), [article_id])


def save_page_matches(
    session: Session,
    *,
    article_id: int,
    hits: Sequence[TopicHit],
    topic_ids: Collection[int],
    now: datetime,
) -> int:
    """Make the article's matches of ``topic_ids`` those of its full text; return how many are
    new. A match that stays keeps its first time (it is not news again) and takes the new
    words, score and snippet; a topic the full text no longer matches (its NOT clause found
    something in the body) loses its match."""
    existing = set(
        session.exec(
            select(Match.topic_id).where(
                Match.article_id == article_id, col(Match.topic_id).in_(list(topic_ids))
            )
        )
    )
    fresh = []
    for hit in hits:
        values = {
            "topic_version": hit.version,
            "score": hit.score,
            "terms": list(hit.terms),
            "spans": [[span.field, span.start, span.end] for span in hit.spans],
            "snippet": hit.snippet.text,
            "snippet_spans": [list(pair) for pair in hit.snippet.highlights],
            "text_source": PAGE_TEXT,
        }
        if hit.topic_id in existing:
            session.execute(
                update(Match)
                .where(col(Match.article_id) == article_id, col(Match.topic_id) == hit.topic_id)
                .values(**values)
            )
        else:
            fresh.append(
                {"article_id": article_id, "topic_id": hit.topic_id, "matched_at": now, **values}
            )
    gone = existing - {hit.topic_id for hit in hits}
    if gone:
        session.execute(
            delete(Match).where(
                col(Match.article_id) == article_id, col(Match.topic_id).in_(sorted(gone))
            )
        )
    if not fresh:
        return 0
    inserted = session.execute(
        dialect_insert(session, Match)
        .values(fresh)
        .on_conflict_do_nothing(index_elements=["article_id", "topic_id"])
        .returning(col(Match.article_id))
    )
    return len(inserted.all())


def copy_named_by(session: Session, article_id: int, canonical_hash: str | None) -> int | None:
    """Another article the page names as the same: keyed by its canonical link, or whose own
    page gave the same canonical link."""
    if canonical_hash is None:
        return None
    keyed = session.exec(
        select(Article.id).where(Article.key_hash == canonical_hash, col(Article.id) != article_id)
    ).first()
    if keyed is not None:
        return keyed
    return session.exec(
        select(ArticlePage.article_id)
        .where(
            ArticlePage.canonical_hash == canonical_hash,
            col(ArticlePage.article_id) != article_id,
        )
        .order_by(col(ArticlePage.article_id))
    ).first()


def store_page(
    session: Session,
    job: PageJob,
    prepared: PreparedPage,
    *,
    final_url: str,
    size: int,
    topic_ids: Collection[int],
    rules: StoryRules,
    now: datetime,
) -> StoredPage | None:
    """Record a fetched and prepared page (None when its article was pruned meanwhile)."""
    if session.get(Article, job.article_id) is None:
        return None
    page = prepared.page
    store_body(
        session,
        article_id=job.article_id,
        body=page.text,
        method=page.method,
        author=page.author,
        language=page.language,
        published_at=page.published_at,
        detected_language=prepared.detected_language,
    )
    canonical = page.canonical_url
    normalised = (
        canonical_url_or_none(canonical, tracking=rules.tracking_parameters)
        if (canonical)
        else None
    )
    canonical_hash = url_key_hash(normalised) if normalised else None
    session.execute(
        update(ArticlePage)
        .where(col(ArticlePage.article_id) == job.article_id)
        .values(
            status=PageStatus.DONE,
            attempts=job.attempts + 1,
            last_attempt_at=now,
            fetched_at=now,
            reason=None,
            http_status=200,
            final_url=final_url,
            canonical_url=canonical,
            canonical_hash=canonical_hash,
            title=page.title,
            author=page.author,
            language=page.language[:35],
            published_at=page.published_at,
            bytes=size,
        )
    )
    release_page_lease(session, job)
    new = save_page_matches(
        session, article_id=job.article_id, hits=prepared.hits, topic_ids=topic_ids, now=now
    )
    copy_of = copy_named_by(session, job.article_id, canonical_hash)
    story = resketch_article(
        session,
        article_id=job.article_id,
        sketch=prepared.sketch,
        first_bands=prepared.feed_sketch.bands if prepared.feed_sketch else (),
        now=now,
        rules=rules,
        copy_of=copy_of,
    )
    return StoredPage(new, story, copy_of)
