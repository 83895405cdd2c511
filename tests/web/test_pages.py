"""The pages of the web UI, signed in, on both databases."""

from __future__ import annotations

import re
from pathlib import Path

import html5lib
import pytest
from sqlmodel import Session, select

from monitor.models import Article, Feed, Sighting, Story, Subscription, Topic
from monitor.operations import retag_pending_topics
from monitor.sources.opml import read_opml
from monitor.web.pages import highlight, safe_url
from tests.utils.factories import add_article
from tests.web.site import NOW, QUERY, REPORT_DAY, Site, seed, web_settings

PAGES = ["/", "/reports", f"/reports/{REPORT_DAY}", "/topics", "/topics/new",
         "/topics/election-interference", "/feeds", "/subscribers", "/search?q=meddl*",
         "/topics/preview?query=meddl*"]  # fmt: skip


@pytest.fixture
def seeded(site: Site, tmp_path: Path) -> Site:
    seed(site.engine, web_settings(tmp_path))
    return site


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_valid_html(seeded: Site, path: str) -> None:
    response = seeded.client.get(path)

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    parser = html5lib.HTMLParser(strict=True)
    if path.startswith("/topics/preview"):
        parser.parseFragment(response.text)
    else:
        parser.parse(response.text)


@pytest.mark.parametrize(
    ("text", "ranges", "expected"),
    [
        ("Putin <b>", [(0, 5)], "<mark>Putin</mark> &lt;b&gt;"),
        ("a b c", [(0, 1), (4, 5)], "<mark>a</mark> b <mark>c</mark>"),
        ("abc", [(0, 2), (1, 3)], "<mark>ab</mark>c"),  # overlapping: the first wins
        ("abc", [(2, 2)], "abc"),
        ("<i>", [], "&lt;i&gt;"),
    ],
)
def test_highlight(text: str, ranges: list[tuple[int, int]], expected: str) -> None:
    assert str(highlight(text, ranges)) == expected


@pytest.mark.parametrize(
    ("url", "shown"),
    [("https://a.example/x", True), ("HTTP://a.example", True), ("javascript:alert(1)", False),
     (" JavaScript:alert(1)", False), ("data:text/html,x", False), ("", False)],
)  # fmt: skip
def test_only_http_links_are_links(url: str, shown: bool) -> None:
    assert (safe_url(url) is not None) is shown


@pytest.mark.parametrize(
    ("query", "message", "column"),
    [
        ("(meddl* OR election", "unbalanced parenthesis", None),
        ("meddl* AND", "", None),
        ('"election interference', "", None),
    ],
)
def test_a_query_error_is_shown_at_its_position(
    seeded: Site, query: str, message: str, column: int | None
) -> None:
    response = seeded.client.get("/topics/preview", params={"query": query})

    assert response.status_code == 200
    found = re.search(r'data-position="(\d+)"', response.text)
    assert found, response.text
    position = int(found.group(1))
    assert f"at column {position + 1}" in response.text
    assert message in response.text
    assert '<mark class="error-at">' in response.text


def test_the_preview_counts_matches_per_day_and_highlights_them(seeded: Site) -> None:
    response = seeded.client.get("/topics/preview", params={"query": "meddl*"})

    # 14 daily articles say "meddling" in their summary, and 8 more on the report's day.
    assert 'data-total="22"' in response.text
    assert f'<td>{REPORT_DAY}</td><td class="num">9</td>' in response.text
    assert "<mark>Meddling</mark> claims multiply" in response.text
    assert response.text.count('class="bar') == 30


def test_the_no_script_preview_button_keeps_the_form(seeded: Site) -> None:
    response = seeded.post("/topics", {"slug": "x", "query": "(meddl*", "action": "preview"})

    assert response.status_code == 200
    assert "(meddl*</textarea>" in response.text
    assert 'aria-invalid="true"' in response.text
    with Session(seeded.engine) as session:
        assert session.exec(select(Topic).where(Topic.slug == "x")).first() is None


