"""A feed's page over HTTP: edit title, category, interval and article pages; pause, resume,
retry; delete with its articles kept or pruned; every form needs the session's CSRF token."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlmodel import Session, col, select

from monitor.ingest.prune import remove_feed
from monitor.models import Article, Feed, FeedState, Match, Sighting, Tombstone
from monitor.sources.feeds import (
    CheckOutcome,
    add_feed,
    list_feeds,
    record_success,
    ref_of,
    select_due_feeds,
)
from monitor.sources.schedule import Bounds, Observations, plan_interval
from tests.utils.factories import add_article, add_topic
from tests.web.site import NOW, Site

OTHER = "https://other.example/feed.xml"


def two_feeds(site: Site) -> tuple[int, int, list[int]]:
    """The first feed with three articles (the last one carried by a second feed too, and one
    matched by a topic), the second feed; their ids and the articles'."""
    with Session(site.engine) as session, session.begin():
        ids = [
            add_article(session, f"Story {n}", seen=NOW - timedelta(hours=n)).id or 0
            for n in range(3)
        ]
        first = session.exec(select(Feed)).one()
        other, _ = add_feed(
            session, url=OTHER, title="Other", interval=timedelta(minutes=15), now=NOW
        )
        for article_id in ids:
            session.add(
                Sighting(
                    article_id=article_id,
                    feed_id=first.id or 0,
                    first_seen_at=NOW,
                    last_seen_at=NOW,
                )
            )
        session.add(
            Sighting(
                article_id=ids[2],
                feed_id=other.id or 0,
                first_seen_at=NOW + timedelta(minutes=1),
                last_seen_at=NOW,
            )
        )
        topic = add_topic(session, "stories", "story")
        session.add(Match(article_id=ids[0], topic_id=topic.id or 0, topic_version=1, score=1.0))
        return first.id or 0, other.id or 0, ids


def test_the_settings_are_saved_and_shown(site: Site) -> None:
    feed_id, _, _ = two_feeds(site)
    response = site.post(
        f"/feeds/{feed_id}",
        {"title": "Desk wire", "category": "Europe", "interval": "2h", "fetch_pages": "always"},
    )
    assert response.status_code == 200, response.text  # after the redirect
    assert (
        "Saved: title &#39;Desk wire&#39;; category &#39;Europe&#39;; interval 2h; "
        "article pages always." in response.text
    )
    with Session(site.engine) as session:
        feed = session.get(Feed, feed_id)
        assert feed is not None
        assert (feed.title, feed.title_locked, feed.category) == ("Desk wire", True, "Europe")
        assert (feed.fixed_interval_seconds, feed.fetch_pages) == (7200, "always")
        # The feed's own title at its next check does not replace the one set here.
        record_success(
            session,
            ref_of(feed),
            CheckOutcome(etag=None, last_modified=None, title="Wire Service Feed"),
            now=NOW,
            rng=random.Random(1),
        )
        assert feed.title == "Desk wire"
    page = site.client.get(f"/feeds/{feed_id}").text
    assert "2h (fixed)" in page
    assert 'value="2h"' in page

    # Back to adaptive, and to the feed's own title.
    response = site.post(
        f"/feeds/{feed_id}",
        {"title": "", "category": "Europe", "interval": "auto", "fetch_pages": "always"},
    )
    with Session(site.engine) as session:
        feed = session.get(Feed, feed_id)
        assert feed is not None
        assert (feed.fixed_interval_seconds, feed.title_locked) == (None, False)


def test_a_fixed_interval_replaces_the_adaptive_one() -> None:
    seen = Observations(
        current=timedelta(minutes=15),
        default=timedelta(minutes=15),
        rate=200.0,
        new_items=50,
        listed_items=50,
        fixed=timedelta(hours=2),
    )
    planned = plan_interval(seen, Bounds(timedelta(minutes=5), timedelta(days=1)))
    assert planned.interval == timedelta(hours=2)
    assert planned.reason == "set to 2h by an admin"


@pytest.mark.parametrize(
    ("interval", "error"),
    [
        ("1m", "interval 1m is outside the allowed 5m to 1d"),
        ("often", "not a duration: &#39;often&#39;"),
    ],
)
def test_a_bad_interval_is_refused_and_nothing_changes(
    site: Site, interval: str, error: str
) -> None:
    feed_id, _, _ = two_feeds(site)
    response = site.post(f"/feeds/{feed_id}", {"title": "New", "interval": interval})
    assert response.status_code == 400
    assert error in response.text
    with Session(site.engine) as session:
        feed = session.get(Feed, feed_id)
        assert feed is not None
        assert (feed.title, feed.fixed_interval_seconds) == ("Example News", None)


