"""The web UI in a real browser: Playwright driving Debian's Chromium (no browser download).

Signs in, writes a topic query with a mistake and sees the error at its column, fixes it and
sees the live preview's count and highlights, saves, imports an OPML file, opens a report with
its chart and changes a reader's subscriptions through the self-service link. Screenshots land
in ``tests/artifacts/web-*.png`` (ignored by git) for a person to look at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from monitor.db import create_db_engine, upgrade_database
from monitor.delivery.subscriptions import subscribe_topics
from monitor.delivery.tokens import make_manage_token
from monitor.models import Feed, Subscriber, Subscription, Topic, utcnow
from tests.reports.test_screenshot import find_chromium
from tests.web.site import (
    PASSWORD,
    REPORT_DAY,
    SECRET,
    USER,
    add_admin,
    make_app,
    seed,
    web_settings,
)
from tests.web.test_app import serving

ARTIFACTS = Path(__file__).parent.parent / "artifacts"
BROKEN = "meddl* AND (election OR vote))"
FIXED = "meddl* AND (election OR vote)"
OPML = b"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0"><head><title>desk</title></head><body>
  <outline text="Europe">
    <outline type="rss" text="Berlin Wire" xmlUrl="http://127.0.0.1:8001/berlin.xml"/>
    <outline type="rss" text="Paris Wire" xmlUrl="http://127.0.0.1:8001/paris.xml"/>
  </outline>
  <outline type="rss" text="Metadata" xmlUrl="http://169.254.169.254/latest/"/>
</body></opml>
"""


@pytest.fixture
def browser_site(tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("Chromium not found: `apt-get install -y chromium` (make test does it)")
    engine = create_db_engine(f"sqlite:///{tmp_path / 'web.db'}")
    upgrade_database(engine)
    settings = web_settings(tmp_path)
    add_admin(engine)
    seed(engine, settings)
    try:
        with serving(make_app(engine, settings)) as base:
            yield base, engine
    finally:
        engine.dispose()


@pytest.fixture
def page(browser_site: tuple[str, Engine]) -> Iterator[Page]:
    chromium = find_chromium()
    with sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
        )
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


