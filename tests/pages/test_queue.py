"""The page queue on SQLite and PostgreSQL: what is queued, fair claims, leases, backoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from monitor.models import ArticlePage, FetchPages, PageStatus
from monitor.pages.queue import (
    PageJob,
    backoff,
    claim_due_pages,
    count_due_pages,
    expire_pages,
    queue_pages,
    record_page_failure,
    release_page_leases,
    wants_page,
)
from monitor.pages.run import cannot_mend
from tests.utils.factories import add_article

NOW = datetime(2024, 9, 10, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=10)
BACKOFF = timedelta(minutes=10)


def add_pages(
    engine: Engine, hosts: dict[str, int], *, now: datetime = NOW
) -> dict[str, list[int]]:
    """Articles with queued pages: ``count`` for each host, queued a second apart in turn."""
    ids: dict[str, list[int]] = {host: [] for host in hosts}
    with Session(engine) as session, session.begin():
        for round_ in range(max(hosts.values())):
            for host, count in hosts.items():
                if round_ >= count:
                    continue
                article = add_article(
                    session, f"{host} {round_}", seen=now, url=f"https://{host}/story/{round_}"
                )
                at = now + timedelta(seconds=len(ids[host]) + round_)
                queue_pages(session, [article], mode=FetchPages.ALWAYS, auto_below=0, now=at)
                ids[host].append(article.id or 0)
    return ids


def claim(
    engine: Engine,
    owner: str,
    *,
    limit: int = 100,
    per_host: int = 100,
    now: datetime = NOW + timedelta(minutes=1),
    busy: set[str] | None = None,
) -> list[PageJob]:
    with Session(engine) as session, session.begin():
        return claim_due_pages(
            session,
            now=now,
            limit=limit,
            per_host=per_host,
            owner=owner,
            lease=LEASE,
            busy_hosts=busy or set(),
        )


@pytest.mark.parametrize(
    ("mode", "summary", "content", "wanted"),
    [
        (FetchPages.AUTO, "One sentence.", "", True),
        (FetchPages.AUTO, "x" * 300, "y" * 300, False),  # the feed carries the text
        (FetchPages.AUTO, "x" * 499, "", True),
        (FetchPages.ALWAYS, "x" * 300, "y" * 3000, True),
        (FetchPages.NEVER, "", "", False),
    ],
)
def test_which_articles_have_their_pages_fetched(
    mode: FetchPages, summary: str, content: str, wanted: bool
) -> None:
    assert wants_page(mode, summary=summary, content=content, auto_below=500) is wanted


def test_only_http_links_are_queued_once(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as session, session.begin():
        good = add_article(session, "a", seen=NOW, url="https://news.example/a")
        bad = add_article(session, "b", seen=NOW, url="mailto:desk@news.example")
        assert queue_pages(session, [good, bad], mode="auto", auto_below=500, now=NOW) == 1
        queue_pages(session, [good], mode="auto", auto_below=500, now=NOW)
        rows = [(r.article_id, r.host, r.status) for r in session.exec(select(ArticlePage))]
    assert rows == [(good.id, "news.example", PageStatus.PENDING)]


def test_a_claim_takes_hosts_in_turn_so_one_sites_backlog_never_fills_it(engine: Engine) -> None:
    ids = add_pages(engine, {"big.example": 20, "small.example": 2, "other.example": 1})

    jobs = claim(engine, "w1", limit=6, per_host=4)

    by_host = [job.host for job in jobs]
    assert sorted(by_host) == sorted(
        ["big.example"] * 3 + ["small.example"] * 2 + ["other.example"]
    )
    assert [j.article_id for j in jobs if j.host == "big.example"] == ids["big.example"][:3]
    # Busy hosts are passed over; what is left of the others comes next.
    later = claim(engine, "w1", limit=10, per_host=4, busy={"big.example"})
    assert later == []
    rest = claim(engine, "w1", limit=10, per_host=4)
    assert [j.article_id for j in rest] == ids["big.example"][3:7]


def test_claims_are_leased_and_released(engine: Engine) -> None:
    add_pages(engine, {"a.example": 3})
    first = claim(engine, "w1")
    assert len(first) == 3
    assert claim(engine, "w2") == []
    # A lease that ran out (its worker died) lets another take the page.
    assert len(claim(engine, "w2", now=NOW + LEASE + timedelta(minutes=2))) == 3
    with Session(engine) as session, session.begin():
        release_page_leases(session, [job.article_id for job in first], owner="w1")
        # w1 no longer holds them: its release changes nothing.
        leased = session.exec(select(ArticlePage.lease_owner)).all()
    assert set(leased) == {"w2"}


def test_concurrent_claims_on_postgresql_skip_each_others_rows(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: its claims cannot overlap")
    add_pages(engine, {"a.example": 3, "b.example": 3})
    now = NOW + timedelta(minutes=1)
    with Session(engine) as first, first.begin():
        mine = claim_due_pages(first, now=now, limit=3, per_host=10, owner="w1", lease=LEASE)
        with Session(engine) as second, second.begin():
            theirs = claim_due_pages(
                second, now=now, limit=10, per_host=10, owner="w2", lease=LEASE
            )
    assert len(mine) == 3
    assert len(theirs) == 3
    assert not {j.article_id for j in mine} & {j.article_id for j in theirs}


@pytest.mark.parametrize(
    ("attempts", "retry_after", "wait"),
    [
        (1, None, BACKOFF),
        (2, None, BACKOFF * 2),
        (3, None, BACKOFF * 4),
        (1, timedelta(hours=2), timedelta(hours=2)),  # the server asked for longer
        (3, timedelta(seconds=5), BACKOFF * 4),
    ],
)
def test_backoff_doubles_and_honours_retry_after(
    attempts: int, retry_after: timedelta | None, wait: timedelta
) -> None:
    assert backoff(attempts, base=BACKOFF, retry_after=retry_after) == wait


def test_a_failing_page_is_retried_then_given_up(engine: Engine) -> None:
    add_pages(engine, {"a.example": 1})
    now = NOW + timedelta(minutes=1)
    for attempt in range(1, 4):
        [job] = claim(engine, "w1", now=now)
        assert job.attempts == attempt - 1
        with Session(engine, expire_on_commit=False) as session, session.begin():
            given_up = record_page_failure(
                session,
                job,
                "fetch: HTTP 503 Service Unavailable",
                now=now,
                max_attempts=3,
                base_backoff=BACKOFF,
                http_status=503,
            )
            row = session.get(ArticlePage, job.article_id)
            assert row is not None
            assert row.lease_owner is None
        assert given_up is (attempt == 3)
        if not given_up:
            assert claim(engine, "w1", now=now) == []  # not before its backoff
            now = row.next_attempt_at
    assert row is not None
    assert row.status == PageStatus.FAILED
    assert row.attempts == 3
    assert row.reason == "fetch: HTTP 503 Service Unavailable"
    assert claim(engine, "w1", now=now + timedelta(days=1)) == []


def test_permanent_failures_are_given_up_at_once(engine: Engine) -> None:
    add_pages(engine, {"a.example": 1})
    [job] = claim(engine, "w1")
    with Session(engine) as session, session.begin():
        assert record_page_failure(
            session,
            job,
            "extract: not an HTML page: application/pdf",
            now=NOW,
            max_attempts=4,
            base_backoff=BACKOFF,
            permanent=True,
        )
        assert count_due_pages(session, now=NOW + timedelta(days=1)) == 0


def test_pages_not_fetched_in_time_are_given_up(engine: Engine) -> None:
    add_pages(engine, {"a.example": 2})
    later = NOW + timedelta(days=3)
    with Session(engine) as session, session.begin():
        assert expire_pages(session, now=later, max_age=timedelta(days=2)) == 2
        reasons = set(session.exec(select(ArticlePage.reason)))
        statuses = set(session.exec(select(ArticlePage.status)))
    assert statuses == {PageStatus.FAILED}
    assert reasons == {"not fetched in time, given up"}


@pytest.mark.parametrize(
    ("reason", "hopeless"),
    [
        ("fetch: cannot connect: [Errno 111] Connection refused", False),
        ("fetch: cannot connect: All connection attempts failed", False),
        ("fetch: no complete answer within 30 s", False),
        (
            "fetch: connection to 10.0.0.5 refused: a private address (see fetch.allow_networks)",
            True,
        ),
        ("fetch: body exceeds the 5,000,000 byte cap", True),
        ("fetch: redirect to 'ftp://x/' refused: only http and https", True),
        ("fetch: redirect loop: http://a/ redirects back to http://a/", True),
        ("fetch: more than 5 redirects", True),
    ],
)
def test_which_fetch_failures_are_not_retried(reason: str, hopeless: bool) -> None:
    assert cannot_mend(reason) is hopeless
