"""Review state: set an article's state and note for a topic, read its history, count what is
left. Beside the pipeline (DESIGN.md): it reads matches, and nothing downstream reads it back.

Concurrency: the last write wins and every write is in the history. A change takes the row's
lock first (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's write transactions are serial
already), so each event's "before" is exactly what the change replaced and event ids follow
the order in which changes were committed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, not_
from sqlmodel import Session, col, select

from monitor.db import dialect_insert
from monitor.errors import NotFoundError, UsageError
from monitor.models import Article, Match, Review, ReviewEvent, ReviewState

MAX_NOTE_CHARS = 10_000
MAX_REVIEWER_CHARS = 150
# One request may change at most this many articles (a day's inbox of a busy topic).
MAX_BULK = 1000
# The states that count as "reviewed" in "12 of 40 reviewed": someone looked at the article.
DONE_STATES = (ReviewState.REVIEWED, ReviewState.FLAGGED, ReviewState.DISMISSED)


@dataclass(frozen=True, slots=True)
class ReviewCounts:
    """How many of a topic's matched articles are in each state."""

    total: int = 0
    new: int = 0
    reviewed: int = 0
    flagged: int = 0
    dismissed: int = 0

    @property
    def done(self) -> int:
        """Articles someone has looked at (reviewed, flagged or dismissed)."""
        return self.total - self.new

    def summary(self) -> str:
        """The counts as people say them: "12 of 40 reviewed"."""
        return f"{self.done} of {self.total} reviewed"


def check_change(state: ReviewState | None, note: str | None, by: str) -> str:
    """Refuse a change that changes nothing or is too long; the reviewer's name, trimmed."""
    if state is None and note is None:
        raise UsageError("review: give a state, a note, or both")
    if note is not None and len(note) > MAX_NOTE_CHARS:
        raise UsageError(f"review: note longer than {MAX_NOTE_CHARS} characters ({len(note)})")
    name = by.strip()
    if not name or len(name) > MAX_REVIEWER_CHARS:
        raise UsageError(f"review: reviewer name must be 1 to {MAX_REVIEWER_CHARS} characters")
    return name


def set_reviews(
    session: Session,
    *,
    topic_id: int,
    article_ids: Sequence[int],
    state: ReviewState | None,
    note: str | None,
    by: str,
    now: datetime,
) -> list[Review]:
    """Set the state and/or note of ``article_ids`` for a topic; one history event for each
    article it changed (an article already so is left alone). Returns the reviews."""
    name = check_change(state, note, by)
    ids = sorted(set(article_ids))
    if not ids:
        raise UsageError("review: no articles chosen")
    if len(ids) > MAX_BULK:
        raise UsageError(f"review: at most {MAX_BULK} articles at once, not {len(ids)}")
    _check_in_inbox(session, topic_id, ids)
    table = Review.__table__  # type: ignore[attr-defined]
    session.execute(
        dialect_insert(session, table).on_conflict_do_nothing(
            index_elements=["article_id", "topic_id"]
        ),
        [
            {
                "article_id": i,
                "topic_id": topic_id,
                "state": ReviewState.NEW.value,
                "note": "",
                "updated_by": "",
                "updated_at": now,
                "changes": 0,
            }
            for i in ids
        ],
    )
    # Locked in article order, so two bulk changes over the same articles cannot deadlock.
    rows = session.exec(
        select(Review)
        .where(Review.topic_id == topic_id, col(Review.article_id).in_(ids))
        .order_by(col(Review.article_id))
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    for review in rows:
        _apply(session, review, state, note, name, now)
    session.flush()
    return list(rows)


def _apply(
    session: Session,
    review: Review,
    state: ReviewState | None,
    note: str | None,
    by: str,
    now: datetime,
) -> None:
    new_state = ReviewState(review.state) if state is None else state
    new_note = review.note if note is None else note
    if new_state == review.state and new_note == review.note:
        return
    session.add(
        ReviewEvent(
            article_id=review.article_id,
            topic_id=review.topic_id,
            previous_state=review.state,
            state=new_state,
            previous_note=review.note,
            note=new_note,
            changed_by=by,
            changed_at=now,
        )
    )
    review.state, review.note = new_state, new_note
    review.updated_by, review.updated_at = by, now
    review.changes += 1
    session.add(review)


def _check_in_inbox(session: Session, topic_id: int, ids: Sequence[int]) -> None:
    """Refuse articles the topic never matched (nor anyone reviewed for it)."""
    matched = set(session.exec(select(Match.article_id).where(
        Match.topic_id == topic_id, col(Match.article_id).in_(ids))))  # fmt: skip
    reviewed = set(session.exec(select(Review.article_id).where(
        Review.topic_id == topic_id, col(Review.article_id).in_(ids))))  # fmt: skip
    missing = [i for i in ids if i not in matched and i not in reviewed]
    if missing:
        shown = ", ".join(str(i) for i in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise NotFoundError(f"review: article {shown}{more} not in this topic's inbox")


def review_history(session: Session, *, topic_id: int, article_id: int) -> list[ReviewEvent]:
    """Every change of an article's review for a topic, oldest first."""
    return list(
        session.exec(
            select(ReviewEvent)
            .where(ReviewEvent.topic_id == topic_id, ReviewEvent.article_id == article_id)
            .order_by(col(ReviewEvent.id))
        )
    )


def review_counts(
    session: Session, *, start: datetime, end: datetime, topic_ids: Iterable[int] | None = None
) -> dict[int, ReviewCounts]:
    """Per topic, its matched articles first seen in [start, end) by state (backlog apart:
    it is no news of the day, as in the report)."""
    state = func.coalesce(col(Review.state), ReviewState.NEW.value)
    statement = (
        select(Match.topic_id, state, func.count())
        .join(Article, col(Article.id) == Match.article_id)
        .outerjoin(
            Review,
            and_(
                col(Review.article_id) == Match.article_id, col(Review.topic_id) == Match.topic_id
            ),
        )
        .where(
            col(Article.first_seen_at) >= start,
            col(Article.first_seen_at) < end,
            not_(col(Article.backlog)),
        )
        .group_by(col(Match.topic_id), state)
    )
    if topic_ids is not None:
        statement = statement.where(col(Match.topic_id).in_(list(topic_ids)))
    by_topic: dict[int, dict[str, int]] = {}
    for topic_id, name, count in session.exec(statement):
        by_topic.setdefault(topic_id, {})[str(name)] = int(count)
    return {topic_id: counts_of(states) for topic_id, states in by_topic.items()}


def counts_of(states: dict[str, int]) -> ReviewCounts:
    """ReviewCounts from a count per state name."""
    return ReviewCounts(
        total=sum(states.values()),
        new=states.get(ReviewState.NEW.value, 0),
        reviewed=states.get(ReviewState.REVIEWED.value, 0),
        flagged=states.get(ReviewState.FLAGGED.value, 0),
        dismissed=states.get(ReviewState.DISMISSED.value, 0),
    )
