"""The page queue (``article_page``): which articles' pages are due, claimed, retried, given up.

A new article gets a row when its feed fetches pages (``fetch_pages``: ``always``, or ``auto``
and its feed text is short). Workers claim due rows with a lease, as they claim feeds: on
PostgreSQL ``SELECT ... FOR UPDATE SKIP LOCKED``, so several workers share the queue and a
page is fetched by one; a claim takes at most a few pages of any one host, oldest first, so
one site's backlog never fills a claim. A failure counts an attempt and backs off (doubling),
until ``pages.max_attempts``; then, or at once for what retrying cannot fix, the row is failed
with its reason and the article keeps its feed text. The queue lives in the database, so it
survives restarts.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import ColumnElement, func, or_
from sqlmodel import Session, col, select, update

from monitor.db import dialect_insert
from monitor.models import Article, ArticlePage, Feed, FetchPages, PageStatus

MAX_REASON_LENGTH = 1000


@dataclass(frozen=True, slots=True)
class PageJob:
    """A claimed page and what preparing it needs of its article and feed, detached."""

    article_id: int
    url: str
    host: str
    attempts: int
    lease_owner: str | None
    title: str
    summary: str
    content: str
    author: str
    language: str
    article_url: str
    feed_title: str
    feed_url: str


def page_host(url: str) -> str | None:
    """The host of an http(s) URL, lower-cased; None when the URL cannot be fetched."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return None
    return parsed.host.lower()[:255]


def wants_page(mode: str, *, summary: str, content: str, auto_below: int) -> bool:
    """Whether an article of a feed set to ``mode`` has its page fetched."""
    if mode == FetchPages.ALWAYS:
        return True
    if mode == FetchPages.NEVER:
        return False
    return len(summary.strip()) + len(content.strip()) < auto_below


def queue_pages(
    session: Session, articles: Sequence[Article], *, mode: str, auto_below: int, now: datetime
) -> int:
    """Queue the pages of these new articles that their feed's ``mode`` asks for; how many."""
    rows = []
    for article in articles:
        host = page_host(article.url)
        if host is None or article.id is None:
            continue
        if not wants_page(
            mode, summary=article.summary, content=article.content, auto_below=auto_below
        ):
            continue
        rows.append(
            {
                "article_id": article.id,
                "url": article.url,
                "host": host,
                "status": PageStatus.PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "title": "",
                "author": "",
                "language": "",
                "created_at": now,
            }
        )
    if not rows:
        return 0
    session.execute(
        dialect_insert(session, ArticlePage).on_conflict_do_nothing(index_elements=["article_id"]),
        rows,
    )
    return len(rows)


def _claimable(now: datetime, due_by: datetime) -> ColumnElement[bool]:
    """Pending, due by ``due_by``, under no lease still running at ``now``."""
    return (
        (col(ArticlePage.status) == PageStatus.PENDING)
        & (col(ArticlePage.next_attempt_at) <= due_by)
        & or_(col(ArticlePage.lease_until).is_(None), col(ArticlePage.lease_until) <= now)
    )


def claim_due_pages(
    session: Session,
    *,
    now: datetime,
    limit: int,
    per_host: int,
    owner: str,
    lease: timedelta,
    due_by: datetime | None = None,
    busy_hosts: Collection[str] = (),
) -> list[PageJob]:
    """Lease up to ``limit`` due pages to ``owner``, at most ``per_host`` of any host (none of
    ``busy_hosts``), each host's oldest first and the hosts taken in turn.

    The caller commits at once: on PostgreSQL the rows stay locked until then.
    """
    due = _claimable(now, due_by or now)
    if busy_hosts:
        due = due & col(ArticlePage.host).not_in(list(busy_hosts))
    rank = (
        func.row_number()
        .over(
            partition_by=col(ArticlePage.host),
            order_by=(col(ArticlePage.next_attempt_at), col(ArticlePage.article_id)),
        )
        .label("rank")
    )
    ranked = (
        select(col(ArticlePage.article_id).label("article_id"), rank).where(due).subquery("ranked")
    )
    picked = (
        select(ranked.c.article_id)
        .where(ranked.c.rank <= per_host)
        .order_by(ranked.c.rank, ranked.c.article_id)
        .limit(limit)
    )
    # Locked in a query of its own: PostgreSQL takes no row locks beside a window function.
    rows = list(
        session.exec(
            select(ArticlePage)
            .where(col(ArticlePage.article_id).in_(picked), due)
            .with_for_update(skip_locked=True)
        )
    )
    if not rows:
        return []
    ids = [row.article_id for row in rows]
    session.execute(
        update(ArticlePage)
        .where(col(ArticlePage.article_id).in_(ids))
        .values(lease_owner=owner, lease_until=now + lease)
        .execution_options(synchronize_session=False)
    )
    found = session.exec(
        select(Article, Feed)
        .join(Feed, col(Feed.id) == Article.feed_id)
        .where(col(Article.id).in_(ids))
    ).all()
    articles = {article.id: (article, feed) for article, feed in found}
    jobs = []
    for row in sorted(rows, key=lambda r: (r.next_attempt_at, r.article_id)):
        article, feed = articles[row.article_id]
        jobs.append(
            PageJob(
                article_id=row.article_id,
                url=row.url,
                host=row.host,
                attempts=row.attempts,
                lease_owner=owner,
                title=article.title,
                summary=article.summary,
                content=article.content,
                author=article.author,
                language=article.language,
                article_url=article.url,
                feed_title=feed.title,
                feed_url=feed.url,
            )
        )
    return jobs


