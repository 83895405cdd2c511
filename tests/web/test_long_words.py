"""A title of 10,000 characters without a space widens no page and no e-mail: long words wrap
(``overflow-wrap: anywhere``) and lists cut titles, measured in real Chromium.

Before, the report page was some 114,000 pixels wide and the report e-mail as wide.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from monitor.db import create_db_engine, upgrade_database
from monitor.delivery.digest import Digest, DigestArticle, DigestSection
from monitor.delivery.render import build_environment, render_digest
from monitor.models import Article, Feed
from monitor.operations import build_daily_report
from monitor.reports.store import get_report
from tests.reports.test_screenshot import find_chromium
from tests.utils.factories import add_article
from tests.web.site import PASSWORD, REPORT_DAY, USER, add_admin, make_app, seed, web_settings
from tests.web.test_app import serving

pytestmark = pytest.mark.slow
WIDTH = 1024
LONG = "Breaking" + "x" * 10_000
NOW = datetime(2024, 9, 9, 12, 0, tzinfo=UTC)


@pytest.fixture
def chromium_page() -> Iterator[Page]:
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("Chromium not found: `apt-get install -y chromium` (make test does it)")
    with sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
        )
        context = browser.new_context(viewport={"width": WIDTH, "height": 800})
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


def page_width(page: Page) -> int:
    width: int = page.evaluate("document.documentElement.scrollWidth")
    return width


@pytest.fixture
def long_site(tmp_path: Path) -> Iterator[tuple[Engine, Path]]:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'web.db'}")
    upgrade_database(engine)
    settings = web_settings(tmp_path)
    add_admin(engine)
    with Session(engine) as session, session.begin():
        # A burst of the long title on the report's day, and a feed with the long title.
        for n in range(6):
            add_article(session, f"{LONG} meddling {n}", summary="Meddling in the election.",
                        seen=datetime(2024, 9, 8, 10, n, tzinfo=UTC))  # fmt: skip
        feed = session.exec(select(Feed)).one()
        feed.title = LONG
        feed.last_warning = "broken: " + LONG
        session.add(feed)
    seed(engine, settings)
    build_daily_report(engine, settings, day=REPORT_DAY, now=NOW + timedelta(hours=1))
    try:
        yield engine, tmp_path
    finally:
        engine.dispose()


def test_a_huge_title_widens_no_page_and_no_email(
    long_site: tuple[Engine, Path], chromium_page: Page
) -> None:
    engine, tmp_path = long_site
    page = chromium_page
    with Session(engine) as session:
        report = get_report(session, REPORT_DAY)
        article_id = session.exec(
            select(Article.id).where(col(Article.title).startswith("Breaking"))
        ).first()
    assert report is not None
    assert LONG[:200] in report.html, "the report lists the article"
    digest = render_digest(build_environment(), sample_digest(), subject_prefix="[monitor]")
    widths: dict[str, int] = {}
    for name, html in [
        ("report page", report.html),
        ("report e-mail", report.email_html),
        ("digest e-mail", digest.html),
    ]:
        page.set_content(html)
        widths[name] = page_width(page)

    with serving(make_app(engine, web_settings(tmp_path))) as base:
        page.goto(f"{base}/login")
        page.get_by_label("User name").fill(USER)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{base}/")
        for path in (
            f"/reports/{REPORT_DAY.isoformat()}",
            "/feeds",
            f"/articles/{article_id}",
            "/search?q=meddling",
        ):
            page.goto(base + path)
            assert "Breaking" in page.content(), path
            widths[path] = page_width(page)

    assert widths == dict.fromkeys(widths, WIDTH)


def sample_digest() -> Digest:
    article = DigestArticle(title=LONG, url="https://news.example/" + "y" * 3000,
                            outlet="Example " + "z" * 3000, published_at=None,
                            first_seen_at=NOW, excerpt=LONG, terms=("meddling",))  # fmt: skip
    return Digest(delivery_id=1, message_id="<m@x>", email="reader@example.org", name="",
                  timezone="UTC", created_at=NOW,
                  sections=[DigestSection("votes", "Votes", [article], more=2)])  # fmt: skip