def shoot(page: Page, name: str) -> None:
    """Save a full-page screenshot as tests/artifacts/web-NAME.png."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"web-{name}.png"), full_page=True)


@pytest.mark.slow
def test_the_web_ui_in_chromium(
    browser_site: tuple[str, Engine], page: Page, tmp_path: Path
) -> None:
    base, engine = browser_site
    p = page

    # Sign in: an unknown visitor is sent to the form, and back to where they were going.
    p.goto(f"{base}/topics/new")
    expect(p).to_have_url(re.compile(r"/login\?next=/topics/new$"))
    shoot(p, "login")
    p.get_by_label("User name").fill(USER)
    p.get_by_label("Password").fill(PASSWORD)
    p.get_by_role("button", name="Sign in").click()
    expect(p).to_have_url(f"{base}/topics/new")

    # A query with a mistake: the error appears in place, at its column, as it is typed.
    p.get_by_label("Slug").fill("meddling")
    p.get_by_label("Name").fill("Meddling")
    query = p.get_by_label("Query")
    query.press_sequentially(BROKEN)
    error = p.locator("#preview .query-error")
    expect(error).to_contain_text("unbalanced parenthesis at column 30")
    expect(error.locator("mark.error-at")).to_have_text(")")
    expect(query).to_have_attribute("aria-invalid", "true")
    shoot(p, "topic-error")

    # Fixed: the count per day and the highlighted matches replace the error.
    query.press("End")
    query.press("Backspace")
    count = p.locator("#preview .preview-count strong")
    expect(count).to_have_text("22")
    expect(p.locator("#preview .query-error")).to_have_count(0)
    expect(p.locator("#preview svg.chart rect.bar")).to_have_count(30)
    marks = p.locator("#preview .samples mark")
    expect(marks.first).to_be_visible()
    marked = {text.lower() for text in marks.all_text_contents()}
    assert marked == {"election", "meddling", "vote"}, marked
    expect(query).to_have_attribute("aria-invalid", "false")
    shoot(p, "topic-preview")

    p.get_by_role("button", name="Save", exact=True).click()
    expect(p).to_have_url(f"{base}/topics/meddling?saved=1")
    with Session(engine) as session:
        saved = session.exec(select(Topic).where(Topic.slug == "meddling")).one()
        assert saved.query == FIXED

    # OPML import: two feeds added, the metadata address refused by the guard.
    opml = tmp_path / "desk.opml"
    opml.write_bytes(OPML)
    p.goto(f"{base}/feeds")
    p.get_by_label("Import an OPML file").set_input_files(str(opml))
    p.get_by_role("button", name="Import", exact=True).click()
    result = p.locator("#import-result")
    expect(result).to_contain_text("Imported: 2 added, 0 already there, 1 refused.")
    expect(result).to_contain_text("169.254.169.254 refused: a link-local address")
    expect(p.get_by_text("Berlin Wire", exact=True)).to_be_visible()
    shoot(p, "feeds")
    with Session(engine) as session:
        urls = sorted(f.url for f in session.exec(select(Feed)))
    assert "http://127.0.0.1:8001/berlin.xml" in urls
    assert "http://169.254.169.254/latest/" not in urls

    # The report of the seeded day, with its volume charts and the spike in red.
    p.get_by_role("link", name="Reports").click()
    p.get_by_role("link", name=str(REPORT_DAY)).click()
    expect(p.get_by_role("heading", name=f"Report of {REPORT_DAY}")).to_be_visible()
    expect(p.locator("svg.chart")).to_have_count(2)
    expect(p.locator("svg.chart rect.bar.spike")).to_have_count(1)
    shoot(p, "report")

    # A reader follows the self-service link of their digests (no sign-in): from daily news
    # on election interference to a weekly digest of both topics, Monday 07:30 in Berlin.
    with Session(engine) as session, session.begin():
        election = session.exec(select(Topic).where(Topic.slug == "election-interference")).one()
        subscribe_topics(
            session, email="reader@example.org", topics=[election], schedule=None,
            timezone="UTC", name="Reader", now=utcnow(),
        )  # fmt: skip
        reader_id = session.exec(
            select(Subscriber.id).where(Subscriber.email == "reader@example.org")
        ).one()
    assert reader_id is not None
    link = make_manage_token(SECRET, subscriber_id=reader_id)
    browser = p.context.browser
    assert browser is not None
    r = browser.new_page(viewport={"width": 1280, "height": 900})  # the reader: no admin cookie
    r.goto(f"{base}/manage/{link}")
    expect(r.get_by_label("Election Interference")).to_be_checked()
    r.get_by_label("Central Banks").check()
    r.get_by_role("radio", name="Weekly").check()
    r.get_by_label("Time (daily and weekly)").fill("07:30")
    r.get_by_label("Day (weekly)").select_option(label="Monday")
    r.locator("input[name=timezone]").fill("Europe/Berlin")
    r.get_by_role("button", name="Save", exact=True).click()
    expect(r.get_by_label("Central Banks")).to_be_checked()
    shoot(r, "self-service")
    r.close()
    with Session(engine) as session:
        chosen = session.exec(
            select(Topic.slug, Subscription.frequency, Subscription.send_time, Subscription.weekday)
            .join(Topic, col(Topic.id) == Subscription.topic_id)
            .where(Subscription.subscriber_id == reader_id)
            .where(col(Subscription.unsubscribed_at).is_(None))
        ).all()
        reader = session.get(Subscriber, reader_id)
    assert sorted(chosen) == [
        ("central-banks", "weekly", "07:30", 0),
        ("election-interference", "weekly", "07:30", 0),
    ]
    assert reader is not None
    assert reader.timezone == "Europe/Berlin"

    # The dashboard at phone width: the layout folds to one column.
    p.set_viewport_size({"width": 390, "height": 844})
    p.goto(f"{base}/")
    expect(p.get_by_role("heading", name="Dashboard")).to_be_visible()
    shoot(p, "dashboard-phone")
