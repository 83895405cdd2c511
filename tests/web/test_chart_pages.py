"""The charts page over HTTP: a chosen range and topics, and clear errors for a bad range."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.web.site import Site, seed, web_settings


@pytest.fixture
def seeded(site: Site, tmp_path: Path) -> Site:
    seed(site.engine, web_settings(tmp_path))
    return site


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("since=2024-09-10&until=2024-09-01", "From (2024-09-10) is after To (2024-09-01)."),
        ("since=yesterday", "From: &#39;yesterday&#39; is not a date (use YYYY-MM-DD)"),
        ("since=2022-01-01&until=2024-01-01", "The range is longer than 366 days."),
    ],
)
def test_a_bad_range_is_refused_with_why(seeded: Site, query: str, error: str) -> None:
    response = seeded.client.get(f"/charts?{query}")
    assert response.status_code == 400
    assert error in response.text
    assert "<svg" not in response.text


def test_the_chosen_topics_are_compared_and_their_sources_counted(seeded: Site) -> None:
    response = seeded.client.get("/charts?topic=central-banks&since=2024-08-26&until=2024-09-09")
    assert response.status_code == 200
    # 14 days with one central-bank article each, from 26 Aug to 8 Sep.
    assert "Central Banks (14)" in response.text
    assert "Election Interference (" not in response.text
    assert "14 matched articles of these topics" in response.text


def test_the_topic_page_shows_its_last_90_days(seeded: Site) -> None:
    response = seeded.client.get("/topics/election-interference")
    assert response.status_code == 200
    volume = response.text.split('id="volume"', 1)[1]
    assert volume.count('class="bar') == 90
    assert "Last 90 days" in response.text
