"""Page failures per host (feeds health and the daily report's feed health), and prune."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, select

from monitor.ingest.prune import RetentionRules, prune_archive
from monitor.models import Article, ArticlePage, PageStatus
from monitor.pages.health import blocking_hosts, page_health
from monitor.pages.store import store_body
from monitor.reports import render_report, report_environment
from monitor.reports.build import ReportRules, build_report, report_payload
from tests.utils.factories import add_article

NOW = datetime(2024, 9, 10, 5, 0, tzinfo=UTC)


def add_page(
    session: Session,
    n: int,
    host: str,
    status: PageStatus,
    *,
    reason: str | None = None,
    at: datetime = NOW - timedelta(hours=1),
    seen: datetime = NOW,
) -> int:
    """An article of ``host`` whose page was last tried at ``at``."""
    article = add_article(session, f"{host} {n}", seen=seen, url=f"https://{host}/{n}")
    session.add(
        ArticlePage(
            article_id=article.id or 0,
            url=article.url,
            host=host,
            status=status,
            attempts=1,
            last_attempt_at=at,
            reason=reason,
            created_at=seen,
            next_attempt_at=at + timedelta(minutes=10),
        )
    )
    session.flush()
    return article.id or 0


def seed_hosts(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        for n in range(4):  # a site that blocks us
            add_page(
                session,
                n,
                "blocked.example",
                PageStatus.FAILED,
                reason="fetch: HTTP 403 Forbidden",
                at=NOW - timedelta(hours=2 + n),
            )
        add_page(
            session,
            9,
            "blocked.example",
            PageStatus.PENDING,
            reason="fetch: HTTP 403 Forbidden (latest)",
            at=NOW - timedelta(minutes=5),
        )
        for n in range(5):  # one failure among many: not a lasting problem
            add_page(session, n, "flaky.example", PageStatus.DONE)
        add_page(session, 7, "flaky.example", PageStatus.PENDING, reason="fetch: timed out")
        add_page(
            session,
            8,
            "old.example",
            PageStatus.FAILED,
            reason="fetch: HTTP 500",
            at=NOW - timedelta(days=3),
        )


def test_page_health_counts_per_host_within_a_day(engine: Engine) -> None:
    seed_hosts(engine)
    with Session(engine) as session:
        hosts = page_health(session, now=NOW)

    by_host = {h.host: h for h in hosts}
    assert set(by_host) == {"blocked.example", "flaky.example"}  # old.example is past the day
    blocked = by_host["blocked.example"]
    assert (blocked.stored, blocked.retrying, blocked.given_up) == (0, 1, 4)
    assert blocked.last_reason == "fetch: HTTP 403 Forbidden (latest)"
    flaky = by_host["flaky.example"]
    assert (flaky.stored, flaky.failed) == (5, 1)
    assert [h.host for h in blocking_hosts(hosts)] == ["blocked.example"]


def test_the_daily_report_lists_a_site_that_blocks_us(engine: Engine) -> None:
    seed_hosts(engine)
    with Session(engine) as session:
        report = build_report(session, day=date(2024, 9, 9), rules=ReportRules(), now=NOW)

    [site] = report.health.pages
    assert (site.host, site.failed, site.stored) == ("blocked.example", 5, 0)
    assert report.health.problems == 1
    payload = report_payload(report)
    assert payload["feed_health"]["pages"][0]["host"] == "blocked.example"
    assert payload["feed_health"]["pages"][0]["since"] == "2024-09-10T04:55:00Z"
    rendered = render_report(report, report_environment())
    assert "Article pages failing, by site:" in rendered.text
    assert "blocked.example: 5 pages failed, 0 fetched" in rendered.text
    assert "blocked.example</strong>: 5 pages failed" in rendered.html


def test_prune_removes_bodies_and_pages_with_their_articles(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        old = add_page(session, 1, "a.example", PageStatus.DONE, seen=NOW - timedelta(days=200))
        store_body(session, article_id=old, body="An old body. " * 30, method="trafilatura")
        kept = add_page(session, 2, "a.example", PageStatus.DONE)
        store_body(session, article_id=kept, body="A recent body. " * 30, method="trafilatura")

    result = prune_archive(engine, RetentionRules(), now=NOW)

    assert result.articles == 1
    with Session(engine) as session:
        assert [a.id for a in session.exec(select(Article))] == [kept]
        assert [p.article_id for p in session.exec(select(ArticlePage))] == [kept]
