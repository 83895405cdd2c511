"""A subscriber's page over HTTP: time zone from the IANA list, each subscription's schedule,
the delivery history; the list links to it and offers the zones as a menu."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from monitor.delivery.subscriptions import subscribe_topics, time_zones
from monitor.models import (
    Delivery,
    DeliveryItem,
    DeliveryStatus,
    Subscriber,
    Subscription,
    Topic,
)
from tests.utils.factories import add_article, add_topic
from tests.web.site import NOW, Site

EMAIL = "reader@example.org"


def reader(site: Site) -> int:
    """A reader of two topics, with a sent digest of two articles and a refused one."""
    with Session(site.engine) as session, session.begin():
        topics = [add_topic(session, "votes", "vote"), add_topic(session, "banks", "bank")]
        subscribe_topics(
            session,
            email=EMAIL,
            topics=topics,
            schedule=None,
            timezone="UTC",
            name="Reader",
            now=NOW,
        )
        subscriber = session.exec(select(Subscriber)).one()
        sent = Delivery(
            subscriber_id=subscriber.id or 0,
            period_key="daily:2024-09-08@08:00",
            status=DeliveryStatus.SENT,
            message_id="<a@x>",
            attempts=1,
            created_at=NOW - timedelta(days=1),
            sent_at=NOW - timedelta(days=1),
        )
        failed = Delivery(
            subscriber_id=subscriber.id or 0,
            period_key="daily:2024-09-09@08:00",
            status=DeliveryStatus.FAILED,
            message_id="<b@x>",
            attempts=3,
            last_error="550 mailbox unavailable",
            created_at=NOW,
        )
        session.add_all([sent, failed])
        session.flush()
        for n in range(2):
            article = add_article(session, f"Vote story {n}", seen=NOW)
            session.add(
                DeliveryItem(
                    delivery_id=sent.id or 0,
                    subscriber_id=subscriber.id,
                    article_id=article.id or 0,
                    topic_id=topics[0].id or 0,
                )
            )
        return subscriber.id or 0


def test_the_page_shows_schedules_zones_and_deliveries(site: Site) -> None:
    subscriber_id = reader(site)
    listing = site.client.get("/subscribers").text
    assert f'<a href="/subscribers/{subscriber_id}">{EMAIL}</a>' in listing
    assert '<select id="timezone" name="timezone">' in listing

    page = site.client.get(f"/subscribers/{subscriber_id}").text
    zone_menu = page.split('<select id="zone"', 1)[1].split("</select>", 1)[0]
    assert zone_menu.count("<option") == len(time_zones())
    assert "<option selected>UTC</option>" in zone_menu
    assert "<option>Europe/Berlin</option>" in zone_menu
    deliveries = page.split('id="deliveries"', 1)[1]
    rows = deliveries.split("<tbody>", 1)[1].split("</tbody>", 1)[0].count("<tr")
    assert rows == 2
    assert "550 mailbox unavailable" in deliveries
    assert (
        '<tr class="status-sent"><td>2024-09-08 12:00 UTC</td><td>daily:2024-09-08@08:00'
        '</td><td>e-mail</td><td>sent</td><td class="num">2</td>' in deliveries
    )


def test_the_time_zone_is_chosen_and_checked(site: Site) -> None:
    subscriber_id = reader(site)
    response = site.post(f"/subscribers/{subscriber_id}/timezone", {"timezone": "Europe/Berlin"})
    assert "Time zone: Europe/Berlin." in response.text
    response = site.post(f"/subscribers/{subscriber_id}/timezone", {"timezone": "Mars/Olympus"})
    assert response.status_code == 400
    assert "unknown time zone &#39;Mars/Olympus&#39;" in response.text
    with Session(site.engine) as session:
        assert session.exec(select(Subscriber.timezone)).one() == "Europe/Berlin"


def test_a_schedule_is_changed_for_one_topic(site: Site) -> None:
    subscriber_id = reader(site)
    response = site.post(
        f"/subscribers/{subscriber_id}/schedule",
        {"topic": "banks", "frequency": "weekly", "send_time": "07:30", "weekday": "4"},
    )
    assert "banks: weekly fri 07:30." in response.text
    with Session(site.engine) as session:
        rows = session.exec(
            select(Topic.slug, Subscription.frequency, Subscription.send_time, Subscription.weekday)
            .join(Topic, Topic.id == Subscription.topic_id)  # type: ignore[arg-type]
            .order_by(Topic.slug)
        ).all()
    assert sorted(rows) == [("banks", "weekly", "07:30", 4), ("votes", "daily", "08:00", 0)]


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"topic": "banks", "frequency": "daily", "send_time": "25:00"}, "25:00"),
        ({"topic": "nope", "frequency": "daily", "send_time": "08:00"}, "no topic &#39;nope&#39;"),
    ],
)
def test_a_bad_schedule_is_refused(site: Site, fields: dict[str, str], error: str) -> None:
    subscriber_id = reader(site)
    response = site.post(f"/subscribers/{subscriber_id}/schedule", fields)
    assert response.status_code == 400
    assert error in response.text


@pytest.mark.parametrize("action", ["timezone", "schedule"])
def test_subscriber_forms_need_the_csrf_token(site: Site, action: str) -> None:
    subscriber_id = reader(site)
    response = site.client.post(
        f"/subscribers/{subscriber_id}/{action}",
        data={"timezone": "Asia/Tokyo", "topic": "votes", "frequency": "hourly"},
    )
    assert response.status_code == 403
    with Session(site.engine) as session:
        assert session.exec(select(Subscriber.timezone)).one() == "UTC"
