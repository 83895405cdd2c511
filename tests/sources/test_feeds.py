"""The feed table on SQLite and PostgreSQL: adding, picking due feeds, recording checks."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, func, select

from monitor.errors import UsageError
from monitor.models import Feed, FeedState
from monitor.sources.feeds import (
    MAX_ERROR_LENGTH,
    CheckOutcome,
    FeedRef,
    add_feed,
    check_feed_url,
    feed_refs,
    import_feeds,
    record_failure,
    record_success,
    select_due_feeds,
)
from monitor.sources.opml import OpmlFeed

NOW = datetime(2024, 9, 10, 12, 0, tzinfo=UTC)
INTERVAL = timedelta(minutes=10)
MAX_BACKOFF = timedelta(hours=1)


def add(session: Session, url: str, *, due: datetime = NOW) -> Feed:
    """A new feed whose first check is due at ``due``."""
    feed, _ = add_feed(session, url=url, interval=INTERVAL, now=due)
    return feed


def ref(session: Session, url: str) -> FeedRef:
    [found] = feed_refs(session, [url])
    return found


def test_add_feed_is_idempotent(engine: Engine) -> None:
    with Session(engine) as session:
        first, first_new = add_feed(
            session, url="https://a.example/feed", title="A", interval=INTERVAL, now=NOW
        )
        again, again_new = add_feed(
            session, url="  https://a.example/feed ", title="B", interval=INTERVAL, now=NOW
        )
        session.commit()

        assert (first_new, again_new) == (True, False)
        assert again.id == first.id
        assert again.title == "A"
        assert session.exec(select(func.count()).select_from(Feed)).one() == 1


def test_new_feed_is_due_at_once_with_its_interval(engine: Engine) -> None:
    with Session(engine) as session:
        feed = add(session, "https://a.example/feed")
        session.commit()
        session.refresh(feed)

    assert feed.next_check_at == NOW
    assert feed.interval_seconds == 600
    assert (feed.state, feed.error_count) == (FeedState.ACTIVE, 0)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "   ",
        "not a url",
        "example.com/feed",
        "/relative/feed.xml",
        "ftp://example.com/feed",
        "file:///etc/passwd",
        "mailto:news@example.com",
        "javascript:alert(1)",
        "http://",
        "https://[::1/feed",
        "http://exa mple.com/feed",
        "http://exa\tmple.com/feed",
    ],
)
def test_check_feed_url_rejects_bad_urls(url: str) -> None:
    with pytest.raises(UsageError):
        check_feed_url(url)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com/feed", "https://example.com/feed"),
        ("  http://127.0.0.1:8080/x.xml\n", "http://127.0.0.1:8080/x.xml"),
        ("http://[::1]:8080/feed", "http://[::1]:8080/feed"),
        ("https://bücher.example/feed", "https://bücher.example/feed"),
    ],
)
def test_check_feed_url_accepts_http_urls(url: str, expected: str) -> None:
    assert check_feed_url(url) == expected


def test_bad_url_is_not_added(engine: Engine) -> None:
    with Session(engine) as session, pytest.raises(UsageError):
        add_feed(session, url="ftp://example.com/feed", interval=INTERVAL, now=NOW)


def test_import_sorts_feeds_into_added_existing_and_rejected(engine: Engine) -> None:
    feeds = [OpmlFeed("https://a.example/1"), OpmlFeed("gopher://b.example/")]
    with Session(engine) as session:
        add(session, "https://c.example/3")
        feeds.append(OpmlFeed("https://c.example/3"))
        result = import_feeds(session, feeds, interval=INTERVAL, now=NOW)

    assert result.added == ["https://a.example/1"]
    assert result.existing == ["https://c.example/3"]
    assert len(result.rejected) == 1
    assert "gopher://b.example/" in result.rejected[0]


def test_select_due_feeds_most_overdue_first(engine: Engine) -> None:
    with Session(engine) as session:
        add(session, "https://a.example/late", due=NOW - timedelta(minutes=5))
        add(session, "https://b.example/later", due=NOW - timedelta(hours=2))
        add(session, "https://c.example/now", due=NOW)
        add(session, "https://d.example/future", due=NOW + timedelta(seconds=1))
        add(
            session, "https://e.example/off", due=NOW - timedelta(days=1)
        ).state = FeedState.DISABLED
        session.commit()

        due = select_due_feeds(session, now=NOW, limit=10)

    assert [feed.url for feed in due] == [
        "https://b.example/later",
        "https://a.example/late",
        "https://c.example/now",
    ]


def test_select_due_feeds_honours_the_limit(engine: Engine) -> None:
    with Session(engine) as session:
        for minutes in range(5):
            add(session, f"https://x.example/{minutes}", due=NOW - timedelta(minutes=minutes))
        session.commit()

        due = select_due_feeds(session, now=NOW, limit=2)

    assert [feed.url for feed in due] == ["https://x.example/4", "https://x.example/3"]


def test_erroring_feeds_are_still_due(engine: Engine) -> None:
    with Session(engine) as session:
        add(session, "https://a.example/feed").state = FeedState.ERRORING
        session.commit()

        assert [f.url for f in select_due_feeds(session, now=NOW, limit=5)] == [
            "https://a.example/feed"
        ]


def fail_repeatedly(engine: Engine, times: int) -> list[Feed]:
    """Record ``times`` failures, each at NOW; the feed row after each one."""
    rows = []
    rng = random.Random(1)
    for attempt in range(1, times + 1):
        with Session(engine) as session:
            feed = ref(session, "https://a.example/feed")
            record_failure(
                session,
                feed,
                f"fetch: HTTP 500 (attempt {attempt})",
                now=NOW,
                max_backoff=MAX_BACKOFF,
                rng=rng,
            )
            session.commit()
            rows.append(session.exec(select(Feed)).one())
    return rows


def test_record_failure_counts_and_marks_erroring(engine: Engine) -> None:
    with Session(engine) as session:
        add(session, "https://a.example/feed")
        session.commit()

    [row] = fail_repeatedly(engine, 1)

    assert (row.error_count, row.state) == (1, FeedState.ERRORING)
    assert row.last_error == "fetch: HTTP 500 (attempt 1)"
    assert row.last_checked_at == NOW


def test_record_failure_backs_off_doubling_up_to_the_cap(engine: Engine) -> None:
    with Session(engine) as session:
        add(session, "https://a.example/feed")
        session.commit()

    rows = fail_repeatedly(engine, 6)

    # 10, 20, 40 minutes, then the one-hour cap; each give or take the 10 % jitter.
    for row, minutes in zip(rows, [10, 20, 40, 60, 60, 60], strict=True):
        delay = row.next_check_at - NOW
        assert timedelta(minutes=minutes * 0.9) <= delay <= timedelta(minutes=minutes * 1.1)
    assert [row.error_count for row in rows] == [1, 2, 3, 4, 5, 6]


def test_record_failure_truncates_long_errors(engine: Engine) -> None:
    with Session(engine) as session:
        add(session, "https://a.example/feed")
        session.commit()
        record_failure(
            session,
            ref(session, "https://a.example/feed"),
            "x" * (MAX_ERROR_LENGTH * 3),
            now=NOW,
            max_backoff=MAX_BACKOFF,
            rng=random.Random(1),
        )
        session.commit()
        row = session.exec(select(Feed)).one()

    assert row.last_error == "x" * MAX_ERROR_LENGTH


def test_record_success_resets_the_streak(engine: Engine) -> None:
    with Session(engine) as session:
        add(session, "https://a.example/feed")
        session.commit()
    fail_repeatedly(engine, 3)
    later = NOW + timedelta(hours=2)

    with Session(engine) as session:
        outcome = CheckOutcome(etag='"v2"', last_modified=None, body_hash="ab" * 32, title="A")
        record_success(
            session,
            ref(session, "https://a.example/feed"),
            outcome,
            now=later,
            rng=random.Random(2),
        )
        session.commit()
        row = session.exec(select(Feed)).one()

    assert (row.error_count, row.state, row.last_error) == (0, FeedState.ACTIVE, None)
    assert row.last_success_at == row.last_checked_at == later
    assert (row.etag, row.body_hash, row.title) == ('"v2"', "ab" * 32, "A")
    assert INTERVAL * 0.9 <= row.next_check_at - later <= INTERVAL * 1.1


def test_record_success_keeps_known_values_the_check_did_not_give(engine: Engine) -> None:
    with Session(engine) as session:
        feed, _ = add_feed(
            session, url="https://a.example/feed", title="Old", interval=INTERVAL, now=NOW
        )
        feed.last_modified = "Fri, 06 Sep 2024 10:00:00 GMT"
        session.commit()
        outcome = CheckOutcome(etag=None, last_modified=None, title="")
        record_success(session, ref(session, feed.url), outcome, now=NOW, rng=random.Random(3))
        session.commit()
        row = session.exec(select(Feed)).one()

    assert (row.title, row.last_modified) == ("Old", "Fri, 06 Sep 2024 10:00:00 GMT")