def count_due_pages(session: Session, *, now: datetime) -> int:
    """How many pages are due at ``now`` and free of any live lease."""
    statement = select(func.count()).select_from(ArticlePage).where(_claimable(now, now))
    return session.exec(statement).one()


def expire_pages(session: Session, *, now: datetime, max_age: timedelta) -> int:
    """Give up pages still pending for articles queued longer than ``max_age`` ago."""
    result = session.execute(
        update(ArticlePage)
        .where(
            col(ArticlePage.status) == PageStatus.PENDING,
            col(ArticlePage.created_at) < now - max_age,
            or_(col(ArticlePage.lease_until).is_(None), col(ArticlePage.lease_until) <= now),
        )
        .values(
            status=PageStatus.FAILED,
            reason=func.coalesce(col(ArticlePage.reason) + "; ", "")
            + "not fetched in time, given up",
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def backoff(attempts: int, *, base: timedelta, retry_after: timedelta | None) -> timedelta:
    """The wait before the next attempt after ``attempts`` failed ones: doubling from ``base``,
    and at least what the server asked for."""
    wait: timedelta = base * (2 ** max(0, attempts - 1))
    return max(wait, retry_after) if retry_after is not None else wait


def record_page_failure(
    session: Session,
    job: PageJob,
    reason: str,
    *,
    now: datetime,
    max_attempts: int,
    base_backoff: timedelta,
    permanent: bool = False,
    retry_after: timedelta | None = None,
    http_status: int | None = None,
) -> bool:
    """Count a failed attempt with its reason; retry later, or give up (returns True then)."""
    attempts = job.attempts + 1
    given_up = permanent or attempts >= max_attempts
    session.execute(
        update(ArticlePage)
        .where(col(ArticlePage.article_id) == job.article_id)
        .values(
            attempts=attempts,
            last_attempt_at=now,
            reason=reason[:MAX_REASON_LENGTH],
            http_status=http_status,
            status=PageStatus.FAILED if given_up else PageStatus.PENDING,
            next_attempt_at=now + backoff(attempts, base=base_backoff, retry_after=retry_after),
        )
    )
    release_page_lease(session, job)
    return given_up


def defer_page(session: Session, job: PageJob, *, until: datetime) -> None:
    """Put a page back for later without counting an attempt (its host asked for a pause)."""
    session.execute(
        update(ArticlePage)
        .where(col(ArticlePage.article_id) == job.article_id)
        .values(next_attempt_at=until)
    )
    release_page_lease(session, job)


def release_page_lease(session: Session, job: PageJob) -> None:
    """End the lease ``job`` was claimed under, if its claimer still holds it (as feeds do)."""
    if job.lease_owner is None:
        return
    session.execute(
        update(ArticlePage)
        .where(
            col(ArticlePage.article_id) == job.article_id,
            col(ArticlePage.lease_owner) == job.lease_owner,
        )
        .values(lease_owner=None, lease_until=None)
    )


def release_page_leases(session: Session, article_ids: Collection[int], *, owner: str) -> None:
    """Give back ``owner``'s leases on these pages (work cut short), for others to claim."""
    if article_ids:
        session.execute(
            update(ArticlePage)
            .where(
                col(ArticlePage.article_id).in_(list(article_ids)),
                col(ArticlePage.lease_owner) == owner,
            )
            .values(lease_owner=None, lease_until=None)
        )


def retry_pages(session: Session, article_ids: Collection[int], *, now: datetime) -> int:
    """Make these articles' pages due now again, attempts cleared (failed and fetched ones too)."""
    result = session.execute(
        update(ArticlePage)
        .where(col(ArticlePage.article_id).in_(list(article_ids)))
        .values(
            status=PageStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            lease_until=None,
            lease_owner=None,
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
