"""Charts in Chromium: every SVG label at least 11 px as drawn, on a phone and a wide screen,
on the report, the topic page's 90 days and the charts page; no console error (the
content-security policy refuses inline styles, and says so on the console)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from monitor.db import create_db_engine, upgrade_database
from tests.web.browser import chromium_tab, need_chromium
from tests.web.site import PASSWORD, REPORT_DAY, USER, add_admin, make_app, seed, web_settings
from tests.web.test_app import serving

ARTIFACTS = Path(__file__).parent.parent / "artifacts"
MIN_TEXT_PX = 11
# Per SVG text element: its box height, and its font size times the scale it is drawn at.
MEASURE = """() => [...document.querySelectorAll('svg.chart text')].map(t => {
  const box = t.getBoundingClientRect();
  const size = parseFloat(getComputedStyle(t).fontSize);
  const scale = t.getScreenCTM().a;
  return {text: t.textContent, height: box.height, px: size * scale, width: box.width};
})"""


@pytest.fixture
def charts_site(tmp_path: Path) -> Iterator[str]:
    need_chromium()
    engine: Engine = create_db_engine(f"sqlite:///{tmp_path / 'web.db'}")
    upgrade_database(engine)
    settings = web_settings(tmp_path)
    add_admin(engine)
    seed(engine, settings)
    try:
        with serving(make_app(engine, settings)) as base:
            yield base
    finally:
        engine.dispose()


def sign_in(page: Page, base: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("User name").fill(USER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


def assert_legible(page: Page, charts: int) -> list[dict[str, float]]:
    """Every chart label drawn at least MIN_TEXT_PX high; return the measures."""
    expect(page.locator("svg.chart")).to_have_count(charts)
    measures: list[dict[str, float]] = page.evaluate(MEASURE)
    assert measures, "no chart text"
    small = [m for m in measures if m["px"] < MIN_TEXT_PX or m["height"] < MIN_TEXT_PX]
    assert not small, small
    return measures


@pytest.mark.slow
@pytest.mark.parametrize("width", [390, 1280])
def test_charts_are_legible_and_break_no_policy(charts_site: str, width: int) -> None:
    base = charts_site
    with chromium_tab(width=width) as tab:
        page = tab.page
        sign_in(page, base)

        page.goto(f"{base}/reports/{REPORT_DAY}")
        assert_legible(page, 2)
        # The axis has dates, and the topics with a month of history their baseline band.
        dates = page.locator("svg.chart text.axis-date").all_text_contents()
        assert "8 Sep" in dates
        expect(page.locator("svg.chart rect.band").first).to_be_attached()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"web-report-chart-{width}.png"), full_page=True)

        page.goto(f"{base}/topics/election-interference")
        volume = page.locator("#volume svg.chart")
        expect(volume.locator("rect.bar")).to_have_count(90)
        assert_legible(page, 2)  # the preview's 30 days and the stored 90

        page.goto(f"{base}/charts?topic=election-interference&topic=central-banks"
                  "&since=2024-08-26&until=2024-09-09")  # fmt: skip
        expect(page.locator("#compare svg line.series.s0")).to_have_count(14)  # 15 days
        expect(page.locator("#compare svg line.series.s1")).to_have_count(14)
        names = page.locator("#share svg text.share-name").all_text_contents()
        assert names, "no source in the share chart"
        assert_legible(page, 2)
        page.screenshot(path=str(ARTIFACTS / f"web-charts-{width}.png"), full_page=True)
    assert tab.errors == []
