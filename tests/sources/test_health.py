"""feed_health: every feed in one row, new items a day, silence by the daily report's rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from monitor.models import Feed, FeedState, Sighting
from monitor.sources.health import feed_health
from tests.utils.factories import add_article

NOW = datetime(2024, 9, 10, 12, 0, tzinfo=UTC)


def sighted(session: Session, feed: Feed, hours_ago: list[float]) -> None:
    """Articles of ``feed`` first seen that many hours before NOW."""
    for hours in hours_ago:
        seen = NOW - timedelta(hours=hours)
        article = add_article(session, f"{feed.url} {hours}", seen=seen)
        session.add(
            Sighting(
                article_id=article.id or 0, feed_id=feed.id or 0, first_seen_at=seen,
                last_seen_at=seen,
            )
        )  # fmt: skip


@pytest.mark.parametrize(
    ("hours_ago", "new_per_day", "silent"),
    [
        ([], 0.0, False),
        # Every 6 hours for the last day and a half: 7 items in the week, not silent.
        ([1, 7, 13, 19, 25, 31, 37], 1.0, False),
        # Every 6 hours, but the last one four days ago: silent (4 days > 4 x 6 h and > gaps).
        ([96, 102, 108, 114, 120, 126, 132], 1.0, True),
        # Items 10 days ago only: none this week.
        ([240, 246], 0.0, False),
    ],
    ids=["no-items", "regular", "silent", "old"],
)
def test_new_items_a_day_and_silence(
    engine: Engine, hours_ago: list[float], new_per_day: float, silent: bool
) -> None:
    with Session(engine) as session, session.begin():
        feed = Feed(url="https://a.example/feed", next_check_at=NOW, created_at=NOW)
        session.add(feed)
        session.flush()
        sighted(session, feed, hours_ago)

    with Session(engine) as session:
        [row] = feed_health(session, now=NOW, silent_factor=4.0)

    assert row.new_per_day == pytest.approx(new_per_day)
    assert (row.silent is not None) == silent
    if silent:
        assert "no new item for 4d" in (row.silent or "")


def test_every_feed_is_listed_whatever_its_state(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        for n, state in enumerate(FeedState):
            session.add(
                Feed(
                    url=f"https://{n}.example/feed", state=state, next_check_at=NOW,
                    disabled_reason="HTTP 410 Gone" if state == FeedState.DISABLED else None,
                )
            )  # fmt: skip

    with Session(engine) as session:
        rows = feed_health(session, now=NOW, silent_factor=4.0)

    assert [(row.state, row.disabled_reason) for row in rows] == [
        (FeedState.ACTIVE, None),
        (FeedState.ERRORING, None),
        (FeedState.DISABLED, "HTTP 410 Gone"),
    ]
