"""Search in a real browser: Playwright driving Debian's Chromium (no browser download).

Signs in, searches, narrows by language with the filter form, follows "Next page" to the last
page, downloads the CSV export and reads it back (the formula-like title quoted), and pages the
topic editor's live preview in place without leaving the editor.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright
from sqlalchemy import Engine
from sqlmodel import Session

from monitor.db import create_db_engine, upgrade_database
from monitor.models import Article, Feed
from tests.reports.test_screenshot import find_chromium
from tests.web.site import NOW, PASSWORD, USER, add_admin, make_app, web_settings
from tests.web.test_app import serving

ARTIFACTS = Path(__file__).parent.parent / "artifacts"
ARTICLES = 130
HOSTILE = '=HYPERLINK("http://evil.example/","Election night 0")'


def language_of(n: int) -> str:
    return "de" if n % 10 == 5 else "en"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("Chromium not found: `apt-get install -y chromium` (make test does it)")
    engine = create_db_engine(f"sqlite:///{tmp_path / 'web.db'}")
    upgrade_database(engine)
    add_admin(engine)
    with Session(engine) as session, session.begin():
        feed = Feed(url="https://wire.example/feed.xml", title="Wire")
        session.add(feed)
        session.flush()
        for n in range(ARTICLES):
            digest = hashlib.sha256(str(n).encode()).hexdigest()
            session.add(
                Article(
                    key_hash=digest,
                    content_hash=digest,
                    url=f"https://wire.example/{n}",
                    feed_id=feed.id or 0,
                    title=HOSTILE if n == 0 else f"Election night {n}",
                    detected_language=language_of(n),
                    first_seen_at=NOW - timedelta(minutes=30 * n + 1),
                )
            )
    try:
        with serving(make_app(engine, web_settings(tmp_path))) as base:
            yield base, engine
    finally:
        engine.dispose()


@pytest.fixture
def page(served: tuple[str, Engine]) -> Iterator[Page]:
    with sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=find_chromium(), args=["--no-sandbox", "--disable-gpu"]
        )
        context = browser.new_context(
            viewport={"width": 1280, "height": 900}, accept_downloads=True
        )
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


def shown_ids(p: Page) -> list[str]:
    return [
        item.get_attribute("data-article") or "" for item in p.locator("li[data-article]").all()
    ]


@pytest.mark.slow
def test_search_pages_to_the_end_and_exports_csv(
    served: tuple[str, Engine], page: Page, tmp_path: Path
) -> None:
    base, _ = served
    p = page
    p.goto(f"{base}/search")
    p.get_by_label("User name").fill(USER)
    p.get_by_label("Password").fill(PASSWORD)
    p.get_by_role("button", name="Sign in").click()
    expect(p).to_have_url(f"{base}/search")

    # Search, then narrow to English with the filter form.
    p.get_by_label("Query").fill("election")
    p.get_by_role("button", name="Search").click()
    expect(p.locator(".preview-count strong")).to_have_text(str(ARTICLES))
    p.get_by_label("Language").fill("en")
    p.get_by_role("button", name="Search").click()
    english = sum(language_of(n) == "en" for n in range(ARTICLES))
    expect(p.locator(".preview-count strong")).to_have_text(str(english))
    expect(p).to_have_url(re.compile(r"lang=en"))

    # Next page, to the end: every English match once, newest first.
    ids: list[str] = []
    for _ in range(10):
        ids += shown_ids(p)
        following = p.get_by_role("link", name="Next page")
        if following.count() == 0:
            break
        following.click()
        expect(p.locator(".preview-count")).to_contain_text("more matches, older than")
    expect(p.locator(".end-of-results")).to_have_text("No more matches.")
    ARTIFACTS.mkdir(exist_ok=True)
    p.screenshot(path=str(ARTIFACTS / "web-search-last-page.png"), full_page=True)
    assert len(ids) == len(set(ids)) == english
    assert [int(i) for i in ids] == sorted(int(i) for i in ids)  # newest first: ids ascending

    # The CSV export of the filter: every English match, the formula title quoted.
    with p.expect_download() as download:
        p.get_by_role("link", name="Export CSV").click()
    saved = tmp_path / "export.csv"
    download.value.save_as(saved)
    with saved.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["id"] for row in rows] == ids
    assert rows[0]["title"] == "'" + HOSTILE
    assert {row["language"] for row in rows} == {"en"}


@pytest.mark.slow
def test_the_live_preview_pages_in_place(served: tuple[str, Engine], page: Page) -> None:
    base, _ = served
    p = page
    p.goto(f"{base}/topics/new")
    p.get_by_label("User name").fill(USER)
    p.get_by_label("Password").fill(PASSWORD)
    p.get_by_role("button", name="Sign in").click()
    expect(p).to_have_url(f"{base}/topics/new")

    p.get_by_label("Slug").fill("nights")
    p.get_by_label("Query").press_sequentially("night")
    expect(p.locator("#preview .preview-count strong")).to_have_text(str(ARTICLES))
    first = shown_ids(p)
    # A filter of the preview narrows it as it is typed.
    p.locator("#preview-lang").fill("de")
    expect(p.locator("#preview .preview-count strong")).to_have_text(str(ARTICLES // 10))
    p.locator("#preview-lang").fill("")
    expect(p.locator("#preview .preview-count strong")).to_have_text(str(ARTICLES))

    p.locator("#preview").get_by_role("link", name="Next page").click()
    expect(p.locator("#preview .preview-count")).to_contain_text("more matches, older than")
    expect(p).to_have_url(f"{base}/topics/new")  # still in the editor, its fields kept
    expect(p.get_by_label("Slug")).to_have_value("nights")
    second = shown_ids(p)
    assert len(first) == len(second) == 10
    assert not set(first) & set(second)
