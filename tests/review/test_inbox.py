"""The inbox's view of a topic: story order with backlog last, filters, cursor pages to the end,
"no longer matches" after a retag, and the export rows."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, delete

from monitor.errors import UsageError
from monitor.models import Match, ReviewState, Topic
from monitor.review.inbox import (
    EXPORT_HEADER,
    InboxFilter,
    day_range,
    export_row,
    inbox_languages,
    inbox_page,
    iter_inbox,
)
from monitor.review.store import set_reviews
from tests.review.data import DAY, HOSTILE, NOW, Inbox, seed_inbox


@pytest.fixture
def inbox(engine: Engine) -> Inbox:
    return seed_inbox(engine)


def view(engine: Engine, spec: InboxFilter, **kwargs: object) -> list[int]:
    with Session(engine) as session:
        page = inbox_page(session, spec, **kwargs)  # type: ignore[arg-type]
        return [item.article.id or 0 for item in page.items]


def test_a_day_lists_its_articles_by_story_with_the_backlog_last(
    engine: Engine, inbox: Inbox
) -> None:
    spec = InboxFilter(inbox.topic_id, DAY, DAY)
    ids = view(engine, spec)
    singles, stories = inbox.day_ids[4:], inbox.day_ids[:4]
    # Articles without a story first (story 0), then each story's copies together.
    assert ids == [*singles, *stories, inbox.backlog_id]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"language": "de"}, [2, 3]),
        ({"language": "fr"}, [4]),
        ({"feed": 1}, [1, 2, 3]),
        ({"states": (ReviewState.FLAGGED,)}, [0]),
        ({"states": (ReviewState.NEW,), "language": "en"}, [5, 1, "backlog"]),
    ],
)
def test_filters(
    engine: Engine, inbox: Inbox, filters: dict[str, object], expected: list[object]
) -> None:
    with Session(engine) as session, session.begin():
        set_reviews(session, topic_id=inbox.topic_id, article_ids=[inbox.day_ids[0]],
                    state=ReviewState.FLAGGED, note=None, by="ada", now=NOW)  # fmt: skip
    filters = dict(filters)  # the parameter is shared by both databases' runs
    feed = inbox.feed_ids[int(str(filters.pop("feed")))] if "feed" in filters else None
    spec = InboxFilter(inbox.topic_id, DAY, DAY, feed_id=feed, **filters)  # type: ignore[arg-type]
    wanted = [inbox.backlog_id if e == "backlog" else inbox.day_ids[int(e)] for e in expected]  # type: ignore[call-overload]
    assert sorted(view(engine, spec)) == sorted(wanted)


def test_a_range_of_days_takes_in_the_day_before(engine: Engine, inbox: Inbox) -> None:
    ids = view(engine, InboxFilter(inbox.topic_id, DAY - timedelta(days=1), DAY))
    assert inbox.before_id in ids
    assert len(ids) == len(inbox.day_ids) + 2
    assert view(engine, InboxFilter(inbox.topic_id, DAY - timedelta(days=1),
                                    DAY - timedelta(days=1))) == [inbox.before_id]  # fmt: skip


def test_pages_follow_the_cursor_to_the_end_without_gaps_or_repeats(engine: Engine) -> None:
    inbox = seed_inbox(engine, extra=23)
    spec = InboxFilter(inbox.topic_id, DAY, DAY)
    seen: list[int] = []
    cursor = None
    pages = 0
    with Session(engine) as session:
        while True:
            page = inbox_page(session, spec, cursor=cursor, limit=7)
            pages += 1
            seen += [item.article.id or 0 for item in page.items]
            assert page.counts.total == len(inbox.day_ids) + 1
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        everything = [item.article.id for item in iter_inbox(session, spec)]
    assert pages == 5  # 29 + 1 backlog = 30 items, 7 a page
    assert seen == everything
    assert len(set(seen)) == len(seen) == len(inbox.day_ids) + 1


def test_a_match_gone_after_a_query_change_stays_with_its_review(
    engine: Engine, inbox: Inbox
) -> None:
    gone, untouched = inbox.day_ids[0], inbox.day_ids[1]
    with Session(engine) as session, session.begin():
        set_reviews(session, topic_id=inbox.topic_id, article_ids=[gone],
                    state=ReviewState.FLAGGED, note="why?", by="ada", now=NOW)  # fmt: skip
        # A retag after a query change replaces the topic's matches: these two are dropped.
        session.exec(delete(Match).where(Match.article_id.in_([gone, untouched])))  # type: ignore[attr-defined]
    with Session(engine) as session:
        items = inbox_page(session, InboxFilter(inbox.topic_id, DAY, DAY)).items
    found = {item.article.id: item for item in items}
    assert untouched not in found  # never reviewed: gone with its match
    assert found[gone].match is None
    assert (found[gone].state, found[gone].review.note) == ("flagged", "why?")  # type: ignore[union-attr]


def test_export_rows_carry_the_review_and_the_hostile_title_as_is(
    engine: Engine, inbox: Inbox
) -> None:
    hostile = inbox.day_ids[5]
    with Session(engine) as session, session.begin():
        set_reviews(session, topic_id=inbox.topic_id, article_ids=[hostile],
                    state=ReviewState.DISMISSED, note="spam", by="bob", now=NOW)  # fmt: skip
    with Session(engine) as session:
        topic = session.get(Topic, inbox.topic_id)
        assert topic is not None
        items = {
            i.article.id: i for i in iter_inbox(session, InboxFilter(inbox.topic_id, DAY, DAY))
        }
        row = dict(zip(EXPORT_HEADER, export_row(items[hostile], topic), strict=True))
    assert row["title"] == HOSTILE + " election"  # quoting is the CSV writer's job
    assert (row["state"], row["note"], row["updated_by"], row["matches"]) == (
        "dismissed", "spam", "bob", "yes")  # fmt: skip
    assert row["updated_at"] == "2024-09-09T12:00:00Z"


def test_languages_offered_are_those_of_the_range(engine: Engine, inbox: Inbox) -> None:
    with Session(engine) as session:
        assert inbox_languages(session, InboxFilter(inbox.topic_id, DAY, DAY)) == ["de", "en", "fr"]


@pytest.mark.parametrize(
    ("day", "first", "last", "expected"),
    [
        (date(2024, 9, 1), None, None, (date(2024, 9, 1), date(2024, 9, 1))),
        (None, None, None, (date(2024, 9, 9), date(2024, 9, 9))),
        (None, date(2024, 9, 1), None, (date(2024, 9, 1), date(2024, 9, 9))),
        (None, None, date(2024, 9, 3), (date(2024, 9, 3), date(2024, 9, 3))),
        (None, date(2024, 9, 1), date(2024, 9, 3), (date(2024, 9, 1), date(2024, 9, 3))),
    ],
)
def test_day_range(
    day: date | None, first: date | None, last: date | None, expected: tuple[date, date]
) -> None:
    assert day_range(day, first, last, date(2024, 9, 9)) == expected


@pytest.mark.parametrize(
    ("first", "last", "message"),
    [
        (date(2024, 9, 3), date(2024, 9, 1), "ends .2024-09-01. before it starts"),
        (date(2023, 1, 1), date(2024, 9, 1), "at most 366 days at once"),
    ],
)
def test_bad_ranges_are_refused(first: date, last: date, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        day_range(None, first, last, date(2024, 9, 9))


@pytest.mark.parametrize("cursor", ["abc", "2.0.1", "0.0", "1.1.1; DROP"])
def test_a_bad_cursor_is_refused(engine: Engine, inbox: Inbox, cursor: str) -> None:
    with pytest.raises(UsageError, match="not a cursor of this inbox"):
        view(engine, InboxFilter(inbox.topic_id, DAY, DAY), cursor=cursor)
