"""Chromium for the web tests: a page that records console errors (a CSP refusal is one)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import ConsoleMessage, Page, sync_playwright

from tests.reports.test_screenshot import find_chromium


@dataclass
class Tab:
    """A Chromium page and the console errors it has logged so far."""

    page: Page
    errors: list[str] = field(default_factory=list)


def need_chromium() -> str:
    """Chromium's path, or skip the test with how to install it."""
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("Chromium not found: `apt-get install -y chromium` (make test does it)")
    return chromium


@contextmanager
def chromium_tab(width: int = 1280, height: int = 900) -> Iterator[Tab]:
    """A headless Chromium page of this viewport, console errors collected."""
    chromium = need_chromium()
    with sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
        )
        context = browser.new_context(viewport={"width": width, "height": height})
        tab = Tab(context.new_page())

        def record(message: ConsoleMessage) -> None:
            if message.type == "error":
                tab.errors.append(message.text)

        tab.page.on("console", record)
        try:
            yield tab
        finally:
            context.close()
            browser.close()
