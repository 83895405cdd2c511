"""Tag articles with the topics they match, and store the matches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from monitor.db import dialect_insert
from monitor.models import Article, Match, Topic
from monitor.topics.matcher import Matcher, TopicRule, parse_keyword


@dataclass(frozen=True, slots=True)
class ArticleMatch:
    """A topic match for one article, ready to store."""

    article_id: int
    topic_id: int
    topic_slug: str
    topic_version: int
    score: float
    terms: tuple[str, ...]


def load_matcher(session: Session) -> Matcher:
    """Compile every enabled topic into one matcher."""
    topics = session.exec(select(Topic).where(col(Topic.enabled)).order_by(col(Topic.slug))).all()
    return Matcher(
        TopicRule(
            topic_id=topic.id or 0,
            slug=topic.slug,
            version=topic.version,
            keywords=tuple(parse_keyword(text) for text in topic.keywords),
        )
        for topic in topics
    )


def tag_articles(matcher: Matcher, articles: Sequence[Article]) -> list[ArticleMatch]:
    """The topics each article matches (title, summary and content are searched)."""
    matches = []
    for article in articles:
        body = f"{article.summary}\n\n{article.content}"
        for hit in matcher.match(article.title, body):
            matches.append(
                ArticleMatch(
                    article_id=article.id or 0,
                    topic_id=hit.topic_id,
                    topic_slug=hit.slug,
                    topic_version=hit.version,
                    score=hit.score,
                    terms=hit.terms,
                )
            )
    return matches


def save_matches(session: Session, matches: Sequence[ArticleMatch], *, now: datetime) -> int:
    """Store matches not stored yet; return how many were new."""
    if not matches:
        return 0
    rows = [
        {
            "article_id": match.article_id,
            "topic_id": match.topic_id,
            "topic_version": match.topic_version,
            "score": match.score,
            "terms": list(match.terms),
            "matched_at": now,
        }
        for match in matches
    ]
    statement = (
        dialect_insert(session, Match)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["article_id", "topic_id"])
        .returning(col(Match.article_id))
    )
    return len(session.execute(statement).all())
