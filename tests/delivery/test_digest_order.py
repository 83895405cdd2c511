"""One order for every digest, and nothing a digest covers out of reach.

- Each story once, filed under its best topic: high priority first, then score, then slug.
- Sections: high-priority topics first, then by name; stories newest first (first seen, then
  published, then feed order); the counts of the subject, headings and intro agree.
- A digest lists ``digest.max_articles`` stories; the rest are counted per topic, and linked
  to the digest's page, which lists every story; every article stays recorded as delivered.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from monitor.delivery.digest import Digest, DigestArticle, DigestSection
from monitor.delivery.dispatch import SendReport
from monitor.delivery.render import build_environment, digest_subject
from monitor.models import DeliveryItem, Match, Story, Topic
from monitor.operations import open_database, send_digests, sync_config
from monitor.settings import Settings
from monitor.web import create_app
from tests.utils.config import ConfigWriter
from tests.utils.factories import add_article
from tests.utils.smtpserver import SmtpServer

T0 = datetime(2024, 9, 9, 4, 0, tzinfo=UTC)
SEEN = T0 + timedelta(minutes=30)
LATER = T0 + timedelta(hours=1)
READER = "reader@example.org"
TOPICS = [
    {"slug": "alpha", "name": "Alpha", "keywords": ["alpha"]},
    {"slug": "beta", "name": "Beta", "keywords": ["beta"]},
    {"slug": "zulu", "name": "Zulu alerts", "keywords": ["zulu"], "priority": "high"},
]


@dataclass
class Desk:
    engine: Engine
    settings: Settings
    smtp: SmtpServer
    topics: dict[str, int]

    def article(
        self,
        title: str,
        scores: dict[str, float],
        *,
        seen: datetime = SEEN,
        published: datetime | None = None,
        story: int | None = None,
    ) -> int:
        with Session(self.engine) as session, session.begin():
            article = add_article(session, title, seen=seen, summary="What happened.")
            article.published_at = published
            article.story_id = story
            session.add(article)
            for slug, score in scores.items():
                session.add(Match(article_id=article.id or 0, topic_id=self.topics[slug],
                                  topic_version=1, score=score, terms=[slug],
                                  matched_at=seen))  # fmt: skip
            return article.id or 0

    def story(self) -> int:
        with Session(self.engine) as session, session.begin():
            story = Story(first_seen_at=SEEN, last_seen_at=SEEN)
            session.add(story)
            session.flush()
            return story.id or 0

    def send(self) -> SendReport:
        return asyncio.run(send_digests(self.engine, self.settings, scheduled=False, now=LATER))

    def text(self) -> str:
        [received] = self.smtp.messages
        part = received.message.get_body(("plain",))
        assert part is not None
        return str(part.get_content()).replace("\r\n", "\n")

    def subject(self) -> str:
        [received] = self.smtp.messages
        return str(received.message["Subject"])


@pytest.fixture
def make_desk(config: ConfigWriter, smtp_server: SmtpServer) -> Iterator[Callable[..., Desk]]:
    engines: list[Engine] = []

    def make(max_articles: int = 200) -> Desk:
        config.smtp_port = smtp_server.port
        config.topics = [dict(t) for t in TOPICS]
        config.subscribers = [
            {"email": READER, "timezone": "UTC", "topics": [t["slug"] for t in TOPICS]}
        ]
        config.extra_toml = f"[digest]\nmax_articles = {max_articles}\n"
        settings = config.settings()
        engine = open_database(settings)
        engines.append(engine)
        sync_config(engine, settings, now=T0)
        with Session(engine) as session:
            topics = {t.slug: t.id or 0 for t in session.exec(select(Topic)).all()}
        return Desk(engine, settings, smtp_server, topics)

    yield make
    for engine in engines:
        engine.dispose()


def listing(text: str) -> list[str]:
    """The headings and story titles of a text digest, in order."""
    return [line for line in text.splitlines() if line.startswith(("== ", "* "))]


def test_stories_of_one_poll_are_listed_newest_published_first(
    make_desk: Callable[..., Desk],
) -> None:
    desk = make_desk()
    # One poll run: every item first seen at the same moment, stored in the feed's order.
    for hour, title in [(9, "alpha nine"), (7, "alpha seven"), (8, "alpha eight")]:
        desk.article(title, {"alpha": 1.0}, published=T0.replace(hour=hour) - timedelta(days=1))
    desk.article("alpha undated", {"alpha": 1.0})
    desk.article("alpha seen later", {"alpha": 1.0}, seen=SEEN + timedelta(minutes=5),
                 published=T0 - timedelta(days=3))  # fmt: skip

    desk.send()

    assert listing(desk.text()) == [
        "== Alpha (5) ==",
        "* alpha seen later",
        "* alpha nine",
        "* alpha eight",
        "* alpha seven",
        "* alpha undated",
    ]


def test_a_story_is_filed_once_under_its_best_topic_and_counts_agree(
    make_desk: Callable[..., Desk],
) -> None:
    desk = make_desk()
    # Matched a high-priority topic weakly and a normal one strongly: high priority wins.
    desk.article("zulu and alpha", {"alpha": 9.0, "zulu": 0.5})
    # Two copies of one story, each delivered under another topic: one story, under the best.
    story = desk.story()
    desk.article("beta wire copy", {"beta": 1.0}, story=story)
    desk.article("alpha wire copy", {"alpha": 3.0}, story=story, seen=SEEN + timedelta(seconds=1))
    desk.article("beta alone", {"beta": 2.0})

    desk.send()

    text = desk.text()
    assert listing(text) == [
        "== Zulu alerts (1) ==",
        "* zulu and alpha",
        "== Alpha (1) ==",
        "* beta wire copy",
        "== Beta (1) ==",
        "* beta alone",
    ]
    assert desk.subject() == "[monitor] Zulu alerts (1), Alpha (1), Beta (1)"
    assert "Your digest: 3 new stories (4 articles) match the topics you follow." in text


def test_overflow_is_counted_right_and_listed_on_the_digest_page(
    make_desk: Callable[..., Desk],
) -> None:
    desk = make_desk(max_articles=200)
    ids = [
        desk.article(f"alpha item {n:03d}", {"alpha": 1.0}, seen=SEEN + timedelta(seconds=n))
        for n in range(250)
    ]

    report = desk.send()

    assert report.sent == [READER]
    text = desk.text()
    titles = [line for line in listing(text) if line.startswith("* ")]
    assert len(titles) == 200
    assert titles[0] == "* alpha item 249"
    assert "== Alpha (250) ==" in text
    assert desk.subject() == "[monitor] Alpha (250)"
    found = re.search(r"\.\.\. and 50 more stories in this topic\. Every story of this "
                      r"digest:\n  (\S+)\n", text)  # fmt: skip
    assert found is not None, text
    with Session(desk.engine) as session:
        delivered = session.exec(select(func.count()).select_from(DeliveryItem)).one()
    assert delivered == len(ids)

    url = found.group(1)
    assert url.startswith(desk.settings.web.base_url + "/digests/")
    with TestClient(create_app(desk.settings, desk.engine)) as client:
        page = client.get(url.removeprefix(desk.settings.web.base_url))
        forged = client.get(url.removeprefix(desk.settings.web.base_url) + "x")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    for n in range(250):
        assert f"alpha item {n:03d}" in page.text
    assert "more stories in this topic" not in page.text
    assert forged.status_code == 400


def test_overflow_of_story_copies_counts_stories_and_their_articles(
    make_desk: Callable[..., Desk],
) -> None:
    desk = make_desk(max_articles=1)
    desk.article("alpha newest", {"alpha": 1.0}, seen=SEEN + timedelta(minutes=1))
    story = desk.story()
    for copy in range(3):
        desk.article(f"alpha copy {copy}", {"alpha": 1.0}, story=story)

    desk.send()

    text = desk.text()
    assert listing(text) == ["== Alpha (2) ==", "* alpha newest"]
    assert "... and 1 more story (3 articles) in this topic." in text


def test_long_titles_are_cut_in_lists(make_desk: Callable[..., Desk]) -> None:
    desk = make_desk()
    title = "zulu" + "x" * 10_000
    desk.article(title, {"zulu": 1.0})
    desk.article("alpha short", {"alpha": 1.0})

    desk.send()

    [line] = [line for line in desk.text().splitlines() if line.startswith("* zulu")]
    assert len(line) <= 302
    assert line.endswith("\u2026")


def test_instant_alert_titled_by_a_huge_title_has_a_short_subject() -> None:
    title = "x" * 10_000
    article = DigestArticle(title=title, url="https://news.example/a", outlet="Example",
                            published_at=None, first_seen_at=SEEN, excerpt="",
                            terms=())  # fmt: skip
    digest = Digest(delivery_id=1, message_id="<m@x>", email=READER, name="", timezone="UTC",
                    created_at=SEEN, sections=[DigestSection("alpha", "Alpha", [article])],
                    frequency="instant")  # fmt: skip

    subject = digest_subject(build_environment(), digest, "[monitor]")

    assert subject.startswith("[monitor] Alpha: xxx")
    assert subject.endswith("\u2026")
    assert len(subject) == 200