def test_pause_stops_polling_and_resume_starts_it(site: Site) -> None:
    feed_id, other_id, _ = two_feeds(site)
    response = site.post(f"/feeds/{feed_id}/pause", {})
    assert "Paused: it is not polled until resumed." in response.text
    with Session(site.engine) as session:
        due = [ref.id for ref in select_due_feeds(session, now=NOW + timedelta(days=1), limit=9)]
        feed = session.get(Feed, feed_id)
        assert feed is not None
        assert feed.state == FeedState.DISABLED
        assert feed.disabled_reason == "paused by ada at 2024-09-09 12:00 UTC"
    assert due == [other_id]
    page = site.client.get(f"/feeds/{feed_id}").text
    assert ">paused</span>" in page
    assert ">Resume</button>" in page

    response = site.post(f"/feeds/{feed_id}/retry", {})
    assert "Due now: the service polls it on its next tick." in response.text
    with Session(site.engine) as session:
        feed = session.get(Feed, feed_id)
        assert feed is not None
        assert (feed.state, feed.next_check_at) == (FeedState.ACTIVE, NOW)


@pytest.mark.parametrize("choice", ["keep", "prune"])
def test_delete_keeps_or_prunes_the_articles_only_it_carried(site: Site, choice: str) -> None:
    feed_id, other_id, ids = two_feeds(site)
    response = site.post(f"/feeds/{feed_id}/delete", {"articles": choice})
    assert response.status_code == 200
    assert response.url.path == "/feeds"
    kept, pruned = (2, 0) if choice == "keep" else (0, 2)
    assert f"{kept} articles kept, {pruned} pruned, 1 carried by other feeds too" in response.text
    with Session(site.engine) as session:
        articles = {a.id: a.feed_id for a in session.exec(select(Article))}
        tombstones = len(session.exec(select(Tombstone)).all())
        feed = session.get(Feed, feed_id)
        listed = [f.url for f in list_feeds(session)]
        matches = len(session.exec(select(Match)).all())
        sightings = session.exec(select(Sighting.feed_id).where(col(Sighting.feed_id) == feed_id))
        assert list(sightings) == []
    # The article the other feed carried too is now the other feed's, either way.
    assert articles[ids[2]] == other_id
    assert listed == [OTHER]
    if choice == "keep":
        assert articles == {ids[0]: feed_id, ids[1]: feed_id, ids[2]: other_id}
        assert feed is not None
        assert feed.state == FeedState.REMOVED  # kept so that its articles keep their source
        assert (tombstones, matches) == (0, 1)
        assert site.client.get(f"/feeds/{feed_id}").status_code == 404
    else:
        assert articles == {ids[2]: other_id}
        assert feed is None
        assert (tombstones, matches) == (2, 0)
    assert "Example News" not in site.client.get("/feeds").text


def test_delete_asks_what_becomes_of_the_articles(site: Site) -> None:
    feed_id, _, _ = two_feeds(site)
    response = site.post(f"/feeds/{feed_id}/delete", {})
    assert response.status_code == 400
    assert "Choose whether to keep or prune its articles." in response.text
    with Session(site.engine) as session:
        assert session.get(Feed, feed_id) is not None


def test_a_deleted_feed_added_again_is_polled_again(site: Site) -> None:
    feed_id, _, _ = two_feeds(site)
    with Session(site.engine) as session, session.begin():
        feed = session.get(Feed, feed_id)
        assert feed is not None
        remove_feed(session, feed, keep_articles=True, now=NOW)
        again, is_new = add_feed(
            session, url=feed.url, interval=timedelta(minutes=15), now=NOW + timedelta(days=1)
        )
        assert (again.id, is_new, again.state) == (feed_id, True, FeedState.ACTIVE)


@pytest.mark.parametrize("action", ["", "/pause", "/retry", "/delete"])
def test_every_feed_form_needs_the_csrf_token(site: Site, action: str) -> None:
    feed_id, _, _ = two_feeds(site)
    response = site.client.post(
        f"/feeds/{feed_id}{action}", data={"articles": "prune", "title": "x"}
    )
    assert response.status_code == 403
    with Session(site.engine) as session:
        feed = session.get(Feed, feed_id)
        assert feed is not None
        assert (feed.title, feed.state) == ("Example News", FeedState.ACTIVE)


def test_a_signed_out_visitor_is_sent_to_sign_in(site: Site) -> None:
    feed_id, _, _ = two_feeds(site)
    site.client.cookies.clear()
    response = site.client.get(f"/feeds/{feed_id}", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next=/feeds/{feed_id}"


def test_a_notice_in_a_link_from_elsewhere_is_not_shown(site: Site) -> None:
    feed_id, _, _ = two_feeds(site)
    forged = "Your session expired: sign in at https://evil.example"
    page = site.client.get(f"/feeds/{feed_id}", params={"done": forged, "sig": "0" * 32}).text
    assert "evil.example" not in page
    assert "evil.example" not in site.client.get("/feeds", params={"done": forged}).text
