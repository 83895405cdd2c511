"""The alerts inbox in a real browser (Playwright driving Debian's Chromium): mark an article
reviewed with the keyboard, flag a selection in bulk, filter by language and date, page to the
end, export CSV and read it back, open an article. No console errors (the CSP would report a
blocked script or style there). Screenshots land in ``tests/artifacts/web-inbox-*.png``."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright
from sqlalchemy import Engine
from sqlmodel import Session, select

from monitor.db import create_db_engine, upgrade_database
from monitor.models import Review
from tests.reports.test_screenshot import find_chromium
from tests.review.data import HOSTILE, Inbox, seed_inbox
from tests.web.site import PASSWORD, USER, add_admin, make_app, web_settings
from tests.web.test_app import serving
from tests.web.test_browser import shoot

DAY = "2024-09-08"
EXTRA = 55  # with the seeded 7: 62 items, two pages of 50


@pytest.fixture
def inbox_site(tmp_path: Path) -> Iterator[tuple[str, Engine, Inbox]]:
    if find_chromium() is None:
        pytest.skip("Chromium not found: `apt-get install -y chromium` (make test does it)")
    engine = create_db_engine(f"sqlite:///{tmp_path / 'web.db'}")
    upgrade_database(engine)
    add_admin(engine)
    inbox = seed_inbox(engine, extra=EXTRA)
    try:
        with serving(make_app(engine, web_settings(tmp_path))) as base:
            yield base, engine, inbox
    finally:
        engine.dispose()


@pytest.fixture
def page(inbox_site: tuple[str, Engine, Inbox]) -> Iterator[Page]:
    with sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=find_chromium(), args=["--no-sandbox", "--disable-gpu"]
        )
        context = browser.new_context(viewport={"width": 1280, "height": 900},
                                      accept_downloads=True)  # fmt: skip
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


def states(engine: Engine) -> dict[int, str]:
    with Session(engine) as session:
        return dict(session.exec(select(Review.article_id, Review.state)).all())


def ids_on(p: Page) -> list[int]:
    return [int(v) for v in p.locator("[data-item]").evaluate_all(
        "items => items.map(i => i.dataset.article)")]  # fmt: skip


@pytest.mark.slow
def test_the_inbox_in_chromium(
    inbox_site: tuple[str, Engine, Inbox], page: Page, tmp_path: Path
) -> None:
    base, engine, inbox = inbox_site
    p = page
    problems: list[str] = []
    p.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    p.on("pageerror", lambda e: problems.append(str(e)))
    failed: list[str] = []
    p.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)

    p.goto(f"{base}/inbox/votes/{DAY}")
    p.get_by_label("User name").fill(USER)
    p.get_by_label("Password").fill(PASSWORD)
    p.get_by_role("button", name="Sign in").click()
    expect(p).to_have_url(f"{base}/inbox/votes/{DAY}")
    expect(p.locator("#inbox-counts strong")).to_have_text("0 of 62 reviewed")
    items = p.locator("[data-item]")
    expect(items).to_have_count(50)
    ids = ids_on(p)

    # Keyboard: j, j moves to the second article; r marks it reviewed and moves on.
    p.keyboard.press("j")
    expect(items.nth(0)).to_have_class(has_class("current"))
    p.keyboard.press("j")
    p.keyboard.press("k")
    p.keyboard.press("j")
    expect(items.nth(1)).to_have_class(has_class("current"))
    p.keyboard.press("r")
    second = items.nth(1)
    expect(second).to_have_attribute("data-state", "reviewed")
    expect(second.locator(".badge.state")).to_have_text("reviewed")
    expect(second.locator(".who")).to_have_text("reviewed by ada")
    expect(items.nth(2)).to_have_class(has_class("current"))
    expect(p.locator("#inbox-counts strong")).to_have_text("1 of 62 reviewed")
    assert states(engine) == {ids[1]: "reviewed"}
    shoot(p, "inbox-keyboard")

    # Bulk: x selects the current article, j x the next; "Flag selected" flags both.
    p.keyboard.press("x")
    p.keyboard.press("j")
    p.keyboard.press("x")
    expect(p.locator("input[name=article]:checked")).to_have_count(2)
    p.get_by_role("button", name="Flag selected").click()
    expect(p.locator("#inbox-counts strong")).to_have_text("3 of 62 reviewed")
    assert states(engine) == {ids[1]: "reviewed", ids[2]: "flagged", ids[3]: "flagged"}
    expect(p.locator(f"#item-{ids[2]}")).to_have_attribute("data-state", "flagged")
    expect(p.locator(f"#item-{ids[1]} .who")).to_contain_text("reviewed by ada")

    # Filters: German only, then the day before.
    p.get_by_label("Language").select_option("de")
    p.get_by_role("button", name="Filter").click()
    expect(items).to_have_count(2)
    assert ids_on(p) == inbox.day_ids[2:4]
    assert "language=de" in p.url
    shoot(p, "inbox-language")
    p.get_by_label("Language").select_option("")
    p.get_by_label("From", exact=True).fill("2024-09-07")
    p.get_by_label("To", exact=True).fill("2024-09-07")
    p.get_by_role("button", name="Filter").click()
    expect(items).to_have_count(1)
    assert ids_on(p) == [inbox.before_id]

    # Pages: the whole day, page after page, to the end.
    p.get_by_label("From", exact=True).fill(DAY)
    p.get_by_label("To", exact=True).fill(DAY)
    p.get_by_role("button", name="Filter").click()
    seen = ids_on(p)
    next_page = p.get_by_role("link", name="Next page")
    while next_page.count():
        next_page.click()
        expect(p.get_by_role("link", name="First page")).to_be_visible()
        seen += ids_on(p)
    expect(p.get_by_text("End of the list.")).to_be_visible()
    assert len(seen) == len(set(seen)) == 62
    assert seen[-1] == inbox.backlog_id
    expect(p.get_by_role("heading", name="Backlog")).to_be_visible()

    # Export the filter as CSV and read it back.
    with p.expect_download() as download_info:
        p.get_by_role("link", name="CSV").click()
    download = download_info.value
    assert download.suggested_filename == f"inbox-votes-{DAY}.csv"
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert len(rows) == 62
    by_id = {int(r["article_id"]): r for r in rows}
    assert by_id[inbox.day_ids[5]]["title"] == "'" + HOSTILE + " election"
    assert (by_id[ids[2]]["state"], by_id[ids[2]]["updated_by"]) == ("flagged", "ada")
    assert by_id[ids[1]]["state"] == "reviewed"
    # The browser's own request for /favicon.ico is the one 404 allowed.
    assert [url for url in failed if not url.endswith("/favicon.ico")] == []
    assert [m for m in problems if "404 (Not Found)" not in m] == []

    # o opens the current article.
    p.goto(f"{base}/inbox/votes/{DAY}")
    p.keyboard.press("j")
    p.keyboard.press("o")
    expect(p).to_have_url(f"{base}/articles/{ids[0]}")


def has_class(name: str) -> re.Pattern[str]:
    """A class matcher: the element's class list contains ``name``."""
    return re.compile(rf"(^|\s){name}(\s|$)")