def test_a_topic_is_saved_and_tagged(seeded: Site) -> None:
    response = seeded.client.post(
        "/topics",
        data={"csrf_token": seeded.csrf(), "slug": "meddling", "name": "Meddling",
              "query": "meddl* NOT bank", "priority": "high", "enabled": "true"},
        follow_redirects=False,
    )  # fmt: skip

    assert response.status_code == 303
    assert response.headers["location"] == "/topics/meddling?saved=1"
    with Session(seeded.engine) as session:
        topic = session.exec(select(Topic).where(Topic.slug == "meddling")).one()
        assert (topic.name, topic.priority, topic.enabled) == ("Meddling", "high", True)
        assert topic.tagged_version == topic.version  # retagged at once
    assert "Meddling" in seeded.client.get("/topics").text
    assert (
        '<p class="notice" role="status">Saved.</p>'
        in seeded.client.get("/topics/meddling?saved=1").text
    )


def test_a_broken_query_is_not_saved(seeded: Site) -> None:
    response = seeded.post("/topics/election-interference", {"query": "meddl* AND (", "name": "E"})

    assert response.status_code == 400
    assert "at column" in response.text
    with Session(seeded.engine) as session:
        topic = session.exec(select(Topic).where(Topic.slug == "election-interference")).one()
        assert topic.query == QUERY


def test_editing_a_query_bumps_the_version(seeded: Site) -> None:
    response = seeded.post(
        "/topics/election-interference",
        {"query": '"election interference"', "name": "Election", "enabled": "true"},
    )

    assert response.status_code == 200  # followed the redirect to the editor
    with Session(seeded.engine) as session:
        topic = session.exec(select(Topic).where(Topic.slug == "election-interference")).one()
        assert (topic.query, topic.name, topic.version) == (
            '"election interference"',
            "Election",
            2,
        )


def test_the_report_page_has_its_charts(seeded: Site) -> None:
    response = seeded.client.get(f"/reports/{REPORT_DAY}")

    assert "<h1>Report of 2024-09-08</h1>" in response.text
    assert response.text.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart volume"') == 2
    assert 'class="bar spike"' in response.text
    assert "Spikes: election-interference" in response.text
    assert f'<a href="/reports/{REPORT_DAY}">{REPORT_DAY}</a>' in seeded.client.get("/reports").text


def test_a_missing_report_is_a_404(seeded: Site) -> None:
    assert seeded.client.get("/reports/2001-01-01").status_code == 404


def test_the_dashboard_shows_the_latest_report_and_today(seeded: Site, tmp_path: Path) -> None:
    with Session(seeded.engine) as session, session.begin():
        add_article(session, "Meddling today", seen=NOW.replace(hour=1))
        topic = session.exec(select(Topic).where(Topic.slug == "election-interference")).one()
        topic.tagged_version = 0  # retag: the new article is matched
        session.add(topic)
    retag_pending_topics(seeded.engine, web_settings(tmp_path), now=NOW)
    response = seeded.client.get("/")

    assert "Report of 2024-09-08" in response.text
    assert 'href="/reports/2024-09-08#topic-election-interference"' in response.text
    assert re.search(r'Election Interference</a></td><td class="num">1</td>', response.text)
    assert re.search(r'Central Banks</a></td><td class="num">0</td>', response.text)


def test_subscribe_and_end_a_subscription(seeded: Site) -> None:
    added = seeded.post(
        "/subscribers",
        {"email": "bob@example.org", "timezone": "Europe/Berlin", "frequency": "weekly",
         "send_time": "07:30", "weekday": "4", "topic": ["election-interference", "central-banks"]},
    )  # fmt: skip
    ended = seeded.post(
        "/subscribers/unsubscribe", {"email": "bob@example.org", "topic": "central-banks"}
    )

    assert "bob@example.org: subscribed to central-banks, election-interference." in added.text
    assert "Ended bob@example.org&#39;s subscription to central-banks." in ended.text
    with Session(seeded.engine) as session:
        rows = {s.topic_id: s for s in session.exec(select(Subscription))}
        assert len(rows) == 2
        assert sorted(s.unsubscribed_at is None for s in rows.values()) == [False, True]
        assert {(s.frequency, s.send_time, s.weekday) for s in rows.values()} == {
            ("weekly", "07:30", 4)
        }


