"""Subscriber self-service: the signed link in every digest, the form, and what saving does."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import html5lib
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from monitor.delivery.render import Letterhead, _sample_digest, build_environment, compose_digest
from monitor.delivery.tokens import (
    InvalidTokenError,
    make_manage_token,
    make_unsubscribe_token,
    read_manage_token,
)
from monitor.models import Subscriber, Subscription, Topic
from monitor.web.selfservice import MAX_FORM_BYTES
from tests.utils.factories import add_topic
from tests.web.test_api import SECRET, Stored, api_app, store_sample

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def stored(engine: Engine) -> Stored:
    stored = store_sample(engine)
    with Session(engine) as session, session.begin():
        add_topic(session, "banks", "bank")
    return stored


@pytest.fixture
def client(stored: Stored, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(api_app(stored.engine, tmp_path)) as client:
        yield client


def subscriber_id(engine: Engine) -> int:
    with Session(engine) as session:
        found = session.exec(select(Subscriber).where(Subscriber.email == "ada@example.org"))
        return found.one().id or 0


def token(engine: Engine) -> str:
    return make_manage_token(SECRET, subscriber_id=subscriber_id(engine))


def state(engine: Engine) -> tuple[str, dict[str, tuple[str, str, int, bool]]]:
    """The subscriber's time zone, and each topic's (frequency, time, weekday, active)."""
    with Session(engine) as session:
        subscriber = session.exec(select(Subscriber)).one()
        rows = session.exec(
            select(Subscription, Topic)
            .join(Topic)
            .where(Subscription.subscriber_id == subscriber.id)
        ).all()
        return subscriber.timezone, {
            topic.slug: (
                str(sub.frequency),
                sub.send_time,
                sub.weekday,
                sub.unsubscribed_at is None,
            )
            for sub, topic in rows
        }


def assert_valid_html(text: str) -> None:
    parser = html5lib.HTMLParser(strict=True)
    parser.parse(text)


def test_the_page_shows_the_current_choices(client: TestClient, stored: Stored) -> None:
    response = client.get(f"/manage/{token(stored.engine)}")

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "ada@example.org" in response.text
    assert re.search(r'name="topic" value="votes" checked', response.text)
    assert re.search(r'name="topic" value="banks">', response.text)
    # A private topic the person does not have is not offered.
    assert 'value="secret"' not in response.text
    assert re.search(r'value="daily" checked', response.text)
    assert 'value="08:00"' in response.text
    assert 'value="Europe/Berlin"' in response.text
    assert_valid_html(response.text)


def test_saving_subscribes_to_the_chosen_topics_and_ends_the_others(
    client: TestClient, stored: Stored
) -> None:
    body = "topic=banks&frequency=weekly&time=07%3A30&weekday=4&timezone=America%2FNew_York"
    response = client.post(f"/manage/{token(stored.engine)}", content=body, headers=FORM)

    assert response.status_code == 200
    assert "Your choices are saved." in response.text
    assert state(stored.engine) == (
        "America/New_York",
        {"votes": ("daily", "08:00", 0, False), "banks": ("weekly", "07:30", 4, True)},
    )
    assert re.search(r'name="topic" value="banks" checked', response.text)


def test_a_private_topic_cannot_be_chosen_by_its_slug(client: TestClient, stored: Stored) -> None:
    body = "topic=votes&topic=secret&frequency=hourly&time=08%3A00&weekday=0&timezone=UTC"
    response = client.post(f"/manage/{token(stored.engine)}", content=body, headers=FORM)

    assert response.status_code == 200
    assert state(stored.engine) == ("UTC", {"votes": ("hourly", "00:00", 0, True)})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("topic=votes&frequency=yearly&time=08:00&timezone=UTC", "Choose how often"),
        ("topic=votes&frequency=daily&time=25:00&timezone=UTC", "Not a time of day"),
        ("topic=votes&frequency=weekly&time=08:00&weekday=9&timezone=UTC", "Not a weekday"),
        ("topic=votes&frequency=daily&time=08:00&timezone=Mars%2FBase", "Unknown time zone"),
        ("topic=votes&frequency=daily&time=08:00&timezone=%00", "Unknown time zone"),
        ("%ff%fe=1", "The form could not be read."),
    ],
)
def test_bad_choices_are_explained_and_change_nothing(
    client: TestClient, stored: Stored, body: str, message: str
) -> None:
    before = state(stored.engine)
    response = client.post(f"/manage/{token(stored.engine)}", content=body, headers=FORM)

    assert response.status_code == 400
    assert message in response.text
    assert state(stored.engine) == before


def test_unsubscribe_from_everything(client: TestClient, stored: Stored) -> None:
    response = client.post(f"/manage/{token(stored.engine)}/unsubscribe")

    assert response.status_code == 200
    assert "ada@example.org will no longer receive digests." in response.text
    assert state(stored.engine)[1] == {"votes": ("daily", "08:00", 0, False)}


def invalid_tokens(engine: Engine) -> dict[str, str]:
    good = token(engine)
    return {
        "unsubscribe token": make_unsubscribe_token(SECRET, subscriber_id=1, topic_ids=[1]),
        "other key": make_manage_token("another-key", subscriber_id=subscriber_id(engine)),
        "cut signature": good[:-2],
        "unknown subscriber": make_manage_token(SECRET, subscriber_id=999),
        "garbage": "nope",
    }


@pytest.mark.parametrize(
    "kind", ["unsubscribe token", "other key", "cut signature", "unknown subscriber", "garbage"]
)
@pytest.mark.parametrize(("method", "path"), [("GET", ""), ("POST", ""), ("POST", "/unsubscribe")])
def test_an_invalid_link_is_refused(
    client: TestClient, stored: Stored, kind: str, path: str, method: str
) -> None:
    before = state(stored.engine)
    bad = invalid_tokens(stored.engine)[kind]
    response = client.request(
        method, f"/manage/{bad}{path}", content="topic=banks&timezone=UTC", headers=FORM
    )

    assert response.status_code == 400
    assert "This link is not valid" in response.text
    assert "<form" not in response.text
    assert state(stored.engine) == before


def test_an_oversize_form_is_refused(client: TestClient, stored: Stored) -> None:
    body = "topic=" + "a" * MAX_FORM_BYTES
    response = client.post(f"/manage/{token(stored.engine)}", content=body, headers=FORM)

    assert response.status_code == 413
    assert "This form is too large" in response.text


@pytest.mark.parametrize(
    ("secret", "subscriber", "readable"),
    [(SECRET, 7, True), ("another-key", 7, False)],
)
def test_manage_tokens_round_trip(secret: str, subscriber: int, readable: bool) -> None:
    made = make_manage_token(secret, subscriber_id=subscriber)
    if readable:
        assert read_manage_token(SECRET, made) == subscriber
    else:
        with pytest.raises(InvalidTokenError):
            read_manage_token(SECRET, made)


def test_every_digest_carries_the_manage_link() -> None:
    letterhead = Letterhead(from_address="monitor@example.net", from_name="monitor", reply_to="",
                            base_url="https://monitor.example.net/", secret_key=SECRET,
                            subject_prefix="[monitor]")  # fmt: skip
    digest = replace(_sample_digest(), subscriber_id=42)
    message = compose_digest(build_environment(), digest, letterhead).message

    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None
    assert html is not None
    found = re.search(r"Manage your subscription: (\S+)", text.get_content())
    assert found is not None
    url = found.group(1)
    assert url.startswith("https://monitor.example.net/manage/")
    assert read_manage_token(SECRET, url.rsplit("/", 1)[1]) == 42
    assert f'<a href="{url}"' in html.get_content()
    assert "Manage your subscription</a>" in html.get_content()
