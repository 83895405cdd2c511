"""Review state in the store: set, bulk, history, refusals, counts, and two reviewers at once
(last write wins, both in the history) on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from monitor.errors import NotFoundError, UsageError
from monitor.models import Article, Match, Review, ReviewState
from monitor.reports.build import day_bounds
from monitor.review.store import review_counts, review_history, set_reviews
from tests.review.data import DAY, NOW, Inbox, seed_inbox
from tests.utils.factories import add_article


@pytest.fixture
def inbox(engine: Engine) -> Inbox:
    return seed_inbox(engine)


def change(engine: Engine, inbox: Inbox, ids: list[int], state: ReviewState | None,
           note: str | None = None, by: str = "ada", minutes: int = 0) -> list[Review]:  # fmt: skip
    with Session(engine) as session, session.begin():
        rows = set_reviews(session, topic_id=inbox.topic_id, article_ids=ids, state=state,
                           note=note, by=by, now=NOW + timedelta(minutes=minutes))  # fmt: skip
        session.expunge_all()
        return rows


def test_a_change_sets_state_note_who_and_when_and_is_in_the_history(
    engine: Engine, inbox: Inbox
) -> None:
    first = inbox.day_ids[0]
    change(engine, inbox, [first], ReviewState.FLAGGED, "check the numbers", minutes=1)
    [row] = change(engine, inbox, [first], ReviewState.REVIEWED, by="bob", minutes=2)

    assert (row.state, row.note, row.updated_by, row.changes) == (
        "reviewed", "check the numbers", "bob", 2)  # fmt: skip
    assert row.updated_at == NOW + timedelta(minutes=2)
    with Session(engine) as session:
        events = review_history(session, topic_id=inbox.topic_id, article_id=first)
    assert [(e.previous_state, e.state, e.note, e.changed_by) for e in events] == [
        ("new", "flagged", "check the numbers", "ada"),
        ("flagged", "reviewed", "check the numbers", "bob"),
    ]


def test_a_note_alone_keeps_the_state_and_a_repeat_adds_no_event(
    engine: Engine, inbox: Inbox
) -> None:
    first = inbox.day_ids[0]
    change(engine, inbox, [first], ReviewState.DISMISSED)
    change(engine, inbox, [first], None, "not ours")
    change(engine, inbox, [first], ReviewState.DISMISSED)  # already so: nothing to record
    with Session(engine) as session:
        review = session.get(Review, (first, inbox.topic_id))
        events = review_history(session, topic_id=inbox.topic_id, article_id=first)
    assert review is not None
    assert (review.state, review.note) == ("dismissed", "not ours")
    assert [(e.state, e.note) for e in events] == [("dismissed", ""), ("dismissed", "not ours")]


def test_bulk_changes_every_chosen_article_once(engine: Engine, inbox: Inbox) -> None:
    chosen = inbox.day_ids[:4]
    rows = change(engine, inbox, chosen + chosen[:1], ReviewState.FLAGGED)
    assert sorted(r.article_id for r in rows) == sorted(chosen)
    assert {r.state for r in rows} == {"flagged"}
    with Session(engine) as session:
        states = dict(session.exec(select(Review.article_id, Review.state)).all())
    assert states == dict.fromkeys(chosen, "flagged")


@pytest.mark.parametrize(
    ("state", "note", "by", "message"),
    [
        (None, None, "ada", "give a state, a note, or both"),
        (ReviewState.REVIEWED, "x" * 10_001, "ada", "note longer than 10000 characters"),
        (ReviewState.REVIEWED, None, "  ", "reviewer name must be 1 to 150 characters"),
    ],
)
def test_bad_changes_are_refused_and_change_nothing(
    engine: Engine, inbox: Inbox, state: ReviewState | None, note: str | None, by: str,
    message: str,
) -> None:  # fmt: skip
    with pytest.raises(UsageError, match=message):
        change(engine, inbox, inbox.day_ids[:1], state, note, by=by)
    with Session(engine) as session:
        assert session.exec(select(Review)).all() == []


def test_an_article_outside_the_topic_is_refused(engine: Engine, inbox: Inbox) -> None:
    with Session(engine) as session, session.begin():
        stray = add_article(session, "Weather", seen=NOW).id or 0
    with pytest.raises(NotFoundError, match=f"article {stray} not in this topic's inbox"):
        change(engine, inbox, [inbox.day_ids[0], stray], ReviewState.REVIEWED)
    with Session(engine) as session:
        assert session.exec(select(Review)).all() == []


def test_the_review_survives_the_match_going_and_can_still_change(
    engine: Engine, inbox: Inbox
) -> None:
    first = inbox.day_ids[0]
    change(engine, inbox, [first], ReviewState.FLAGGED, "follow up")
    with Session(engine) as session, session.begin():
        match = session.get(Match, (first, inbox.topic_id))
        session.delete(match)
    [row] = change(engine, inbox, [first], ReviewState.REVIEWED, minutes=5)
    assert (row.state, row.note, row.changes) == ("reviewed", "follow up", 2)


def test_counts_are_of_the_day_s_news_by_state(engine: Engine, inbox: Inbox) -> None:
    change(engine, inbox, inbox.day_ids[:2], ReviewState.REVIEWED)
    change(engine, inbox, inbox.day_ids[2:3], ReviewState.FLAGGED)
    change(engine, inbox, [inbox.backlog_id], ReviewState.DISMISSED)  # backlog: not counted
    start, end = day_bounds(DAY, ZoneInfo("UTC"))
    with Session(engine) as session:
        counts = review_counts(session, start=start, end=end)[inbox.topic_id]
    assert (counts.total, counts.new, counts.reviewed, counts.flagged, counts.dismissed) == (
        6, 3, 2, 1, 0)  # fmt: skip
    assert counts.summary() == "3 of 6 reviewed"


def test_two_reviewers_at_once_the_last_write_wins_and_both_are_in_the_history(
    engine: Engine, inbox: Inbox
) -> None:
    article = inbox.day_ids[0]
    first_written = threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with Session(engine) as session, session.begin():
                set_reviews(session, topic_id=inbox.topic_id, article_ids=[article],
                            state=ReviewState.FLAGGED, note="ada's", by="ada", now=NOW)  # fmt: skip
                first_written.set()
                # Hold the row while the second reviewer's change arrives and waits for it.
                time.sleep(0.3)
        except BaseException as exc:
            errors.append(exc)
            first_written.set()

    def second() -> None:
        first_written.wait(10)
        try:
            with Session(engine) as session, session.begin():
                set_reviews(session, topic_id=inbox.topic_id, article_ids=[article],
                            state=ReviewState.DISMISSED, note=None, by="bob", now=NOW)  # fmt: skip
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert errors == []
    with Session(engine) as session:
        review = session.get(Review, (article, inbox.topic_id))
        events = review_history(session, topic_id=inbox.topic_id, article_id=article)
    assert review is not None
    assert (review.state, review.updated_by, review.note, review.changes) == (
        "dismissed", "bob", "ada's", 2)  # fmt: skip
    # Bob's change replaced Ada's, not the state before it: no change was lost.
    assert [(e.changed_by, e.previous_state, e.state) for e in events] == [
        ("ada", "new", "flagged"),
        ("bob", "flagged", "dismissed"),
    ]


def test_many_concurrent_changes_each_leave_one_event(engine: Engine, inbox: Inbox) -> None:
    article = inbox.day_ids[1]
    states = [ReviewState.REVIEWED, ReviewState.FLAGGED] * 4

    def write(n: int) -> None:
        with Session(engine) as session, session.begin():
            set_reviews(session, topic_id=inbox.topic_id, article_ids=[article],
                        state=states[n], note=f"note {n}", by=f"reviewer {n}", now=NOW)  # fmt: skip

    threads = [threading.Thread(target=write, args=(n,)) for n in range(len(states))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    with Session(engine) as session:
        review = session.get(Review, (article, inbox.topic_id))
        events = review_history(session, topic_id=inbox.topic_id, article_id=article)
    assert review is not None
    assert len(events) == len(states) == review.changes
    # The history is a chain: each change starts from what the one before it left.
    for before, after in itertools.pairwise(events):
        assert (after.previous_state, after.previous_note) == (before.state, before.note)
    assert (review.state, review.note, review.updated_by) == (
        events[-1].state, events[-1].note, events[-1].changed_by)  # fmt: skip


def test_pruning_an_article_takes_its_review_with_it(engine: Engine, inbox: Inbox) -> None:
    from monitor.ingest.prune import RetentionRules, prune_archive

    change(engine, inbox, [inbox.before_id], ReviewState.REVIEWED)
    rules = RetentionRules(older_than=timedelta(days=1), matched_older_than=timedelta(days=1))
    prune_archive(engine, rules, now=NOW + timedelta(days=3))
    with Session(engine) as session:
        assert session.exec(select(Article)).all() == []
        assert session.exec(select(Review)).all() == []
