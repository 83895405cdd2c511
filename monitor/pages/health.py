"""Article pages' health per host: pages stored and failed lately, and why the last one failed.

``monitor feeds health`` and the web feeds page list every host with a failure; the daily
report lists only hosts that mostly fail (``blocking_hosts``): a site that blocks us, serves a
consent wall, or answers errors shows up, one flaky page does not.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from monitor.models import ArticlePage, PageStatus

# Pages attempted this recently count.
WINDOW = timedelta(days=1)
# A host is reported when at least this many of its pages failed, and more failed than worked.
REPORT_MIN_FAILURES = 3


@dataclass(frozen=True, slots=True)
class HostPages:
    """One host's article pages attempted within the window."""

    host: str
    stored: int
    retrying: int
    given_up: int
    last_reason: str | None = None
    last_failure_at: datetime | None = None

    @property
    def failed(self) -> int:
        """Pages whose last attempt failed (waiting for a retry, or given up)."""
        return self.retrying + self.given_up


def page_health(session: Session, *, now: datetime, window: timedelta = WINDOW) -> list[HostPages]:
    """Every host with article pages attempted since ``now - window``, most failures first."""
    since = now - window
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    latest: dict[str, datetime] = {}
    has_reason = col(ArticlePage.reason).is_not(None)
    rows = session.execute(
        sa_select(
            col(ArticlePage.host),
            col(ArticlePage.status),
            has_reason,
            func.count(),
            func.max(col(ArticlePage.last_attempt_at)),
        )
        .where(col(ArticlePage.last_attempt_at) >= since)
        .group_by(col(ArticlePage.host), col(ArticlePage.status), has_reason)
    ).all()
    for host, status, has_reason, count, last in rows:
        kind = "stored" if status == PageStatus.DONE else "given_up"
        if status == PageStatus.PENDING:
            kind = "retrying" if has_reason else "stored"
        counts[host][kind] += count
        if kind != "stored" and last is not None:
            latest[host] = max(latest.get(host, last), last)
    reasons = _last_reasons(session, latest)
    found = [
        HostPages(
            host,
            stored=kinds["stored"],
            retrying=kinds["retrying"],
            given_up=kinds["given_up"],
            last_reason=reasons.get(host),
            last_failure_at=latest.get(host),
        )
        for host, kinds in counts.items()
    ]
    return sorted(found, key=lambda h: (-h.failed, h.host))


def _last_reasons(session: Session, latest: dict[str, datetime]) -> dict[str, str]:
    reasons: dict[str, str] = {}
    for host, when in latest.items():
        reason = session.exec(
            select(ArticlePage.reason).where(
                ArticlePage.host == host,
                ArticlePage.last_attempt_at == when,
                col(ArticlePage.reason).is_not(None),
                ArticlePage.status != PageStatus.DONE,
            )
        ).first()
        if reason:
            reasons[host] = reason
    return reasons


def blocking_hosts(hosts: list[HostPages]) -> list[HostPages]:
    """The hosts that mostly fail: at least REPORT_MIN_FAILURES failed pages, more than stored."""
    return [h for h in hosts if h.failed >= REPORT_MIN_FAILURES and h.failed > h.stored]
