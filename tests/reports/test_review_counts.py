"""The report's "12 of 40 reviewed": the day's articles a reviewer marked in the inbox when the
report was built; other days' and a topic's other articles do not count."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from monitor.models import Article, Match, ReviewState, Topic
from monitor.reports import build_report, render_report, report_environment
from monitor.reports.build import day_bounds
from monitor.review.report import with_live_reviews
from monitor.review.store import set_reviews
from tests.reports.scenario import DAY, NOW, RULES


def _mark(engine: Engine, slug: str, *, on_day: bool, count: int, state: ReviewState) -> None:
    start, end = day_bounds(DAY, RULES.zone)
    with Session(engine) as session, session.begin():
        topic = session.exec(select(Topic).where(Topic.slug == slug)).one()
        in_day = (col(Article.first_seen_at) >= start) & (col(Article.first_seen_at) < end)
        ids = session.exec(
            select(Article.id)
            .join(Match, col(Match.article_id) == Article.id)
            .where(Match.topic_id == topic.id, in_day if on_day else ~in_day)
            .order_by(col(Article.id))
            .limit(count)
        ).all()
        set_reviews(session, topic_id=topic.id or 0, article_ids=[i or 0 for i in ids],
                    state=state, note=None, by="ada", now=NOW)  # fmt: skip


def test_the_report_counts_what_was_reviewed_of_the_day(seeded: Engine) -> None:
    _mark(seeded, "election-interference", on_day=True, count=2, state=ReviewState.REVIEWED)
    _mark(seeded, "election-interference", on_day=True, count=3, state=ReviewState.FLAGGED)
    _mark(seeded, "election-interference", on_day=False, count=4, state=ReviewState.REVIEWED)
    with Session(seeded) as session:
        report = build_report(session, day=DAY, rules=RULES, now=NOW)
    topics = {t.slug: t for t in report.topics}
    # The first two of the three flagged were reviewed before: three articles in all.
    assert (topics["election-interference"].reviewed, topics["election-interference"].articles) == (
        3, 12)  # fmt: skip
    assert topics["central-banks"].reviewed == 0
    rendered = render_report(report, report_environment())
    assert "3 of 12 reviewed." in rendered.text
    assert "3 of 12 reviewed." in rendered.html
    assert rendered.payload["topics"][0]["reviewed"] == 3


def test_the_web_shows_the_counts_as_of_now(seeded: Engine) -> None:
    with Session(seeded) as session:
        report = build_report(session, day=DAY, rules=RULES, now=NOW)
    payload = render_report(report, report_environment()).payload
    _mark(seeded, "central-banks", on_day=True, count=2, state=ReviewState.DISMISSED)
    with Session(seeded) as session:
        fresh = with_live_reviews(session, payload)
    reviewed = {t["slug"]: t["reviewed"] for t in fresh["topics"]}
    assert reviewed["central-banks"] == 2
    assert reviewed["election-interference"] == 0
    assert {t["slug"]: t["reviewed"] for t in payload["topics"]}["central-banks"] == 0
