"""Backlog counts nowhere in a report: not in a day's volume, its stories, sources or baseline.

The defect: on the day 34 feeds were added, 31 of the 32 matches in the report for the 2024
election topic were 10 or more months old, a spike that was only a new feed's archive.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import Session, select

from monitor.models import Feed, Topic
from monitor.reports import build_report
from monitor.reports.build import report_payload
from tests.reports.scenario import DAY, NOW, RULES, Builder, local


def test_a_new_feeds_archive_changes_nothing_in_the_report(seeded: Engine) -> None:
    with Session(seeded) as session:
        before = report_payload(build_report(session, day=DAY, rules=RULES, now=NOW))
    with Session(seeded) as session, session.begin():
        builder = Builder(session, serial=10_000)
        archive = builder.feed("New Archive", "https://archive.example.org/rss")
        election = session.exec(select(Topic).where(Topic.slug == "election-interference")).one()
        banks = session.exec(select(Topic).where(Topic.slug == "central-banks")).one()
        # The day a feed was added ten days before, and the report's own day: its archive.
        for day, count in [(DAY - timedelta(days=10), 40), (DAY, 31)]:
            for n in range(count):
                old = builder.article(
                    f"Archived election story {day} {n}",
                    local(day, 9, n % 60),
                    [archive],
                    [election, banks],
                )
                old.backlog = True
                session.add(old)

    with Session(seeded) as session:
        after = report_payload(build_report(session, day=DAY, rules=RULES, now=NOW))
        feeds = session.exec(select(Feed.title)).all()

    assert "New Archive" in feeds
    # Feed health may list the new feed; every topic's figures stay exactly as they were.
    assert (after["topics"], after["spikes"]) == (before["topics"], before["spikes"])
    topic = next(t for t in after["topics"] if t["slug"] == "election-interference")
    assert all("Archived" not in story["title"] for story in topic["top_stories"])