@pytest.mark.parametrize(
    ("data", "error"),
    [({"email": "not an address"}, "address"), ({"timezone": "Mars/Base"}, "unknown time zone"),
     ({"send_time": "25:00"}, "25:00"), ({"topic": []}, "tick at least one topic")],
)  # fmt: skip
def test_a_bad_subscription_is_refused(seeded: Site, data: dict[str, object], error: str) -> None:
    form = {"email": "bob@example.org", "timezone": "UTC", "frequency": "daily",
            "send_time": "08:00", "topic": ["central-banks"], **data}  # fmt: skip

    response = seeded.post("/subscribers", form)

    assert response.status_code == 400
    assert error in response.text
    with Session(seeded.engine) as session:
        assert session.exec(select(Subscription)).first() is None


def test_opml_export_round_trips(seeded: Site) -> None:
    with Session(seeded.engine) as session, session.begin():
        session.add(Feed(url="http://127.0.0.1:8000/w.xml", title="World", category="News"))

    response = seeded.client.get("/feeds/export.opml")

    assert response.headers["content-disposition"] == 'attachment; filename="monitor-feeds.opml"'
    feeds = read_opml(response.content, source="export")
    assert ("http://127.0.0.1:8000/w.xml", "World", "News") in [
        (f.url, f.title, f.category) for f in feeds
    ]


def test_the_article_page_explains_its_matches(seeded: Site) -> None:
    with Session(seeded.engine) as session, session.begin():
        article = session.exec(
            select(Article).where(Article.title == "Meddling claims multiply (0)")
        ).one()
        other = session.exec(
            select(Article).where(Article.title == "Meddling claims multiply (1)")
        ).one()
        seen = article.first_seen_at
        story = Story(title="Meddling claims", article_count=2, outlet_count=2,
                      first_seen_at=seen, last_seen_at=seen)  # fmt: skip
        session.add(story)
        session.flush()
        article.story_id = other.story_id = story.id
        second = Feed(url="http://127.0.0.1:8000/second.xml", title="Second Outlet")
        session.add_all([article, other, second])
        session.flush()
        session.add(Sighting(article_id=article.id or 0, feed_id=second.id or 0, first_seen_at=NOW,
                             last_seen_at=NOW))  # fmt: skip
        article_id = article.id

    response = seeded.client.get(f"/articles/{article_id}")

    assert response.status_code == 200
    assert "Story: Meddling claims" in response.text
    assert "Meddling claims multiply (1)</a>" in response.text
    assert "Second Outlet" in response.text
    assert "Election Interference</a>" in response.text
    assert "In the title: <mark>Meddling</mark> claims multiply (0)" in response.text
    assert "Regulators investigate <mark>meddling</mark> in the election." in response.text
    assert '<li class="depth-1 yes"><span aria-hidden="true">✓</span>' in response.text
    assert "<code>meddl*</code>" in response.text
    assert seeded.client.get("/articles/999999").status_code == 404


@pytest.mark.parametrize(
    ("detected", "declared", "shown"),
    [
        ("ru", "en", "Language: ru (detected); en (declared by the feed) · <strong>they differ"),
        ("en", "en-GB", "Language: en (detected); en-GB (declared by the feed)</p>"),
        ("", "uk", "Language: not detected (text too short) (detected); uk (declared by the feed)"),
    ],
)
def test_the_article_page_shows_both_languages(
    seeded: Site, detected: str, declared: str, shown: str
) -> None:
    with Session(seeded.engine) as session, session.begin():
        article = session.exec(
            select(Article).where(Article.title == "Meddling claims multiply (0)")
        ).one()
        article.detected_language, article.language = detected, declared
        session.add(article)
        article_id = article.id

    page = seeded.client.get(f"/articles/{article_id}").text

    assert shown in page
    assert f'<h1 lang="{detected or declared}">' in page
